"""The pure part of node_provision: from parameters and facts about a node to
the configuration files it writes. Rendered here, without touching /etc;
where a real validator can check a file without side effects (nginx -t on a
scratch prefix, nft -c, fail2ban-regex), it does."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

REMOTE_DIR = Path(settings.BASE_DIR) / "apps" / "nodes" / "remote"


@pytest.fixture(scope="module")
def provision():
    # Node-side programs import their neighbours by plain name, as on the node.
    sys.path.insert(0, str(REMOTE_DIR))
    try:
        import provision as module
    finally:
        sys.path.remove(str(REMOTE_DIR))
    return module


def facts(**overrides):
    base = {
        "memory_bytes": 4 * 1024**3,
        "ipv6": True,
        "systemd": True,
        "sshd_ports": [22],
        "session_port": 22,
        "auth_log": False,
        "recorded": {},
    }
    return {**base, **overrides}


def render(provision, params=None, **fact_overrides):
    found = facts(**fact_overrides)
    node_settings = provision.settings_from({"apply_firewall": False, **(params or {})}, found)
    return provision.render_all(provision.template_values(node_settings, found))


def default_server(configs):
    return configs["/etc/nginx/conf.d/pressluft-default-server.conf"]


def test_the_default_server_listens_where_it_is_told(provision):
    loopback = default_server(render(provision, {"listen_address": "127.0.0.1"}))
    assert "listen 127.0.0.1:80 default_server;" in loopback
    assert "[::]" not in loopback and "listen 80 " not in loopback
    assert "return 444;" in loopback

    everywhere = default_server(render(provision, {"listen_address": ""}))
    assert "listen 80 default_server;" in everywhere and "listen [::]:80 default_server;" in everywhere
    assert "[::]" not in default_server(render(provision, {"listen_address": ""}, ipv6=False))
    # HTTPS for an unknown name: the handshake is refused (no certificate needed).
    assert "listen 443 ssl default_server;" in everywhere and "ssl_reject_handshake on;" in everywhere


def test_listen_address_comes_from_the_node_when_not_given(provision):
    recorded = default_server(render(provision, {}, recorded={"listen_address": "10.0.0.5"}))
    assert "listen 10.0.0.5:80 default_server;" in recorded


def test_nginx_variables_survive_and_no_placeholder_is_left(provision):
    configs = render(provision)
    http = configs["/etc/nginx/conf.d/pressluft.conf"]
    assert 'fastcgi_cache_key "$scheme$request_method$host$request_uri";' in http
    assert "keys_zone=pressluft:32m" in http
    assert "server_tokens off;" in http
    for path, content in configs.items():
        assert "@@" not in content, path


def test_a_missing_value_is_an_error_not_a_blank(provision):
    with pytest.raises(KeyError):
        provision.render("nginx-pressluft-http.conf.tmpl", {"cache_dir": "/x"})


def test_redis_gets_a_tenth_of_memory_and_no_persistence(provision):
    redis = render(provision, memory_bytes=8 * 1024**3)["/etc/redis/redis.conf"].splitlines()
    assert "maxmemory 819mb" in redis
    assert "maxmemory-policy allkeys-lru" in redis
    assert 'save ""' in redis and "appendonly no" in redis
    assert "bind 127.0.0.1 -::1" in redis
    # Users come from the file the node programs write (redis_acl.py).
    assert "aclfile /etc/pressluft/redis-users.acl" in redis


def test_php_hardening(provision):
    ini = render(provision)["/etc/php/8.2/fpm/conf.d/99-pressluft-hardening.ini"]
    assert "expose_php = Off" in ini
    assert "disable_functions = exec,passthru,shell_exec,system,proc_open,popen,pcntl_exec,putenv" in ini
    assert "mail.force_extra_parameters = -i" in ini


def test_the_firewall_always_lets_the_panel_back_in(provision):
    rules = render(provision, {"ssh_port": 2222, "extra_tcp_ports": [8443]}, sshd_ports=[22, 2200],
                   session_port=40022)["/etc/pressluft/firewall.nft"]
    assert "tcp dport { 22, 80, 443, 2200, 2222, 8443, 40022 } accept" in rules
    assert "policy drop" in rules
    assert 'iif "lo" accept' in rules and "ct state established,related accept" in rules
    assert "flush ruleset" not in rules  # other tables (Docker, the distribution's) stay


def test_the_firewall_rules_are_valid_nftables(provision, tmp_path):
    rules = tmp_path / "firewall.nft"
    rules.write_text(render(provision)["/etc/pressluft/firewall.nft"])
    subprocess.run(["nft", "-c", "-f", str(rules)], check=True)  # -c: parse and check, load nothing


def test_the_sshd_jail_follows_where_sshd_logs(provision):
    def jail(**fact_overrides):
        return render(provision, **fact_overrides)["/etc/fail2ban/jail.d/pressluft.conf"]

    assert "backend = systemd" in jail(systemd=True)
    assert "logpath = /var/log/auth.log" in jail(systemd=False, auth_log=True)
    without_logs = jail(systemd=False, auth_log=False)
    assert "[sshd]" in without_logs and "enabled = false" in without_logs.split("[pressluft-wp-login]")[0]


def test_the_wp_login_filter_counts_failed_logins_only(provision, tmp_path):
    filter_file = tmp_path / "pressluft-wp-login.conf"
    filter_file.write_text(render(provision)["/etc/fail2ban/filter.d/pressluft-wp-login.conf"])
    failed = '203.0.113.7 - - [25/Nov/2026:20:12:44 +0000] "POST /wp-login.php HTTP/1.1" 200 4512 "-" "curl/8"'
    passed = '203.0.113.7 - - [25/Nov/2026:20:12:45 +0000] "POST /wp-login.php HTTP/1.1" 302 0 "-" "curl/8"'

    def matched(line):
        done = subprocess.run(["fail2ban-regex", line, str(filter_file)], capture_output=True, text=True, check=True)
        return "Lines: 1 lines, 0 ignored, 1 matched" in done.stdout

    assert matched(failed)
    assert not matched(passed)


def test_the_rendered_nginx_files_pass_nginx_t(provision, tmp_path):
    found = facts()
    node_settings = provision.settings_from({"listen_address": "127.0.0.1"}, found)
    values = provision.template_values(node_settings, found)
    values.update(cache_dir=str(tmp_path / "cache"), snippets_dir=str(tmp_path))
    for template, name in [
        ("nginx-pressluft-security-headers.conf.tmpl", "pressluft-security-headers.conf"),
        ("nginx-pressluft-waf.conf.tmpl", "pressluft-waf.conf"),
        ("nginx-pressluft-http.conf.tmpl", "http.conf"),
        ("nginx-pressluft-default-server.conf.tmpl", "default-server.conf"),
    ]:
        (tmp_path / name).write_text(provision.render(template, values))
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/http.conf;\n  include {tmp_path}/default-server.conf;\n}}\n"
    )
    done = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("params", [
    {"listen_address": "0.0.0.0; rm -rf /"},
    {"listen_address": 167772161},
    {"ssh_port": "22"},
    {"ssh_port": 70000},
    {"extra_tcp_ports": "80"},
    {"apply_firewall": "false"},
])
def test_bad_parameters_are_refused(provision, params):
    with pytest.raises(provision.NodeError) as refused:
        provision.settings_from(params, facts())
    assert refused.value.code == "bad_parameters"
