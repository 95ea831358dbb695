"""Input patterns shared by the API serializers, the admin and the services."""

# A site's or environment's slug: one DNS label in lower case (it also names
# things on the node, so nothing outside these characters may get through).
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
SLUG_MAX_LENGTH = 63
SLUG_INVALID_MESSAGE = "Use lower-case letters, digits and inner dashes (at most 63)."

# A display name (a site's, an environment's): printable text, so no control
# character below U+0020, and at least one character that is not white space
# (every character Python's str.isspace() counts, so that trimming never leaves
# it empty). Written with explicit ranges so that it means the same to Python
# and to the contract's JSON Schema (ECMA-262) readers.
_NAME_CHAR = r"[^\x00-\x1f]"
_NAME_VISIBLE = r"[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NAME_PATTERN = rf"^{_NAME_CHAR}*{_NAME_VISIBLE}{_NAME_CHAR}*$"
NAME_MAX_LENGTH = 200
NAME_INVALID_MESSAGE = "The name must be printable text."
