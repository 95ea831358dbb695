import re

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect

from apps.core.admin_helpers import admin_url
from apps.core.admin_pages import PanelModelAdmin
from apps.core.models import PanelSettings
from pressluft.allowed_hosts import control_plane_domain

admin.site.site_header = "Pressluft"
admin.site.site_title = "Pressluft"
admin.site.index_title = "Sites, environments, jobs and nodes"

# A DNS name of letters, digits and hyphens: these values end up in Nginx
# configuration and certificate requests, so nothing else may get through.
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def _hostname(value: str, label: str) -> str:
    value = (value or "").strip().lower().rstrip(".")
    if value and not HOSTNAME_RE.match(value):
        raise forms.ValidationError(f"{label} must be a DNS name such as panel.example.com.")
    return value


S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
S3_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# A key or secret is one printable word: it goes to restic's environment on the node.
S3_KEY_RE = re.compile(r"^[\x21-\x7e]{1,256}$")


def _endpoint(value: str) -> str:
    from urllib.parse import urlsplit

    value = (value or "").strip().rstrip("/")
    if not value:
        return value
    parts = urlsplit(value)
    if (parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password
            or parts.query or parts.fragment or parts.path or any(char.isspace() for char in value)):
        raise forms.ValidationError("The endpoint is a URL such as https://s3.eu-central-1.amazonaws.com "
                                    "(scheme, host and port only; the keys go in their own fields).")
    return value


class BackupStorageFields(forms.ModelForm):
    """The Backup storage section: plain fields, and keys that only replace what is stored."""

    new_backup_s3_access_key_id = forms.CharField(
        label="New access key ID", required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current value.",
    )
    new_backup_s3_secret_access_key = forms.CharField(
        label="New secret access key", required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current value.",
    )
    clear_backup_s3_keys = forms.BooleanField(label="Remove the stored access key and secret", required=False)

    def clean_backup_s3_endpoint(self):
        return _endpoint(self.cleaned_data.get("backup_s3_endpoint"))

    def clean_backup_s3_region(self):
        value = (self.cleaned_data.get("backup_s3_region") or "").strip().lower()
        if value and not S3_REGION_RE.match(value):
            raise forms.ValidationError("The region is a name such as eu-central-1.")
        return value

    def clean_backup_s3_bucket(self):
        value = (self.cleaned_data.get("backup_s3_bucket") or "").strip()
        if value and not S3_BUCKET_RE.match(value):
            raise forms.ValidationError("A bucket name has 3 to 63 lower-case letters, digits, dots and hyphens.")
        return value

    def clean_backup_s3_prefix(self):
        value = (self.cleaned_data.get("backup_s3_prefix") or "").strip().strip("/")
        if value and (not S3_PREFIX_RE.match(value) or ".." in value.split("/") or "." in value.split("/")):
            raise forms.ValidationError("The prefix is a folder path such as pressluft/backups "
                                        "(letters, digits, . _ - and /).")
        return value

    def _clean_key(self, name):
        value = self.cleaned_data.get(name) or ""
        if value and not S3_KEY_RE.match(value):
            raise forms.ValidationError("A key is one word of printable characters.")
        return value

    def clean_new_backup_s3_access_key_id(self):
        return self._clean_key("new_backup_s3_access_key_id")

    def clean_new_backup_s3_secret_access_key(self):
        return self._clean_key("new_backup_s3_secret_access_key")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_backup_s3_keys") and (
            cleaned.get("new_backup_s3_access_key_id") or cleaned.get("new_backup_s3_secret_access_key")
        ):
            raise forms.ValidationError("Either enter new storage keys or remove them, not both.")
        return cleaned

    def save_backup_storage(self):
        if self.cleaned_data.get("clear_backup_s3_keys"):
            self.instance.backup_s3_access_key_id = ""
            self.instance.backup_s3_secret_access_key = ""
        for field in ("backup_s3_access_key_id", "backup_s3_secret_access_key"):
            if self.cleaned_data.get(f"new_{field}"):
                setattr(self.instance, field, self.cleaned_data[f"new_{field}"])


