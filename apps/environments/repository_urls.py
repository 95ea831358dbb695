"""Git repository URLs must not carry credentials.

A URL such as ``https://user:token@git.example.com/shop.git`` would be
stored in the database, shown in the admin and the API, copied into job
payloads and release records, and sent to the node. Access to a private
repository goes through the environment's deploy key instead: an ssh URL,
with the key's public half given to the repository host (read-only).

Every way a repository reaches the panel (the git repository setting, a
deploy's ``<repository>#<ref>``, through the API, the admin or a command)
passes the service functions, which call ``refuse_credentials``.
"""

from urllib.parse import urlsplit

from apps.core.errors import ApiError

SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}

CREDENTIALS_MESSAGE = (
    "The repository URL carries credentials (a user name, password or token); they would be stored and "
    "shown in the panel. Use an ssh URL (git@host:owner/repo.git or ssh://git@host/owner/repo.git) and give "
    "the repository host this environment's deploy key (read-only) instead."
)


def has_credentials(url: str) -> bool:
    """Whether the URL holds a secret: a password or token in its user part
    (for ssh only a password: ``git@`` names the account, it proves nothing),
    or, over http(s), any user part or query string."""
    if "://" not in url:
        # scp-like git@host:path: a user name only (git has no password syntax here).
        user, at, _ = url.partition("@")
        return bool(at) and ":" in user
    try:
        parts = urlsplit(url)
    except ValueError:
        return False  # not a URL at all: the format check refuses it
    scheme = parts.scheme.lower()
    if scheme in SSH_SCHEMES:
        return ":" in parts.netloc.rpartition("@")[0]
    if "@" in parts.netloc:
        return True
    return scheme in {"http", "https"} and bool(parts.query)


def refuse_credentials(url: str, field: str) -> None:
    """400 bad_request when ``url`` carries credentials; ``field`` names it in the details."""
    if url and has_credentials(url):
        raise ApiError("bad_request", CREDENTIALS_MESSAGE,
                       {"fields": {field: ["credentials in the URL; use an ssh URL and the deploy key"]}})
