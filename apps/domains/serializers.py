from rest_framework import serializers

from apps.domains.models import Domain


class DomainSerializer(serializers.ModelSerializer):
    environment_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Domain
        fields = ["id", "environment_id", "hostname", "tls_status", "tls_issuer", "created_at", "updated_at"]
        read_only_fields = fields
