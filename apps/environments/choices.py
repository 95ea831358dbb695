from django.db import models


class EnvironmentType(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    CLONE = "clone", "Clone"


class PromotionPreset(models.TextChoices):
    CONTENT_PROTECT = "content-protect", "Content protect"
    COMMERCE_PROTECT = "commerce-protect", "Commerce protect"


class DriftStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    CLEAN = "clean", "Clean"
    DRIFTED = "drifted", "Drifted"


class ReleaseSourceType(models.TextChoices):
    # core: the WordPress release site_create installs (no deploy made it).
    CORE = "core", "WordPress core"
    GIT = "git", "Git"
    UPLOAD = "upload", "Upload"
    # update: the previous release with core, plugin or theme updates installed (env_update).
    UPDATE = "update", "Update"
    # backup: the code of a backup put back by env_restore.
    BACKUP = "backup", "Backup"
    # promotion: a staging or clone environment's release promoted into production (env_promote).
    PROMOTION = "promotion", "Promotion"


class ReleaseHealth(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"
