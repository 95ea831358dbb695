from rest_framework import serializers

from apps.core.serializers import StrictSerializer
from apps.domains.models import Domain


class DomainSerializer(serializers.ModelSerializer):
    environment_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Domain
        fields = ["id", "environment_id", "hostname", "tls_status", "tls_issuer", "created_at", "updated_at"]
        read_only_fields = fields


class AddDomainSerializer(StrictSerializer):
    hostname = serializers.CharField(
        min_length=1, max_length=300, trim_whitespace=False,
        help_text="The hostname (an internationalized name is stored in its ASCII form); no wildcards.",
    )
    check_dns = serializers.BooleanField(
        required=False, default=True,
        help_text="Default true: the job fails, writing nothing, unless the hostname's DNS points at the node. "
                  "False attaches it anyway: TLS waits (tls_status pending) until DNS points at the node.",
    )


class UpdateDomainSerializer(StrictSerializer):
    is_primary = serializers.BooleanField(
        help_text="true: the site's URLs move to this domain (it needs its certificate); the others answer 301 to it.",
    )
