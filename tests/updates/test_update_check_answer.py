"""What the site's WordPress answers to the update check is the site's to
write (its plugins run in the helper): the node program keeps only plugin
files, theme names, versions and http(s) package URLs of the expected forms,
so a compromised site cannot name a local file as a package, a path leading
out of wp-content, or a version that breaks a log line."""

import sys

from django.conf import settings

for folder in ("backups", "environments", "nodes"):
    path = str(settings.BASE_DIR / "apps" / folder / "remote")
    if path not in sys.path:
        sys.path.append(path)

import env_update  # noqa: E402  (a node-side program: found through the path above)


def test_hostile_answer_fields_are_dropped():
    answer = {
        "core": {"installed": "6.1.9", "available": "6.2\nERROR x", "package": "file:///etc/shadow"},
        "plugins": [
            {"file": "../../../../etc/passwd.php", "name": "Up", "installed": "1", "available": "2",
             "package": "https://example.test/up.zip"},
            {"file": "shop/shop.php", "name": "Shop\u202e", "installed": "1.0", "available": "2.0",
             "package": "file:///root/.ssh/id_ed25519"},
            {"file": "ok/ok.php", "name": "OK", "installed": "1.0", "available": "1.1",
             "package": "https://downloads.example.test/ok.1.1.zip"},
        ],
        "themes": [{"stylesheet": "../x", "available": "2", "package": "https://example.test/x.zip"},
                   {"stylesheet": "lark", "installed": "1", "available": "2", "package": "gopher://x/y.zip"}],
        "latest_post_url": "javascript:alert(1)",
    }
    found = env_update.offered(answer)
    assert found["core"] == {"installed": "6.1.9", "available": None, "package": None, "php_version": "",
                             "mysql_version": ""}
    assert [row["file"] for row in found["plugins"]] == ["shop/shop.php", "ok/ok.php"]
    assert found["plugins"][0]["package"] is None and "\u202e" not in found["plugins"][0]["name"]
    assert [row["stylesheet"] for row in found["themes"]] == ["lark"] and found["themes"][0]["package"] is None
    assert found["latest_post_url"] is None
    # Only what has a usable package is updated.
    assert [(c["type"], c["key"]) for c in env_update.pending(found, "all")] == [("plugin", "ok/ok.php")]
    assert env_update.pending(found, "themes") == []
