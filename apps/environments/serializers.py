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
from apps.environments.choices import EnvironmentType, PromotionPreset
from apps.environments.models import DeployArchive, Environment


class EnvironmentSerializer(serializers.ModelSerializer):
    site_id = serializers.UUIDField(read_only=True)
    node_id = serializers.UUIDField(read_only=True)
    source_environment_id = serializers.UUIDField(read_only=True, allow_null=True)
    primary_domain_id = serializers.UUIDField(read_only=True, allow_null=True)
    current_release_id = serializers.UUIDField(read_only=True, allow_null=True)
    last_drift_check_id = serializers.UUIDField(read_only=True, allow_null=True)
    preview_url = serializers.URLField(read_only=True)
    state_version = serializers.IntegerField(min_value=1, read_only=True)

    class Meta:
        model = Environment
        fields = [
            "id",
            "site_id",
            "name",
            "slug",
            "environment_type",
            "status",
            "node_id",
            "source_environment_id",
            "promotion_preset",
            "preview_url",
            "primary_domain_id",
            "current_release_id",
            "drift_status",
            "drift_checked_at",
            "last_drift_check_id",
            "fastcgi_cache_enabled",
            "redis_cache_enabled",
            "created_at",
            "updated_at",
            "state_version",
        ]
        read_only_fields = fields


class MagicLoginResponseSerializer(serializers.Serializer):
    login_url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class CreateEnvironmentSerializer(StrictSerializer):
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
    type = serializers.ChoiceField(choices=EnvironmentType.values)
    source_environment_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The environment to copy; default: the site's production environment."
    )
    promotion_preset = serializers.ChoiceField(choices=PromotionPreset.values)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Delete the copy automatically after this time (optional)."
    )

    def validate_expires_at(self, value):
        from django.utils import timezone

        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate_name(self, value):
        # NAME_PATTERN has let through only printable text with something visible in it.
        return value.strip()


class DeploySerializer(StrictSerializer):
    source_type = serializers.ChoiceField(choices=["git", "upload"])
    source_ref = serializers.CharField(
        min_length=1, max_length=500,
        help_text="git: a branch, tag or commit of the environment's repository, or <repository>#<ref>; "
                  "upload: the id of an archive uploaded to the environment.",
    )


class CacheSettingsSerializer(StrictSerializer):
    """PATCH /environments/{id}/cache: at least one of the two flags."""

    min_properties = 1

    fastcgi_cache_enabled = serializers.BooleanField(
        required=False, help_text="Nginx's FastCGI page cache for anonymous visitors.")
    redis_cache_enabled = serializers.BooleanField(
        required=False, help_text="The Redis object cache (WordPress's object-cache.php drop-in).")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": ["Give fastcgi_cache_enabled, redis_cache_enabled or both."]})
        return attrs


class DeployArchiveSerializer(serializers.ModelSerializer):
    environment_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = DeployArchive
        fields = ["id", "environment_id", "filename", "archive_format", "layout", "size_bytes", "unpacked_bytes",
                  "sha256", "created_at"]
        read_only_fields = fields


class DeployArchiveUploadSerializer(serializers.Serializer):
    """Schema only: the multipart form of an archive upload."""

    file = serializers.FileField(help_text="A tar (optionally gzip, bzip2 or xz compressed) or zip archive.")


class GitRepositorySerializer(StrictSerializer):
    """The repository git deploys fetch from, and the deploy key its host is given."""

    repository_url = serializers.CharField(
        max_length=500, allow_blank=True,
        help_text="https://, ssh:// or git@host:path URL; empty to unset. A URL carrying credentials "
                  "(user:password@, a token) is refused: private repositories use ssh and the deploy key.",
    )
    new_deploy_key = serializers.BooleanField(
        required=False, default=False, write_only=True,
        help_text="Replace the deploy key with a new one (the old one stops working once removed at the host).",
    )
    deploy_key_public = serializers.CharField(
        read_only=True, help_text="Give the repository host this key (read-only access) for ssh repositories.",
    )


class RollbackSerializer(StrictSerializer):
    release_id = serializers.UUIDField(help_text="An earlier healthy release of the environment.")


class PromoteSerializer(StrictSerializer):
    target_environment_id = serializers.UUIDField(help_text="The site's production environment.")


class HeldMailSerializer(serializers.Serializer):
    time = serializers.DateTimeField(allow_null=True, help_text="When WordPress tried to send it.")
    recipients = serializers.CharField()
    subject = serializers.CharField(allow_blank=True)
    excerpt = serializers.CharField(allow_blank=True, help_text="The start of the body, tags removed.")


class HoldSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="wp_cron, action_scheduler, payment_gateways, outgoing_requests, mail, "
                                           "search_engines.")
    description = serializers.CharField()
    active = serializers.BooleanField()


class GatewaySettingSerializer(serializers.Serializer):
    option = serializers.CharField(help_text="The gateway's settings option found in the environment's database.")
    enabled = serializers.CharField(allow_blank=True, help_text="Its `enabled` value as WordPress now reads it.")


