from rest_framework import serializers

from apps.core.serializers import StrictSerializer
from apps.core.validators import (
    NAME_INVALID_MESSAGE,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    SLUG_INVALID_MESSAGE,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
)
from apps.sites.models import Site


class SiteSerializer(serializers.ModelSerializer):
    primary_environment_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="The site's production environment."
    )
    state_version = serializers.IntegerField(min_value=1, read_only=True)

    class Meta:
        model = Site
        fields = ["id", "name", "slug", "status", "primary_environment_id", "created_at", "updated_at", "state_version"]
        read_only_fields = fields


class CreateSiteSerializer(StrictSerializer):
    name = serializers.RegexField(
        NAME_PATTERN, min_length=1, max_length=NAME_MAX_LENGTH, error_messages={"invalid": NAME_INVALID_MESSAGE},
        help_text="Printable text; surrounding white space is trimmed.",
    )
    slug = serializers.RegexField(
        SLUG_PATTERN,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        error_messages={"invalid": SLUG_INVALID_MESSAGE},
    )
    node_id = serializers.UUIDField(required=False, help_text="The node for the site; default: the local or only active node.")

    def validate_name(self, value):
        # NAME_PATTERN has let through only printable text with something visible in it.
        return value.strip()
