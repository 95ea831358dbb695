"""The pure part of redis_acl.py (the node's Redis users) and what the panel
renders for an environment: the ACL file's lines, the rules of an
environment's user, the credentials in wp-config.php and the PHP-FPM pool's
limits. The attacks themselves run in tests/sites/test_redis_isolation_e2e.py
and tests/sites/test_php_pool_isolation_e2e.py."""

import hashlib
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from apps.environments import naming, node_ops
from apps.environments.factories import EnvironmentFactory
from apps.environments.node_templates import redis_password
from apps.nodes.factories import NodeFactory
from apps.sites.factories import SiteFactory

REMOTE_DIR = Path(settings.BASE_DIR) / "apps" / "nodes" / "remote"
PREFIX = f"pressluft_{uuid.UUID(int=1)}:"
PASSWORD = "ab" * 32
SECRET = "cd" * 32


@pytest.fixture(scope="module")
def redis_acl():
    # Node-side programs import their neighbours by plain name, as on the node.
    sys.path.insert(0, str(REMOTE_DIR))
    try:
        import redis_acl as module
    finally:
        sys.path.remove(str(REMOTE_DIR))
    return module


def test_the_file_has_no_passwordless_user_and_only_hashes(redis_acl):
    content = redis_acl.render({"pl0123456789ab": (redis_acl.password_hash(PASSWORD), PREFIX)}, SECRET)
    lines = content.splitlines()
    assert lines[0].startswith("user default off ") and "nopass" not in content
    assert lines[1] == f"user pressluft on #{hashlib.sha256(SECRET.encode()).hexdigest()} ~* &* +@all"
    assert PASSWORD not in content and SECRET not in content
    user = lines[2].split()
    assert user[:5] == ["user", "pl0123456789ab", "on", f"#{hashlib.sha256(PASSWORD.encode()).hexdigest()}",
                        f"~{PREFIX}*"]
    # One key pattern, no channels, and the denials after the grant (later rules win).
    assert [word for word in user if word.startswith(("~", "%", "&", "allkeys", "allchannels"))] == [f"~{PREFIX}*"]
    assert "resetchannels" in user
    for denied in ("-@dangerous", "-@admin", "-@pubsub", "-@scripting", "-scan", "-randomkey", "-select",
                   "-client|tracking"):
        assert user.index(denied) > user.index("+@all"), denied


def test_a_rewrite_keeps_the_environment_users_and_renews_their_rules(redis_acl):
    hashed = redis_acl.password_hash(PASSWORD)
    old_rules = f"user pl0123456789ab on #{hashed} ~{PREFIX}* resetchannels +@all -flushall\n"
    hand_made = "user intruder on nopass ~* +@all\n"
    found = redis_acl.parse_environments(f"user default on nopass ~* +@all\n{old_rules}{hand_made}")
    assert found == {"pl0123456789ab": (hashed, PREFIX)}
    content = redis_acl.render(found, SECRET)
    assert "intruder" not in content and "default on" not in content
    assert redis_acl.environment_line("pl0123456789ab", hashed, PREFIX) in content.splitlines()
    assert redis_acl.parse_environments(content) == found


@pytest.mark.parametrize("name, prefix, password", [
    ("pl0123456789ab ~*", PREFIX, PASSWORD),  # a rule smuggled in with the name
    ("default", PREFIX, PASSWORD),
    ("pl0123456789ab", "pressluft_*", PASSWORD),  # a pattern matching every site
    ("pl0123456789ab", PREFIX + " ~*", PASSWORD),
    ("pl0123456789ab", PREFIX, "short"),
    ("pl0123456789ab", PREFIX, PASSWORD + " nopass"),
])
def test_parameters_that_would_widen_a_user_are_refused(redis_acl, name, prefix, password):
    with pytest.raises(redis_acl.NodeError) as caught:
        redis_acl.check_environment(name, prefix, password)
    assert caught.value.code == "bad_parameters"


@pytest.mark.django_db
def test_wp_config_carries_the_environments_own_redis_user():
    node = NodeFactory()
    environment = EnvironmentFactory(site=SiteFactory(), node=node)
    wp_config = node_ops.render_configs(environment)["wp_config"]
    user, password = naming.system_name(environment), redis_password(environment)
    assert len(password) == 64 and password != environment.db_password
    assert f"define( 'WP_REDIS_PASSWORD', array( '{user}', '{password}' ) );" in wp_config
    assert f"'auth' => array( '{user}', '{password}' )" in wp_config
    assert f"define( 'WP_REDIS_PREFIX', 'pressluft_{environment.id}:' );" in wp_config
    # Stable across renders (no migration, logins and caches survive a rewrite), unique per environment.
    assert redis_password(environment) == password
    assert redis_password(EnvironmentFactory(site=SiteFactory(), node=node)) != password


@pytest.mark.django_db
def test_the_pool_has_its_own_temp_dir_and_no_mail_outside_production():
    production = EnvironmentFactory(site=SiteFactory(), node=NodeFactory())
    staging = EnvironmentFactory(site=production.site, node=production.node, slug="staging", environment_type="staging")
    for environment in (production, staging):
        pool = node_ops.render_configs(environment)["pool"]
        settings_lines = dict(line.split(" = ", 1) for line in pool.splitlines() if line.startswith("php_admin_"))
        root = naming.root(environment)
        assert settings_lines["php_admin_value[open_basedir]"] == f"{root}/:/usr/share/php/"
        assert settings_lines["php_admin_value[sys_temp_dir]"] == f"{root}/tmp"
        assert settings_lines["php_admin_value[mail.force_extra_parameters]"] == "-i"
        disabled = settings_lines["php_admin_value[disable_functions]"].split(",")
        assert {"exec", "shell_exec", "system", "proc_open", "popen", "putenv"} <= set(disabled)
        assert ("mail" in disabled, "mb_send_mail" in disabled) == ((False, False) if environment is production
                                                                    else (True, True))
