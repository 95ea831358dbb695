from django import forms
from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from apps.accounts import services
from apps.accounts.models import TOKEN_PREFIX, AccountLock, ApiToken, User
from apps.audit import services as audit
from apps.core.admin_actions import ObjectAction
from apps.core.admin_helpers import (
    AuditedAdminMixin,
    ReadOnlyAdminMixin,
    changelist_link,
    status_badge,
)
from apps.core.admin_pages import PanelModelAdmin
from apps.core.errors import PermissionMissing


def _unique_email(form, email: str) -> str:
    email = email.strip().lower()
    others = User.objects.filter(email__iexact=email)
    if form.instance.pk:
        others = others.exclude(pk=form.instance.pk)
    if others.exists():
        raise forms.ValidationError("A user with this email address already exists.")
    return email


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "is_staff", "is_superuser")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A user without staff status can log in nowhere in the panel.
        self.fields["is_staff"].initial = True

    def clean_email(self):
        return _unique_email(self, self.cleaned_data["email"])


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        return _unique_email(self, self.cleaned_data["email"])


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("email", "full_name", "is_staff", "is_superuser", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined", "api_tokens_link", "login_lock")
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Activity", {"fields": ("last_login", "date_joined", "api_tokens_link", "login_lock")}),
    )
    actions = ("unlock_logins",)
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "is_staff", "is_superuser", "usable_password", "password1", "password2"),
            },
        ),
    )

    @admin.display(description="API tokens")
    def api_tokens_link(self, obj):
        return changelist_link(ApiToken, "API tokens of this user", user=obj.pk) if obj.pk else "-"

    @admin.display(description="Login lock")
    def login_lock(self, obj):
        lock = AccountLock.objects.filter(email=obj.email).first() if obj.pk else None
        if lock is None:
            return "none"
        if lock.is_locked:
            return format_html(
                "{} until {} UTC after {} failed logins (action “Unlock login”)",
                status_badge("locked"), f"{lock.locked_until:%Y-%m-%d %H:%M}", lock.failures,
            )
        return f"{lock.failures} recent failed logins"

    def has_unlock_permission(self, request):
        return request.user.has_perm("accounts.change_user")

    @admin.action(description="Unlock login of selected users (all addresses)", permissions=["unlock"])
    def unlock_logins(self, request, queryset):
        actor = audit.Actor.of_request(request)
        for user in queryset:
            unlocked = services.unlock_account(user.email, actor=actor, via="admin")
            self.message_user(request, services.describe_unlock(unlocked), messages.SUCCESS)


class ApiTokenAddForm(forms.ModelForm):
    """A token for the signed-in user, always: a token acts with its user's
    permissions, so one minted for someone else would be a way to act as them."""

    class Meta:
        model = ApiToken
        fields = ("name", "expires_at")
        help_texts = {"expires_at": "Leave empty for a token that does not expire (UTC)."}

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must lie in the future.")
        return value


def _owns_or_superuser(request, token) -> bool:
    return token.user_id == request.user.pk or request.user.is_superuser


class RevokeToken(ObjectAction):
    name = "revoke_tokens"
    label = "Revoke"
    description = "Revoke selected API tokens"
    permission = "accounts.change_apitoken"
    audit = "apitoken.revoke"
    queues_job = False
    done = "revoked."

    def shown(self, request, token):
        return token.revoked_at is None and _owns_or_superuser(request, token)

    def check(self, request, token):
        if not _owns_or_superuser(request, token):
            raise PermissionMissing([], "Only its owner or a superuser can revoke this token.")

    def call(self, request, token):
        services.revoke_api_token(token)
        return token

    def label_of(self, token):
        return f"API token {token.name}"


@admin.register(ApiToken)
class ApiTokenAdmin(PanelModelAdmin):
    list_display = ("name", "user", "token_prefix", "state", "created_at", "last_used_at", "expires_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "user__email", "key_id")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    object_actions = (RevokeToken(),)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "expires_at")
        return ("name", "user", "token_prefix", "state", "created_at", "last_used_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Only the label may change; who and how long stay as issued.
        return ("user", "token_prefix", "state", "created_at", "last_used_at", "expires_at", "revoked_at")

    def has_delete_permission(self, request, obj=None):
        # Revoked tokens stay listed, so the audit log keeps pointing at something.
        return False

    @admin.display(description="Token")
    def token_prefix(self, obj):
        return format_html("<code>{}{}_…</code>", TOKEN_PREFIX, obj.key_id)

    @admin.display(description="State")
    def state(self, obj):
        if obj.revoked_at is not None:
            return status_badge("revoked")
        if not obj.is_usable:
            return status_badge("expired")
        return status_badge("active")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        issued = services.create_api_token(request.user, obj.name, obj.expires_at)
        # The admin carries on with ``obj`` (history, audit, response): make it the stored row.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(issued.token, field.attname))
        obj._state.adding = False
        obj._state.db = issued.token._state.db
        obj._issued_plaintext = issued.plaintext

    def response_add(self, request, obj, post_url_continue=None):
        plaintext = getattr(obj, "_issued_plaintext", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        del obj._issued_plaintext
        # Rendered in this response instead of redirecting: a message that
        # survived a redirect would sit in a cookie or the session meanwhile.
        messages.success(
            request,
            format_html(
                "API token created: <code>{}</code> Copy it now: it is shown only this once and cannot be recovered.",
                plaintext,
            ),
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "token": obj,
            "title": f"API token “{obj.name}” created",
        }
        return TemplateResponse(request, "admin/accounts/apitoken/created.html", context)

    def has_change_permission(self, request, obj=None):
        # Everyone manages their own tokens; a superuser may also revoke (never mint) anyone's.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or _owns_or_superuser(request, obj))


@admin.register(AccountLock)
class AccountLockAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Emails with recent failed logins from any address, and their locks
    (also for emails that belong to no user). Rows come and go with logins;
    the one thing to do here is unlock."""

    list_display = ("email", "state", "failures", "last_failure_at", "locked_until")
    search_fields = ("email",)
    ordering = ("-last_failure_at",)
    fields = ("email", "state", "failures", "last_failure_at", "locked_until")
    readonly_fields = fields
    actions = ("unlock",)
    object_actions = (("unlock", "Unlock"),)

    @admin.display(description="State")
    def state(self, obj):
        return status_badge("locked") if obj.is_locked else "counting"

    def has_unlock_permission(self, request):
        return request.user.has_perm("accounts.change_user")

    @admin.action(description="Unlock selected emails (all addresses)", permissions=["unlock"])
    def unlock(self, request, queryset):
        actor = audit.Actor.of_request(request)
        for lock in list(queryset):
            unlocked = services.unlock_account(lock.email, actor=actor, via="admin")
            self.message_user(request, services.describe_unlock(unlocked), messages.SUCCESS)
