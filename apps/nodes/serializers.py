from rest_framework import serializers

from apps.core.serializers import StrictSerializer
from apps.nodes.models import MAX_SITE_JOBS_LIMIT, Node
from apps.nodes.ssh import fingerprint

HOSTNAME_PATTERN = r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"


class NodeSerializer(serializers.ModelSerializer):
    host_key_fingerprint = serializers.SerializerMethodField()
    state_version = serializers.IntegerField(min_value=1, read_only=True)

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "hostname",
            "ssh_port",
            "ssh_user",
            "public_ipv4",
            "status",
            "status_reason",
            "is_local",
            "host_key_fingerprint",
            "last_seen_at",
            "health_checked_at",
            "max_site_jobs",
            "created_at",
            "updated_at",
            "state_version",
        ]
        read_only_fields = fields

    def get_host_key_fingerprint(self, node) -> str | None:
        return fingerprint(node.host_key) if node.host_key else None


class RegisterNodeSerializer(StrictSerializer):
    name = serializers.RegexField(r"^[a-z0-9][a-z0-9-]{0,62}$", help_text="Lower-case letters, digits, dashes.")
    hostname = serializers.RegexField(HOSTNAME_PATTERN, max_length=253, help_text="DNS name or IPv4 address for SSH.")
    ssh_port = serializers.IntegerField(min_value=1, max_value=65535, default=22)
    ssh_user = serializers.RegexField(r"^[a-z_][a-z0-9_-]{0,31}$", default="root")
    public_ipv4 = serializers.IPAddressField(protocol="IPv4")
    is_local = serializers.BooleanField(default=False)


class NodeUpdateSerializer(StrictSerializer):
    max_site_jobs = serializers.IntegerField(
        min_value=1, max_value=MAX_SITE_JOBS_LIMIT,
        help_text="How many site jobs the node runs at once (one per site always; node-wide jobs run alone).")


class NodeHealthSerializer(serializers.Serializer):
    checked_at = serializers.DateTimeField(allow_null=True)
    health = serializers.DictField()


class PublicKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="Add this line to the node user's ~/.ssh/authorized_keys.")
