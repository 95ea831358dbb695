"""The three role groups Pressluft ships: Operators, Developers and Viewers.

A group's permissions follow from rules over the permissions that exist, so a
permission added by a later release joins the right groups by itself:
``sync_role_groups`` runs in the migration that created the groups and after
every ``migrate`` (post_migrate, see AccountsConfig.ready). The groups are
Pressluft's: changes made to them in the admin are undone by the next
``migrate``; a custom role is a group of its own.
"""

from collections.abc import Callable

OPERATORS = "Operators"
DEVELOPERS = "Developers"
VIEWERS = "Viewers"

# The apps whose permissions are Pressluft's (not Django's own, django-q's or axes').
PRESSLUFT_APPS = ("accounts", "audit", "backups", "core", "domains", "environments", "jobs", "nodes", "sites")

# Changing a user includes making them a superuser: managing staff accounts
# stays with superusers, or an Operator could raise themselves above every role.
NOT_FOR_OPERATORS = {
    ("accounts", "add_user"),
    ("accounts", "change_user"),
    ("accounts", "delete_user"),
}

# Beyond reading everything: non-production environments, end to end. What
# they do to a production environment also needs environments.manage_production,
# which Developers do not get.
DEVELOPER_ACTIONS = {
    ("environments", "add_environment"),
    ("environments", "change_environment"),
    ("environments", "delete_environment"),
    ("environments", "deploy_environment"),
    ("environments", "magic_login_environment"),
    # Their own API tokens, for CI deploys to staging (a token acts with its user's permissions).
    ("accounts", "add_apitoken"),
    ("accounts", "change_apitoken"),
}


def _is_view(codename: str) -> bool:
    return codename.startswith("view_")


def role_rules() -> dict[str, Callable[[tuple[str, str]], bool]]:
    """Group name -> predicate over (app_label, codename)."""
    return {
        OPERATORS: lambda key: key not in NOT_FOR_OPERATORS,
        DEVELOPERS: lambda key: _is_view(key[1]) or key in DEVELOPER_ACTIONS,
        VIEWERS: lambda key: _is_view(key[1]),
    }


def sync_role_groups(group_model, permission_model, using: str = "default") -> None:
    """Create the three groups and give each exactly the permissions its rule selects.

    Takes the models as arguments so the data migration can pass its historical ones.
    """
    rows = (
        permission_model.objects.using(using)
        .filter(content_type__app_label__in=PRESSLUFT_APPS)
        .values_list("pk", "content_type__app_label", "codename")
    )
    permissions = [(pk, (app_label, codename)) for pk, app_label, codename in rows]
    for name, selects in role_rules().items():
        group, _ = group_model.objects.using(using).get_or_create(name=name)
        group.permissions.set([pk for pk, key in permissions if selects(key)])


def sync_role_groups_after_migrate(sender, apps=None, using="default", **kwargs) -> None:
    """post_migrate receiver (also sent by ``flush``, without ``apps``). It comes
    once per app, each time after that app's permissions were created: acting
    on the last app's sees them all."""
    from django.apps import apps as installed

    last = [config for config in installed.get_app_configs() if config.models_module is not None][-1]
    if sender.label != last.label:
        return
    registry = apps or installed
    try:
        group_model = registry.get_model("auth", "Group")
        permission_model = registry.get_model("auth", "Permission")
    except LookupError:  # a migration plan that stops before auth exists
        return
    sync_role_groups(group_model, permission_model, using=using)
