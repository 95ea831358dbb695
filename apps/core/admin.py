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


class PanelSettingsForm(forms.ModelForm):
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
        fields = ("control_plane_domain", "preview_domain", "dns01_provider")
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
        (None, {"fields": ("updated_at",)}),
    )
    readonly_fields = ("dns01_credentials_state", "updated_at")

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
