from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from apps.core import panel_settings
from apps.core.admin_helpers import admin_url, status_badge
from apps.core.admin_pages import PanelModelAdmin
from apps.core.models import PanelSettings

admin.site.site_header = "Pressluft"
admin.site.site_title = "Pressluft"
admin.site.index_title = "Sites, environments, jobs and nodes"


def _checked(check, value):
    """A check of apps.core.panel_settings, its refusal as the form's error."""
    try:
        return check(value)
    except panel_settings.Invalid as exc:
        raise forms.ValidationError(str(exc)) from None


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
        return _checked(panel_settings.s3_endpoint, self.cleaned_data.get("backup_s3_endpoint"))

    def clean_backup_s3_region(self):
        return _checked(panel_settings.s3_region, self.cleaned_data.get("backup_s3_region"))

    def clean_backup_s3_bucket(self):
        return _checked(panel_settings.s3_bucket, self.cleaned_data.get("backup_s3_bucket"))

    def clean_backup_s3_prefix(self):
        return _checked(panel_settings.s3_prefix, self.cleaned_data.get("backup_s3_prefix"))

    def clean_new_backup_s3_access_key_id(self):
        return _checked(panel_settings.s3_key, self.cleaned_data.get("new_backup_s3_access_key_id"))

    def clean_new_backup_s3_secret_access_key(self):
        return _checked(panel_settings.s3_key, self.cleaned_data.get("new_backup_s3_secret_access_key"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_backup_s3_keys") and (
            cleaned.get("new_backup_s3_access_key_id") or cleaned.get("new_backup_s3_secret_access_key")
        ):
            raise forms.ValidationError("Either enter new storage keys or remove them, not both.")
        return cleaned

    def backup_storage_changes(self) -> dict:
        changes = {}
        if self.cleaned_data.get("clear_backup_s3_keys"):
            changes.update(backup_s3_access_key_id="", backup_s3_secret_access_key="")
        for field in ("backup_s3_access_key_id", "backup_s3_secret_access_key"):
            if self.cleaned_data.get(f"new_{field}"):
                changes[field] = self.cleaned_data[f"new_{field}"]
        return changes


class PanelSettingsForm(BackupStorageFields):
    # The stored secret never travels to the browser: this field only replaces it.
    new_dns01_rfc2136_secret = forms.CharField(
        label="New TSIG secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current value.",
    )
    clear_dns01_rfc2136_secret = forms.BooleanField(label="Remove the stored TSIG secret", required=False)

    class Meta:
        model = PanelSettings
        fields = ("control_plane_domain", "preview_domain", "dns01_provider", "dns01_propagation_seconds",
                  "dns01_rfc2136_server", "dns01_rfc2136_port", "dns01_rfc2136_key_name", "dns01_rfc2136_algorithm",
                  "backup_s3_endpoint",
                  "backup_s3_region", "backup_s3_bucket", "backup_s3_prefix", "acme_directory_url",
                  "acme_ca_bundle", "acme_email", "dns_resolvers")
        widgets = {"acme_ca_bundle": forms.Textarea(attrs={"rows": 6, "cols": 70})}
        help_texts = {
            "control_plane_domain": "The panel's own host name; the panel answers requests for it "
                                    "(unless PRESSLUFT_ALLOWED_HOSTS lists the names itself) and its machine's "
                                    "Nginx serves it there over HTTPS (point its A record at the local node "
                                    "first). PRESSLUFT_CONTROL_PLANE_DOMAIN wins.",
        }

    def clean_control_plane_domain(self):
        return _checked(panel_settings.BY_NAME["control_plane_domain"].check,
                        self.cleaned_data.get("control_plane_domain"))

    def clean_preview_domain(self):
        return _checked(panel_settings.BY_NAME["preview_domain"].check, self.cleaned_data.get("preview_domain"))

    def clean_dns01_provider(self):
        return _checked(panel_settings.dns01_provider, self.cleaned_data.get("dns01_provider"))

    def clean_dns01_propagation_seconds(self):
        return _checked(panel_settings.propagation_seconds, self.cleaned_data.get("dns01_propagation_seconds"))

    def clean_dns01_rfc2136_server(self):
        return _checked(panel_settings.dns_server, self.cleaned_data.get("dns01_rfc2136_server"))

    def clean_dns01_rfc2136_port(self):
        return _checked(panel_settings.port, self.cleaned_data.get("dns01_rfc2136_port"))

    def clean_dns01_rfc2136_key_name(self):
        return _checked(panel_settings.tsig_key_name, self.cleaned_data.get("dns01_rfc2136_key_name"))

    def clean_dns01_rfc2136_algorithm(self):
        return _checked(panel_settings.tsig_algorithm, self.cleaned_data.get("dns01_rfc2136_algorithm"))

    def clean_new_dns01_rfc2136_secret(self):
        return _checked(panel_settings.tsig_secret, self.cleaned_data.get("new_dns01_rfc2136_secret"))

    def clean_acme_directory_url(self):
        return _checked(panel_settings.acme_directory_url, self.cleaned_data.get("acme_directory_url"))

    def clean_acme_ca_bundle(self):
        return _checked(panel_settings.acme_ca_bundle, self.cleaned_data.get("acme_ca_bundle"))

    def clean_acme_email(self):
        return _checked(panel_settings.email, self.cleaned_data.get("acme_email"))

    def clean_dns_resolvers(self):
        return _checked(panel_settings.dns_resolvers, self.cleaned_data.get("dns_resolvers"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_dns01_rfc2136_secret") and cleaned.get("clear_dns01_rfc2136_secret"):
            raise forms.ValidationError("Either enter a new TSIG secret or remove it, not both.")
        if not self.errors:
            # The preview settings together, as panel_settings.update checks them.
            stored = PanelSettings.load()
            together = {name: getattr(stored, name) or "" for name in panel_settings.PREVIEW_SETTINGS}
            together.update({name: value for name, value in self.changes().items() if name in together})
            together.update(panel_settings.preview_from_environment())
            problems = panel_settings.preview_problems(together)
            if problems and panel_settings.PREVIEW_SETTINGS & set(self.changes()):
                for name, texts in problems.items():
                    field = name if name in self.fields else f"new_{name}"
                    self.add_error(field if field in self.fields else None, " ".join(texts))
        return cleaned

    def changes(self) -> dict:
        """What the operator changed, for apps.core.panel_settings.update (secrets only when typed)."""
        changes = {name: self.cleaned_data[name] for name in self.changed_data if name in panel_settings.BY_NAME}
        if self.cleaned_data.get("clear_dns01_rfc2136_secret"):
            changes["dns01_rfc2136_secret"] = ""
        elif self.cleaned_data.get("new_dns01_rfc2136_secret"):
            changes["dns01_rfc2136_secret"] = self.cleaned_data["new_dns01_rfc2136_secret"]
        changes.update(self.backup_storage_changes())
        return changes


@admin.register(PanelSettings)
class PanelSettingsAdmin(PanelModelAdmin):
    """One row of settings: the list page goes straight to it."""

    form = PanelSettingsForm
    fieldsets = (
        ("Domains", {"fields": ("control_plane_domain", "control_plane_https_state", "preview_domain")}),
        (
            "Preview domain: wildcard certificate (DNS-01)",
            {
                "fields": ("preview_state", "dns01_provider", "dns01_propagation_seconds", "dns01_rfc2136_server",
                           "dns01_rfc2136_port", "dns01_rfc2136_key_name", "dns01_rfc2136_algorithm",
                           "dns01_rfc2136_secret_state", "new_dns01_rfc2136_secret", "clear_dns01_rfc2136_secret"),
                "description": "With a preview domain, new environments are reached at https://{id8}.<preview "
                               "domain>, served with one certificate *.<preview domain> that certbot on each node "
                               "gets by DNS-01. Provider rfc2136: dynamic updates to your authoritative DNS server, "
                               "signed with a TSIG key. A PRESSLUFT_PREVIEW_DOMAIN or PRESSLUFT_DNS01_* "
                               "environment variable wins over the value stored here (docs/preview-domain.md).",
            },
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
        (
            "Custom domains: certificates (ACME) and DNS checks",
            {
                "fields": ("acme_state", "acme_directory_url", "acme_ca_bundle", "acme_email", "dns_resolvers"),
                "description": "Empty directory: Let's Encrypt production. For test certificates (not trusted by "
                               f"browsers, far higher rate limits) use Let's Encrypt staging: "
                               f"{panel_settings.LETS_ENCRYPT_STAGING}. A PRESSLUFT_ACME_* or "
                               "PRESSLUFT_DNS_RESOLVERS environment variable wins over the value stored here "
                               "(docs/configuration.md).",
            },
        ),
        (None, {"fields": ("updated_at",)}),
    )
    readonly_fields = ("preview_state", "dns01_rfc2136_secret_state", "backup_storage_state", "backup_s3_keys_state", "acme_state",
                       "updated_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return HttpResponseRedirect(admin_url(PanelSettings.load()))

    # The panel on its control plane domain over HTTPS (docs/panel-https.md), under "Domains".
    readonly_fields += ("control_plane_https_state",)

    @admin.display(description="Panel over HTTPS")
    def control_plane_https_state(self, obj):
        from apps.domains import panel_https

        shown = panel_https.status()
        text = {"off": "off (no control plane domain)", "pending": f"being set up for {shown['hostname']}",
                "active": f"https://{shown['hostname']}/ (certificate until {shown['expires_at'] or '?'})",
                "failed": f"failed: {shown['error']}", "not_managed": shown["error"]}[shown["state"]]
        badge = status_badge({"active": "active", "failed": "failed"}.get(shown["state"], "pending"), shown["state"])
        job = (format_html(' — <a href="{}">last job</a>', reverse("admin:jobs_job_change", args=[shown["job_id"]]))
               if shown["job_id"] else "")
        return format_html("{} {}{}", badge, text, job)

    def save_model(self, request, obj, form, change):
        # The same service as PATCH /api/settings (checks, storing, ALLOWED_HOSTS refreshed).
        panel_settings.update(form.changes())
        obj.refresh_from_db()

    @admin.display(description="TSIG secret")
    def dns01_rfc2136_secret_state(self, obj):
        return "stored (encrypted)" if obj.dns01_rfc2136_secret else "not set"

    @admin.display(description="In use")
    def preview_state(self, obj):
        from apps.domains import preview
        from apps.jobs.errors import JobError

        try:
            config = preview.effective(obj)
        except JobError as exc:
            return f"Not usable: {exc.message}"
        if not config.domain:
            return "No preview domain: new environments get http://{id8}.<node address>.sslip.io."
        text = (f"New environments get https://{{id8}}.{config.domain}, served with the certificate "
                f"*.{config.domain} ({config.provider.name}: {config.provider.package} on the nodes).")
        if config.from_environment:
            text += " Set by environment variables (they win over this page): " + ", ".join(
                f"PRESSLUFT_{name.upper()}" for name in config.from_environment) + "."
        return text

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

    @admin.display(description="In use")
    def acme_state(self, obj):
        from apps.domains import acme_config
        from apps.jobs.errors import JobError

        try:
            config = acme_config.effective(obj)
        except JobError as exc:
            return f"Not usable: {exc.message}"
        resolvers = ", ".join(f"{address}:{port}" for address, port in config.dns_resolvers)
        text = (f"ACME directory {config.directory_url}; CA bundle: "
                f"{'given' if config.ca_bundle else 'the system CAs'}; e-mail: {config.email or 'none'}; "
                f"DNS resolvers: {resolvers or 'the panel machine’s own'}.")
        if config.from_environment:
            text += " Set by environment variables (they win over this page): " + ", ".join(
                acme_config.ENVIRONMENT_VARIABLES[field] for field in config.from_environment) + "."
        return text

    @admin.display(description="Access key and secret")
    def backup_s3_keys_state(self, obj):
        stored = [label for field, label in (("backup_s3_access_key_id", "access key ID"),
                                             ("backup_s3_secret_access_key", "secret access key"))
                  if getattr(obj, field)]
        return ("stored (encrypted): " + " and ".join(stored)) if stored else "not set"
