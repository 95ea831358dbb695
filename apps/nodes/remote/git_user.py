"""The unprivileged account git deploys fetch and check out as.

A repository is foreign input, and git (with ssh) parses a lot of it: a bug
there must not run as root. Neither is it the environment's own user, which is
exactly what an attacker holding the site has. ``pressluft-git`` owns nothing
but the scratch directory of the fetch it is running; it has no home, no login
shell and no supplementary groups. provision.py creates it; env_deploy.py
creates it as well when a node provisioned before it existed deploys.
"""

import pwd

from nodelib import NodeError, run

GIT_USER = "pressluft-git"


def ensure() -> pwd.struct_passwd:
    """The account, created if missing (idempotent, safe against a concurrent run)."""
    try:
        return pwd.getpwnam(GIT_USER)
    except KeyError:
        pass
    created = run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent", "--no-create-home",
                   "--shell", "/usr/sbin/nologin", "--comment", "Pressluft git deploys", GIT_USER], check=False)
    try:
        return pwd.getpwnam(GIT_USER)
    except KeyError:
        raise NodeError("remote_step_failed", f"could not create the system user {GIT_USER}: "
                                              f"{created.stderr.strip()}") from None


def exists() -> bool:
    try:
        pwd.getpwnam(GIT_USER)
        return True
    except KeyError:
        return False

