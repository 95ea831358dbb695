"""The role groups Pressluft ships (Operators, Developers, Viewers): what each
holds, that permissions added later join them, and that the data migration
creates them on its own."""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.accounts.roles import DEVELOPERS, OPERATORS, PRESSLUFT_APPS, VIEWERS
from apps.environments.models import Environment

pytestmark = pytest.mark.django_db

ROLES = (OPERATORS, DEVELOPERS, VIEWERS)


def held_by(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def pressluft_permissions() -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label__in=PRESSLUFT_APPS).select_related("content_type")
    }


def test_operators_hold_every_pressluft_permission_but_managing_accounts():
    operators = held_by(OPERATORS)
    assert operators == pressluft_permissions() - {"accounts.add_user", "accounts.change_user", "accounts.delete_user"}
    assert {"environments.manage_production", "nodes.manage_node", "environments.deploy_environment",
            "environments.promote_environment", "environments.restore_environment", "sites.delete_site"} <= operators
    assert not any(name.startswith(("auth.", "django_q.", "axes.")) for name in operators)


def test_viewers_hold_only_view_permissions_of_every_model():
    viewers = held_by(VIEWERS)
    assert viewers == {name for name in pressluft_permissions() if name.split(".")[1].startswith("view_")}
    assert {"sites.view_site", "environments.view_environment", "jobs.view_job", "nodes.view_node"} <= viewers


def test_developers_read_everything_and_work_on_environments_but_not_production():
    developers = held_by(DEVELOPERS)
    assert held_by(VIEWERS) <= developers
    assert developers - held_by(VIEWERS) == {
        "environments.add_environment", "environments.change_environment", "environments.delete_environment",
        "environments.deploy_environment", "environments.magic_login_environment",
        "accounts.add_apitoken", "accounts.change_apitoken",
    }
    assert "environments.manage_production" not in developers


def test_a_permission_added_later_joins_the_groups_on_the_next_migrate():
    environment_type = ContentType.objects.get_for_model(Environment)
    Permission.objects.create(codename="purge_environment", name="Can purge", content_type=environment_type)
    Permission.objects.create(codename="view_cachestats", name="Can view cache stats", content_type=environment_type)
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert {"environments.purge_environment", "environments.view_cachestats"} <= held_by(OPERATORS)
    assert "environments.view_cachestats" in held_by(VIEWERS)
    assert "environments.purge_environment" not in held_by(VIEWERS) | held_by(DEVELOPERS)


def test_the_groups_are_pressluft_s_and_migrate_puts_them_back():
    operators = Group.objects.get(name=OPERATORS)
    operators.permissions.remove(Permission.objects.get(codename="manage_production"))
    Group.objects.get(name=VIEWERS).permissions.add(Permission.objects.get(codename="deploy_environment"))
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert "environments.manage_production" in held_by(OPERATORS)
    assert "environments.deploy_environment" not in held_by(VIEWERS)


def test_the_data_migration_creates_the_groups_by_itself():
    expected = {name: held_by(name) for name in ROLES}
    Group.objects.filter(name__in=ROLES).delete()
    migration = importlib.import_module("apps.accounts.migrations.0002_role_groups")
    historical = MigrationExecutor(connection).loader.project_state(("accounts", "0002_role_groups")).apps
    with connection.schema_editor() as editor:
        migration.create_role_groups(historical, editor)
    assert {name: held_by(name) for name in ROLES} == expected
