import uuid

from django.conf import settings
from django.db import models

from apps.core.choices import LifecycleStatus
from apps.core.fields import EncryptedTextField
from apps.core.models import VersionedModel
from apps.environments.choices import (
    DriftStatus,
    EnvironmentType,
    PromotionPreset,
    ReleaseHealth,
    ReleaseSourceType,
)


class Environment(VersionedModel):
    """One running copy of a site on one node.

    The id is random (uuid4) on purpose: its first 8 hex characters name the
    preview host, so they must not be guessable or sequential.
    """

    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="environments")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="environments")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63)
    environment_type = models.CharField(max_length=20, choices=EnvironmentType.choices)
    status = models.CharField(
        max_length=20, choices=LifecycleStatus.choices, default=LifecycleStatus.ACTIVE
    )
    status_reason = models.TextField(blank=True, default="")
    source_environment = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    promotion_preset = models.CharField(
        max_length=20, choices=PromotionPreset.choices, default=PromotionPreset.CONTENT_PROTECT
    )
    preview_url = models.URLField(max_length=300)
    primary_domain = models.ForeignKey(
        "domains.Domain", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    current_release = models.ForeignKey(
        "environments.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    drift_status = models.CharField(
        max_length=10, choices=DriftStatus.choices, default=DriftStatus.UNKNOWN
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    last_drift_check = models.ForeignKey(
        "environments.DriftCheck", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fastcgi_cache_enabled = models.BooleanField(default=True)
    redis_cache_enabled = models.BooleanField(default=True)
    db_password = EncryptedTextField(blank=True, default="", editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Clones may expire.")
    git_repository = models.CharField(
        max_length=500, blank=True, default="", help_text="Where git deploys fetch from (https, ssh, git or file URL)."
    )
    # Generated per environment when a repository is set: the repository host
    # gets the public half as a read-only deploy key.
    deploy_key_private = EncryptedTextField(blank=True, default="", editable=False)
    deploy_key_public = models.TextField(blank=True, default="", editable=False)
    # Hosts the staging must-use plugin lets WordPress reach from a non-production
    # environment (a name covers its subdomains); every other host is refused.
    outgoing_allowed_hosts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["site__slug", "slug"]
        # The actions beyond add/change/delete/view; the API and the admin both
        # check them (apps/accounts/permissions.py), and the role groups
        # (apps/accounts/roles.py) hand them out.
        permissions = [
            ("deploy_environment", "Can deploy, roll back and set the git repository of an environment"),
            ("magic_login_environment", "Can log in to an environment's WordPress and read its held mail"),
            ("promote_environment", "Can promote an environment's changes to another environment"),
            ("restore_environment", "Can restore a backup into an environment"),
            ("manage_production", "Can act on production environments (on top of the action's own permission)"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["site", "slug"], name="environment_slug_unique_per_site"),
            models.UniqueConstraint(
                fields=["site"],
                condition=models.Q(environment_type="production"),
                name="one_production_environment_per_site",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=LifecycleStatus.values), name="environment_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(environment_type__in=EnvironmentType.values),
                name="environment_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(promotion_preset__in=PromotionPreset.values),
                name="environment_promotion_preset_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(drift_status__in=DriftStatus.values),
                name="environment_drift_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.site.slug}/{self.slug}" if self.site_id else self.slug

    @property
    def short_id(self) -> str:
        return self.id.hex[:8]


class Release(VersionedModel):
    """An immutable code directory of an environment (``releases/<name>`` on the node)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="releases")
    source_type = models.CharField(max_length=10, choices=ReleaseSourceType.choices)
    source_ref = models.CharField(max_length=500)
    directory = models.CharField(max_length=100, help_text="Directory name under releases/.")
    health = models.CharField(max_length=10, choices=ReleaseHealth.choices, default=ReleaseHealth.UNKNOWN)
    health_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "directory"], name="release_dir_unique"),
            models.CheckConstraint(
                condition=models.Q(source_type__in=ReleaseSourceType.values), name="release_source_type_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(health__in=ReleaseHealth.values), name="release_health_valid"
            ),
        ]

    def __str__(self):
        return f"{self.environment} @ {self.directory}"


class DeployArchive(models.Model):
    """An archive uploaded to be deployed to one environment; checked when it
    was stored (see remote/release_archive.py) and again on the node."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="deploy_archives")
    filename = models.CharField(max_length=255)
    archive_format = models.CharField(max_length=10)
    layout = models.CharField(max_length=20)
    size_bytes = models.BigIntegerField()
    unpacked_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.filename} for {self.environment}"

    @property
    def stored_path(self):
        return settings.DEPLOY_ARCHIVE_DIR / str(self.id)


class DriftBaseline(models.Model):
    """Production's checksums at the moment a staging or clone environment was
    copied from it (or refreshed from it): what its drift checks compare
    production against. Immutable; the newest one of an environment counts.
    A copy of a copy inherits its source's baseline (``origin`` inherited):
    its data came from production at that moment too."""

    class Origin(models.TextChoices):
        CLONE = "clone", "Taken when the environment was copied from production"
        INHERITED = "inherited", "Inherited from the environment it was copied from"
        REFRESH = "refresh", "Taken when the environment was refreshed from production"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="drift_baselines")
    # The production environment measured (gone with its site, never before the environment itself).
    measured_environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices)
    checksums = models.JSONField(default=dict)
    taken_at = models.DateTimeField(help_text="When production was measured (an inherited baseline keeps its time).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(origin__in=["clone", "inherited", "refresh"]), name="drift_baseline_origin_valid"
            ),
        ]

    def __str__(self):
        return f"drift baseline ({self.origin}) of {self.taken_at:%Y-%m-%d %H:%M}"


class DriftCheck(models.Model):
    """An immutable record of one drift check: production's checksums at one
    moment (``checksums``), compared with the environment's baseline
    (``report``: what changed, and whether a promotion would overwrite it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="drift_checks")
    measured_environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    baseline = models.ForeignKey(DriftBaseline, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    preset = models.CharField(max_length=20, choices=PromotionPreset.choices, default=PromotionPreset.CONTENT_PROTECT)
    result = models.CharField(max_length=10, choices=DriftStatus.choices)
    checksums = models.JSONField(default=dict)
    report = models.JSONField(default=dict)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(result__in=[DriftStatus.CLEAN, DriftStatus.DRIFTED]),
                name="drift_check_result_valid",
            ),
        ]

    def __str__(self):
        return f"drift check {self.result} at {self.created_at:%Y-%m-%d %H:%M}"