class StagingHoldsSerializer(serializers.Serializer):
    holds = HoldSerializer(many=True)
    due_cron_events = serializers.IntegerField(allow_null=True, help_text="Due WP-Cron events held back.")
    due_scheduled_actions = serializers.IntegerField(
        allow_null=True, help_text="Due pending Action Scheduler actions held back (null: no Action Scheduler).")
    gateway_settings = GatewaySettingSerializer(many=True)
    payment_hosts = serializers.ListField(child=serializers.CharField(),
                                          help_text="Payment processors' API hosts refused (with subdomains).")
    allowed_hosts = serializers.ListField(child=serializers.CharField(),
                                          help_text="The environment's outgoing allow-list.")


class OutgoingRequestSerializer(serializers.Serializer):
    time = serializers.DateTimeField(allow_null=True)
    method = serializers.CharField()
    host = serializers.CharField(allow_blank=True)
    path = serializers.CharField(help_text="The path only, never the query string.")
    blocked = serializers.BooleanField()
    reason = serializers.CharField(help_text="payment processor, not on the allow-list, allow-list or own site.")


# A host name (any case, an optional final dot): labels of letters, digits and inner hyphens.
HOST_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"


class OutgoingAllowListSerializer(StrictSerializer):
    hosts = serializers.ListField(
        child=serializers.RegexField(HOST_NAME_PATTERN, max_length=253), max_length=50,
        help_text="Host names the environment's WordPress may reach (each covers its subdomains); every other "
                  "host, payment processors included, is refused. Empty: none.",
    )


class UpdatesSerializer(StrictSerializer):
    scope = serializers.ChoiceField(
        choices=["core", "plugins", "themes", "all"],
        help_text="What to update: WordPress core, every plugin, every theme, or all of them.",
    )


class CoreUpdateSerializer(serializers.Serializer):
    installed = serializers.CharField(allow_null=True)
    available = serializers.CharField(allow_null=True, help_text="A newer version on offer, else null.")


class PluginUpdateSerializer(serializers.Serializer):
    file = serializers.CharField(help_text="The plugin's main file, e.g. akismet/akismet.php.")
    name = serializers.CharField()
    installed = serializers.CharField(allow_blank=True)
    available = serializers.CharField(allow_null=True, help_text="A newer version on offer, else null.")
    active = serializers.BooleanField()


class ThemeUpdateSerializer(serializers.Serializer):
    stylesheet = serializers.CharField()
    name = serializers.CharField()
    installed = serializers.CharField(allow_blank=True)
    available = serializers.CharField(allow_null=True, help_text="A newer version on offer, else null.")
    active = serializers.BooleanField()


class AvailableUpdatesSerializer(serializers.Serializer):
    core = CoreUpdateSerializer(allow_null=True)
    plugins = PluginUpdateSerializer(many=True)
    themes = ThemeUpdateSerializer(many=True)


class PlanTableSerializer(serializers.Serializer):
    table = serializers.CharField()
    source_rows = serializers.IntegerField(allow_null=True, help_text="Rows in the source (null: not there).")
    target_rows = serializers.IntegerField(allow_null=True, help_text="Rows in production (null: not there).")
    identical = serializers.BooleanField(allow_null=True, help_text="Same structure and rows once the source's URLs "
                                         "are production's (null: only one side has the table).")


class PlanNotLiveSerializer(serializers.Serializer):
    table = serializers.CharField()
    holds = serializers.CharField(help_text="What the table holds, e.g. posts, pages and other content; orders.")
    source_rows = serializers.IntegerField(allow_null=True)
    target_rows = serializers.IntegerField(allow_null=True)


class PlanCodeCountsSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    changed = serializers.IntegerField()
    removed = serializers.IntegerField()


class PlanCodeSerializer(serializers.Serializer):
    counts = PlanCodeCountsSerializer()
    added = serializers.ListField(child=serializers.CharField(), help_text="At most 200 paths of the release.")
    changed = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())


class PlanDriftSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["unknown", "clean", "drifted"])
    checked_at = serializers.DateTimeField(allow_null=True)
    last_drift_check_id = serializers.UUIDField(allow_null=True)
    blocker = serializers.CharField(allow_null=True, help_text="Why drift forbids the promotion now, or null.")


class PromotionPlanSerializer(serializers.Serializer):
    source_environment_id = serializers.UUIDField()
    target_environment_id = serializers.UUIDField()
    preset = serializers.ChoiceField(choices=PromotionPreset.choices)
    drift = PlanDriftSerializer()
    promotable = serializers.BooleanField(help_text="Whether the drift gate lets the promotion be asked for now.")
    changed_tables = serializers.ListField(child=serializers.CharField(),
                                           help_text="The tables of production the promotion would change.")
    tables_overwritten = PlanTableSerializer(many=True, help_text="Production's tables replaced by the source's.")
    tables_created = PlanTableSerializer(many=True, help_text="Tables only the source has, created in production.")
    tables_protected = PlanTableSerializer(many=True, help_text="Kept as production has them (the preset).")
    tables_kept_target_only = PlanTableSerializer(many=True, help_text="Only production has them: kept.")
    kept_options = serializers.ListField(child=serializers.CharField(),
                                         help_text="Options production keeps its own values of.")
    code = PlanCodeSerializer(help_text="Files of the release added, changed and removed.")
    not_going_live = PlanNotLiveSerializer(many=True, help_text="Protected tables where the source differs: its "
                                           "rows there (posts, comments, orders made in staging) stay out of "
                                           "production, which keeps its own.")
