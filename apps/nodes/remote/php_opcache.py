"""PHP's opcache after a release switch, without reloading PHP-FPM.

A switch used to reload PHP-FPM, which empties the opcache of every site on
the node. It is not needed for the switch itself: Nginx passes
``$realpath_root`` as SCRIPT_FILENAME and DOCUMENT_ROOT, so a new release's
code has new real paths and new opcache keys, and nothing WordPress includes
goes through the ``current`` link (so PHP's realpath cache never holds it).
Two things still need care, and :func:`forget_stale_code` does both through
the environment's own pool (one FastCGI request, ``pressluft-opcache.php``):

- files whose real path stays the same across releases (everything under
  ``shared/``: ``wp-config.php``, the object cache drop-in, the uploads) may
  have changed with the switch; opcache would serve its copy for up to
  ``opcache.revalidate_freq`` seconds. They are invalidated.
- the release that was left stays cached and would fill the opcache's memory
  switch after switch; invalidated, it counts as wasted memory, and opcache
  restarts itself when it runs out (``opcache.max_wasted_percentage``).

So: everything the opcache holds under the environment's root except its
live release is invalidated. If the pool cannot be asked, PHP-FPM is reloaded
as before (correct, only slower). A changed pool configuration still reloads
PHP-FPM (env_setup, env_clone): that is what a reload is for.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import services
from nodelib import LIB_DIR, NodeError, info, write_file

SCRIPT = "pressluft-opcache.php"
# Inside every pool's open_basedir (php-fpm-pool.conf.tmpl: the root and /usr/share/php/),
# outside every document root; named after the program directory so that
# several test checkouts sharing a node do not replace each other's copy.
SCRIPT_DIR = Path("/usr/share/php") / LIB_DIR.name
SOCKET_DIR = Path("/run/php")
TIMEOUT = 20

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
MAX_ANSWER = 1024 * 1024


def _record(kind: int, content: bytes) -> bytes:
    return struct.pack("!BBHHBx", 1, kind, 1, len(content), 0) + content


def _length(value: bytes) -> bytes:
    return bytes([len(value)]) if len(value) < 128 else struct.pack("!I", len(value) | 0x80000000)


def _params(values: dict[str, str]) -> bytes:
    encoded = b""
    for key, value in values.items():
        key_bytes, value_bytes = key.encode(), value.encode()
        encoded += _length(key_bytes) + _length(value_bytes) + key_bytes + value_bytes
    return encoded


def fastcgi_call(socket_path: Path, params: dict[str, str], timeout: float = TIMEOUT) -> bytes:
    """One FastCGI request (no body) to a PHP-FPM socket: the response's stdout."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(socket_path))
        connection.sendall(_record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0)) + _record(PARAMS, _params(params))
                           + _record(PARAMS, b"") + _record(STDIN, b""))
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
            if len(received) > MAX_ANSWER:
                raise OSError("the pool's answer is too long")
    stdout, ended = b"", False
    while len(received) >= 8:
        _, kind, _, length, padding = struct.unpack("!BBHHBx", received[:8])
        content, received = received[8:8 + length], received[8 + length + padding:]
        if kind == STDOUT:
            stdout += content
        elif kind == END_REQUEST:
            ended = True
    if not ended:
        raise OSError("the pool ended the connection before the request")
    return stdout


def install_script() -> Path:
    """The node's copy of the script where every pool may run it (root's, read-only)."""
    path = SCRIPT_DIR / SCRIPT
    SCRIPT_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_file(path, (LIB_DIR / SCRIPT).read_bytes(), 0o644)
    return path


def _ask_pool(system_name: str, root: Path, live_release: str | None) -> dict:
    script = install_script()
    params = {
        "GATEWAY_INTERFACE": "FastCGI/1.0", "REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
        "SCRIPT_FILENAME": str(script), "SCRIPT_NAME": "/" + SCRIPT, "REQUEST_URI": "/" + SCRIPT,
        "DOCUMENT_ROOT": str(SCRIPT_DIR), "QUERY_STRING": "",
        "PRESSLUFT_ROOT": str(root), "PRESSLUFT_LIVE_RELEASE": live_release or "",
    }
    answer = fastcgi_call(SOCKET_DIR / f"{system_name}.sock", params)
    body = answer.split(b"\r\n\r\n", 1)[-1]
    try:
        report = json.loads(body.decode())
    except ValueError:
        raise OSError("the pool gave no readable answer") from None
    if not isinstance(report, dict) or "error" in report:
        raise OSError(f"the pool answered: {report.get('error') if isinstance(report, dict) else 'no report'}")
    return report


def forget_stale_code(system_name: str, root: Path, live_release: str | None) -> dict:
    """After ``current`` changed (or a file in ``shared/``): the opcache forgets
    everything of this environment except ``live_release``. Falls back to a
    PHP-FPM reload if the pool cannot be asked."""
    services.ensure_running("php-fpm")
    try:
        report = _ask_pool(system_name, root, live_release)
    except (OSError, NodeError) as exc:
        info(f"PHP's opcache could not be asked through the environment's pool ({exc}): reloading PHP-FPM instead")
        services.reload("php-fpm")
        return {"reloaded": True}
    if report.get("enabled"):
        info(f"opcache: {report.get('invalidated', 0)} cached file(s) of this environment outside the live release "
             "invalidated")
    return dict(report, reloaded=False)
