"""Redis users: one per environment, each limited to its own keys, plus
Pressluft's own administrator; nobody without a password.

Redis is shared by every environment on a node, so without users any site's
PHP could read, change or flush every other site's cache. The users live in
an ACL file (redis.conf ``aclfile``, so they survive a restart):

    user default off ...                      no connection without a password
    user pressluft on #<sha256> ~* &* +@all   the node programs (this module)
    user pl<12 hex> on #<sha256> ~pressluft_<environment id>:* resetchannels <ENVIRONMENT_COMMANDS>

Only password hashes are in the file. An environment's password is in its
wp-config.php only; the administrator's is in ADMIN_SECRET_FILE (root's,
0600) and reaches redis-cli through REDISCLI_AUTH in its environment, never
on a command line.

The file is rewritten whole (atomically, under a lock: two environments may
be set up at once) and loaded with ACL LOAD, which checks it and keeps the
old users if it is wrong. When Redis is not running, the file is enough: it
is read at start. ACL LOAD disconnects the clients of every user; PHP
connects again on its next request.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import re
import secrets
from pathlib import Path

import services
from nodelib import NodeError, info, run, write_file

PRESSLUFT_DIR = Path("/etc/pressluft")
ACL_FILE = PRESSLUFT_DIR / "redis-users.acl"
ADMIN_SECRET_FILE = PRESSLUFT_DIR / "redis-admin.secret"
LOCK_FILE = PRESSLUFT_DIR / "redis-acl.lock"
ADMIN_USER = "pressluft"
REDIS_GROUP = "redis"
HOST, PORT = "127.0.0.1", "6379"

ENVIRONMENT_NAME = re.compile(r"^pl[0-9a-f]{12}$")
# pressluft_<environment id>: -- no glob characters, so it can end a key pattern.
KEY_PREFIX = re.compile(r"^pressluft_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:$")
PASSWORD = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_USER_LINE = "user default off resetkeys resetchannels -@all"

# What an environment's user may run, in order (later rules win). Key
# permissions (~prefix*) bind every command that names keys; these rules deny
# what works without naming keys and so reaches other sites' data, the
# server's settings or everybody's connections.
ENVIRONMENT_COMMANDS = (
    "+@all",
    # CONFIG, ACL, DEBUG, MONITOR, CLIENT LIST/KILL, SLOWLOG, SHUTDOWN, MODULE,
    # FLUSHALL, FLUSHDB, KEYS, SWAPDB, MIGRATE, RESTORE, SORT (BY/GET read any key) ...
    "-@dangerous",
    "-@admin",
    # Channels are shared by all users; PUBSUB CHANNELS lists everybody's.
    "-@pubsub",
    # Functions are shared by all users (one site could replace what another
    # calls), and a looping script blocks the server for everyone.
    "-@scripting",
    # Not in @dangerous in Redis 7.0, yet they name or count every site's keys.
    "-scan", "-randomkey", "-dbsize",
    # Tracking in broadcast mode announces every key anyone changes.
    "-client|tracking", "-client|caching",
    # Everything an environment stores stays in database 0, where its removal finds it.
    "-select", "-move", "-copy",
    "-cluster", "-acl",
    "-memory", "+memory|usage",
    # Object caches ask INFO for the server version and give up without it;
    # it tells counts and settings, no key names or values.
    "+info",
)

# Run by the administrator on removal: one SCAN step per call, its keys unlinked
# inside Redis, so no key name (site-chosen data) passes through this program.
DELETE_KEYS_STEP = (
    "local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000) "
    "for _, key in ipairs(reply[2]) do redis.call('UNLINK', key) end "
    "return reply[1]"
)

_ENVIRONMENT_LINE = re.compile(
    r"^user (pl[0-9a-f]{12}) on #([0-9a-f]{64}) ~(pressluft_[0-9a-f-]{36}:)\* "
)


# --- the file's content (pure) --------------------------------------------------------

def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def environment_line(name: str, hashed: str, key_prefix: str) -> str:
    return f"user {name} on #{hashed} ~{key_prefix}* resetchannels " + " ".join(ENVIRONMENT_COMMANDS)


def admin_line(secret: str) -> str:
    return f"user {ADMIN_USER} on #{password_hash(secret)} ~* &* +@all"


def render(environments: dict[str, tuple[str, str]], secret: str) -> str:
    """``environments``: name -> (password hash, key prefix)."""
    lines = [DEFAULT_USER_LINE, admin_line(secret)]
    lines += [environment_line(name, *environments[name]) for name in sorted(environments)]
    return "\n".join(lines) + "\n"


def parse_environments(content: str) -> dict[str, tuple[str, str]]:
    """The environment users of an ACL file this module wrote. Their rules are
    rendered anew (an updated rule set reaches every user); lines of any other
    form are dropped."""
    found = {}
    for line in content.splitlines():
        match = _ENVIRONMENT_LINE.match(line)
        if match and KEY_PREFIX.match(match.group(3)):
            found[match.group(1)] = (match.group(2), match.group(3))
        elif line.strip() and not line.startswith(("user default ", f"user {ADMIN_USER} ")):
            info(f"dropped an unknown line from {ACL_FILE}: {line[:40]}")
    return found


def check_environment(name: str, key_prefix: str, password: str | None = None) -> None:
    if not ENVIRONMENT_NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    if not isinstance(key_prefix, str) or not KEY_PREFIX.match(key_prefix):
        raise NodeError("bad_parameters", "unexpected Redis key prefix")
    if password is not None and (not isinstance(password, str) or not PASSWORD.match(password)):
        raise NodeError("bad_parameters", "the Redis password has an unexpected form")


# --- the node's files ---------------------------------------------------------------

@contextlib.contextmanager
def _locked():
    PRESSLUFT_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _admin_secret(create: bool = False) -> str:
    try:
        secret = ADMIN_SECRET_FILE.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise NodeError("remote_step_failed", "this node has no Redis administrator yet "
                            f"({ADMIN_SECRET_FILE}): provision the node again") from None
        secret = secrets.token_hex(32)
        # Created 0600 from the first byte: the secret is never readable by others.
        descriptor = os.open(ADMIN_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
    if not PASSWORD.match(secret):
        raise NodeError("remote_step_failed", f"{ADMIN_SECRET_FILE} does not hold a Redis password")
    return secret


def _current_content() -> str:
    try:
        return ACL_FILE.read_text()
    except FileNotFoundError:
        return ""


def _write(content: str) -> bool:
    try:
        grp.getgrnam(REDIS_GROUP)
    except KeyError:
        raise NodeError("remote_step_failed", "Redis is not installed on this node: provision it first") from None
    # Redis reads it as its own group; nobody else needs it.
    return write_file(ACL_FILE, content, 0o640, owner="root", group=REDIS_GROUP)


# --- talking to Redis as the administrator --------------------------------------------

def admin_command(*args: str, secret: str | None = None) -> str:
    """One command through redis-cli as the administrator; its reply as text."""
    secret = secret or _admin_secret()
    done = run(["redis-cli", "-h", HOST, "-p", PORT, "--user", ADMIN_USER, *args],
               env=dict(os.environ, REDISCLI_AUTH=secret), check=False, timeout=60)
    if "AUTH failed" in done.stderr or done.stdout.startswith("NOAUTH"):
        raise NodeError("remote_step_failed", "Redis refused Pressluft's administrator: it was started without "
                        f"{ACL_FILE}; provision the node again")
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-300:]
        raise NodeError("service_failed", f"redis-cli {args[0]} failed: {detail}", retryable=True)
    return done.stdout.strip()


def _apply(previous: str, secret: str) -> None:
    """Make the running Redis use the file; a refused file is put back."""
    if not services.is_running("redis"):
        info("Redis is not running; it reads the users when it starts")
        return
    reply = admin_command("ACL", "LOAD", secret=secret)
    if reply != "OK":
        if previous:
            _write(previous)
        raise NodeError("config_invalid", f"Redis refused {ACL_FILE}: {reply[:300]}")


def _update(name: str, entry: tuple[str, str] | None) -> bool:
    """Set (or with None remove) one environment's user in the file and in the
    running Redis. Returns True if that user changed."""
    with _locked():
        secret = _admin_secret()
        previous = _current_content()
        environments = parse_environments(previous)
        changed = environments.get(name) != entry
        if entry is None:
            environments.pop(name, None)
        else:
            environments[name] = entry
        _write(render(environments, secret))
        # Loaded even when nothing changed: an earlier run may have written
        # the file and failed before Redis read it.
        _apply(previous, secret)
        return changed


# --- what the programs call -----------------------------------------------------------

def prepare() -> bool:
    """For provisioning, before redis.conf names the file: the administrator's
    secret and the file with the current rules for every environment user.
    Returns True if the file changed (Redis must then read it again)."""
    with _locked():
        secret = _admin_secret(create=True)
        return _write(render(parse_environments(_current_content()), secret))


def ensure_user(name: str, password: str, key_prefix: str) -> bool:
    """Create or update an environment's user. Returns True if it changed."""
    check_environment(name, key_prefix, password)
    return _update(name, (password_hash(password), key_prefix))


def remove_user(name: str, key_prefix: str) -> bool:
    """Remove an environment's user (Redis disconnects its clients), then its
    keys. Returns True if there was a user to remove."""
    check_environment(name, key_prefix)
    if not ACL_FILE.exists() and not ADMIN_SECRET_FILE.exists():
        info("this node has no Redis users yet")
        return False
    existed = _update(name, None)
    deleted = delete_keys(key_prefix)
    info(f"removed the Redis keys under {key_prefix}" if deleted else "Redis is not running: no keys to remove")
    return existed


def delete_keys(key_prefix: str) -> bool:
    """Unlink every key under ``key_prefix``. False if Redis is not running
    (it keeps nothing on disk, so then there are none)."""
    if not KEY_PREFIX.match(key_prefix):
        raise NodeError("bad_parameters", "unexpected Redis key prefix")
    if not services.is_running("redis"):
        return False
    secret = _admin_secret()
    cursor = "0"
    while True:
        cursor = admin_command("EVAL", DELETE_KEYS_STEP, "0", cursor, f"{key_prefix}*", secret=secret)
        if not cursor.isdigit():
            raise NodeError("service_failed", f"Redis could not remove the keys under {key_prefix}: {cursor[:200]}")
        if cursor == "0":
            return True
