"""A small WordPress.org-compatible update service on loopback for the update
tests: the three update checks WordPress asks (core version check, plugin and
theme update checks) and the packages they name. What it offers is set by the
test as it goes."""

import io
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def zip_tree(files: dict[str, str | bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip archive of {name: content}, and symbolic links {name: target}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            entry = zipfile.ZipInfo(name)
            entry.create_system = 3
            entry.external_attr = (0o120777 << 16)
            archive.writestr(entry, target)
    return buffer.getvalue()


def core_package(source: Path, version: str, db_version: int | None = None, broken_pages: bool = False) -> bytes:
    """WordPress as installed here (Debian's copy, links read through) in a
    ``wordpress/`` folder, with ``version`` (and ``db_version``) in its
    version.php; without wp-content, as WordPress.org's no-content packages.
    ``broken_pages``: its template loader fatals (every page; WordPress still loads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for folder, dirs, files in os.walk(source, followlinks=True):
            relative = Path(folder).relative_to(source)
            if relative.parts[:1] == ("wp-content",):
                dirs[:] = []
                continue
            for name in files:
                path = relative / name
                if path.as_posix() in ("wp-config.php", ".htaccess"):
                    continue
                data = (Path(folder) / name).read_bytes()
                if path.as_posix() == "wp-includes/version.php":
                    text = data.decode()
                    start = text.index("$wp_version = '") + len("$wp_version = '")
                    text = text[:start] + version + text[text.index("'", start):]
                    if db_version is not None:
                        start = text.index("$wp_db_version = ") + len("$wp_db_version = ")
                        text = text[:start] + str(db_version) + text[text.index(";", start):]
                    data = text.encode()
                if broken_pages and path.as_posix() == "wp-includes/template-loader.php":
                    data = data.replace(b"<?php", b"<?php pressluft_core_no_such_function();", 1)
                archive.writestr(f"wordpress/{path.as_posix()}", data)
    return buffer.getvalue()


class UpdateServer:
    def __init__(self):
        self.core: dict | None = None  # {"version", "package"}
        self.plugins: dict[str, dict] = {}  # plugin file -> {"version", "package"}
        self.themes: dict[str, dict] = {}  # stylesheet -> {"version", "package"}
        self.packages: dict[str, bytes] = {}
        self.asked: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer()

            def _answer(self):
                path = self.path.split("?", 1)[0]
                server.asked.append(path)
                if path.startswith("/packages/") and path[len("/packages/"):] in server.packages:
                    return self._send(200, server.packages[path[len("/packages/"):]], "application/zip")
                if path == "/core/version-check/1.7/":
                    offers = []
                    if server.core:
                        version = server.core["version"]
                        package = server.url(server.core["package"])
                        offers.append({"response": "upgrade", "download": package, "locale": "en_US",
                                       "packages": {"full": package, "no_content": "", "new_bundled": "",
                                                    "partial": "", "rollback": ""},
                                       "current": version, "version": version, "php_version": "7.0.0",
                                       "mysql_version": "5.0", "new_bundled": "6.1", "partial_version": ""})
                    return self._send(200, json.dumps({"offers": offers, "translations": []}).encode())
                if path == "/plugins/update-check/1.1/":
                    plugins = {file: {"id": f"test/{file}", "slug": file.split("/")[0], "plugin": file,
                                      "new_version": offer["version"], "url": "http://example.test/",
                                      "package": server.url(offer["package"])}
                               for file, offer in server.plugins.items()}
                    return self._send(200, json.dumps({"plugins": plugins, "translations": [], "no_update": {}}).encode())
                if path == "/themes/update-check/1.1/":
                    themes = {slug: {"theme": slug, "new_version": offer["version"], "url": "http://example.test/",
                                     "package": server.url(offer["package"])}
                              for slug, offer in server.themes.items()}
                    return self._send(200, json.dumps({"themes": themes, "translations": [], "no_update": {}}).encode())
                return self._send(404, b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, package: str) -> str:
        return f"{self.base}packages/{package}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
