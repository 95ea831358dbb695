"""Ship the role groups Operators, Developers and Viewers (apps/accounts/roles.py).

Permissions are normally created after ``migrate`` (post_migrate); they are
created here first so the groups get them on this very run. Later releases'
permissions reach the groups through the post_migrate receiver.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from apps.accounts.roles import DEVELOPERS, OPERATORS, VIEWERS, sync_role_groups


def create_role_groups(apps, schema_editor):
    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        # create_permissions skips apps without a models module; the migration
        # state's app configs have none, so mark them for this call.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
        app_config.models_module = None
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), using=using)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(
        name__in=[OPERATORS, DEVELOPERS, VIEWERS]
    ).delete()


class Migration(migrations.Migration):
    # Every Pressluft app's models (and the action permissions) exist by now.
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audit", "0002_initial"),
        ("backups", "0002_initial"),
        ("core", "0002_panel_ssh_key"),
        ("domains", "0002_initial"),
        ("environments", "0003_environment_action_permissions"),
        ("jobs", "0002_job_retry_of"),
        ("nodes", "0003_node_manage_permission"),
        ("sites", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
