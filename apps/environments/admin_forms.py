"""The forms of the environment admin's pages (clone, deploy, git repository, caching)."""

from django import forms

from apps.core.admin_helpers import form_errors_from_serializer
from apps.environments.choices import EnvironmentType, PromotionPreset
from apps.environments.serializers import CreateEnvironmentSerializer


class CloneEnvironmentForm(forms.Form):
    """The admin's "Clone environment": validated exactly like
    ``POST /api/sites/{id}/environments``, the source being the environment shown."""

    name = forms.CharField(max_length=200, strip=False, help_text="Shown in the panel.")
    slug = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and inner dashes, at most 63; unique within the site.",
    )
    type = forms.ChoiceField(
        choices=[(EnvironmentType.STAGING, "Staging"), (EnvironmentType.CLONE, "Clone")],
        initial=EnvironmentType.STAGING,
    )
    promotion_preset = forms.ChoiceField(choices=PromotionPreset.choices, initial=PromotionPreset.CONTENT_PROTECT)

    def clean(self):
        cleaned = super().clean()
        given = {key: cleaned[key] for key in self.fields if cleaned.get(key) not in (None, "")}
        body = CreateEnvironmentSerializer(data=given, partial=True)
        if not body.is_valid():
            form_errors_from_serializer(self, body.errors)
        else:
            # The API's normalisation (a trimmed name) is what the service gets.
            cleaned.update(body.validated_data)
        return cleaned


class DeployForm(forms.Form):
    """The admin's "Deploy": a git ref, or an archive to upload and deploy."""

    git_ref = forms.CharField(
        required=False, max_length=500, label="Git ref",
        help_text="A branch, tag or commit of the environment's repository (or <repository>#<ref>).",
    )
    archive = forms.FileField(
        required=False, help_text="Or a tar/zip archive holding a wp-content tree or a whole WordPress tree.",
    )

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("git_ref")) == bool(cleaned.get("archive")):
            raise forms.ValidationError("Give either a git ref or an archive.")
        return cleaned


class GitRepositoryForm(forms.Form):
    repository_url = forms.CharField(
        required=False, max_length=500, label="Repository URL",
        help_text="https://, ssh:// or git@host:path URL; empty to unset. No user name, password or "
                  "token in it: a private repository is reached over ssh with the deploy key below.",
    )
    new_deploy_key = forms.BooleanField(
        required=False, label="Make a new deploy key",
        help_text="The old key stops being used; replace it at the repository host.",
    )


class CacheForm(forms.Form):
    fastcgi_cache_enabled = forms.BooleanField(
        required=False, label="Page cache (Nginx FastCGI)",
        help_text="Pages for anonymous visitors are served from Nginx's cache (header X-FastCGI-Cache).",
    )
    redis_cache_enabled = forms.BooleanField(
        required=False, label="Object cache (Redis)",
        help_text="WordPress keeps its object cache in Redis, under this environment's own prefix.",
    )


class RestoreForm(forms.Form):
    """The admin's "Restore a backup": one of the site's completed backups, and a
    confirmation that this environment's files and/or database are replaced."""

    backup = forms.ChoiceField(help_text="The site's completed backups, newest first (of any of its environments).")
    confirm = forms.BooleanField(
        label="Replace this environment's code, uploads and/or database (per the backup's scope) with the backup",
        help_text="A full pre-restore backup is taken first; if the restored site is unhealthy, the previous state "
                  "is put back by itself.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from apps.backups.choices import BackupStatus
        from apps.backups.models import Backup

        environment = self.initial.get("environment")
        backups = (Backup.objects.filter(environment__site_id=environment.site_id, status=BackupStatus.COMPLETED)
                   .select_related("environment").order_by("-completed_at")[:50]) if environment else []
        self.fields["backup"].choices = [
            (str(backup.pk), f"{backup.completed_at:%Y-%m-%d %H:%M} UTC · {backup.get_backup_scope_display()} of "
                             f"{backup.environment.slug} · {backup.pk}")
            for backup in backups
        ]


class OutgoingAllowListForm(forms.Form):
    hosts = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 60}), label="Hosts",
        help_text="One host name a line (e.g. api.example.com; each covers its subdomains). WordPress on this "
                  "environment may reach these; every other host, payment processors included, is refused.",
    )


class PromoteForm(forms.Form):
    """The admin's "Promote": a confirmation under the plan."""

    confirm = forms.BooleanField(
        label="Replace production's code and the tables listed as overwritten with this environment's",
        help_text="Drift is checked again and a full backup of production is taken first; protected tables and "
                  "uploads stay production's; an unhealthy promotion is swapped back by itself.",
    )
