from rest_framework import serializers

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