class PanelSettingsForm(BackupStorageFields):
    # The stored secret never travels to the browser: this field only replaces it.
    new_dns01_credentials = forms.CharField(
        label="New DNS-01 credentials",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current value.",
    )
    clear_dns01_credentials = forms.BooleanField(label="Remove the stored DNS-01 credentials", required=False)

    class Meta:
        model = PanelSettings
        fields = ("control_plane_domain", "preview_domain", "dns01_provider", "backup_s3_endpoint",
                  "backup_s3_region", "backup_s3_bucket", "backup_s3_prefix")
        help_texts = {
            "control_plane_domain": "The panel's own host name; the panel answers requests for it "
                                    "(unless PRESSLUFT_ALLOWED_HOSTS lists the names itself).",
        }

    def clean_control_plane_domain(self):
        return _hostname(self.cleaned_data.get("control_plane_domain"), "The control plane domain")

    def clean_preview_domain(self):
        return _hostname(self.cleaned_data.get("preview_domain"), "The preview domain")

    def clean_dns01_provider(self):
        value = (self.cleaned_data.get("dns01_provider") or "").strip().lower()
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
            raise forms.ValidationError("The provider is a name such as cloudflare or route53.")
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_dns01_credentials") and cleaned.get("clear_dns01_credentials"):
            raise forms.ValidationError("Either enter new credentials or remove them, not both.")
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("clear_dns01_credentials"):
            self.instance.dns01_credentials = ""
        elif self.cleaned_data.get("new_dns01_credentials"):
            self.instance.dns01_credentials = self.cleaned_data["new_dns01_credentials"]
        self.save_backup_storage()
        return super().save(commit)


@admin.register(PanelSettings)
class PanelSettingsAdmin(PanelModelAdmin):
    """One row of settings: the list page goes straight to it."""

    form = PanelSettingsForm
    fieldsets = (
        ("Domains", {"fields": ("control_plane_domain", "preview_domain")}),
        (
            "Wildcard certificate (DNS-01)",
            {"fields": ("dns01_provider", "dns01_credentials_state", "new_dns01_credentials", "clear_dns01_credentials")},
        ),
        (
            "Backup storage (S3-compatible)",
            {
                "fields": ("backup_storage_state", "backup_s3_endpoint", "backup_s3_region", "backup_s3_bucket",
                           "backup_s3_prefix", "backup_s3_keys_state", "new_backup_s3_access_key_id",
                           "new_backup_s3_secret_access_key", "clear_backup_s3_keys"),
                "description": "Backups are restic repositories, one per site, under <prefix>/sites/<site id> in "
                               "this bucket. A PRESSLUFT_BACKUP_S3_* environment variable wins over the value "
                               "stored here (docs/configuration.md).",
            },
        ),
        (None, {"fields": ("updated_at",)}),
    )
    readonly_fields = ("dns01_credentials_state", "backup_storage_state", "backup_s3_keys_state", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return HttpResponseRedirect(admin_url(PanelSettings.load()))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The panel answers to the control plane domain (ALLOWED_HOSTS): this
        # process at once, the other web workers within a few seconds.
        control_plane_domain.forget()

    @admin.display(description="DNS-01 credentials")
    def dns01_credentials_state(self, obj):
        return "stored (encrypted)" if obj.dns01_credentials else "not set"

    @admin.display(description="Backups")
    def backup_storage_state(self, obj):
        from apps.backups import storage

        values = storage.effective_values(obj)
        from_environment = sorted(storage.from_environment())
        missing = storage.missing_fields(values)
        if missing:
            text = "Off. " + storage.NOT_CONFIGURED_HINT + " Missing: " + ", ".join(missing) + "."
        else:
            text = f"On: backups go to s3://{values['bucket']}/{values['prefix'] or ''} at {values['endpoint']}."
        if from_environment:
            text += " Set by environment variables (they win over this page): " + ", ".join(
                storage.ENVIRONMENT_VARIABLES[field] for field in from_environment) + "."
        return text

    @admin.display(description="Access key and secret")
    def backup_s3_keys_state(self, obj):
        stored = [label for field, label in (("backup_s3_access_key_id", "access key ID"),
                                             ("backup_s3_secret_access_key", "secret access key"))
                  if getattr(obj, field)]
        return ("stored (encrypted): " + " and ".join(stored)) if stored else "not set"
