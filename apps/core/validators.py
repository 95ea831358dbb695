"""Input patterns shared by the API serializers, the admin and the services."""

# A site's or environment's slug: one DNS label in lower case (it also names
# things on the node, so nothing outside these characters may get through).
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
SLUG_MAX_LENGTH = 63
SLUG_INVALID_MESSAGE = "Use lower-case letters, digits and inner dashes (at most 63)."
