"""The presets' protected tables and the panel's comparison of two
measurements: what a promotion would overwrite makes production drifted,
what it keeps (protected tables, volatile rows and tables, uploads) is only
reported. The measurements here are shaped as env_checksums.py returns them
(tests/sites/test_drift_e2e.py measures a real site)."""

import copy

from apps.environments import drift
from apps.environments.remote import promotion_presets as presets


def test_presets_protect_content_and_commerce_tables_with_the_prefix():
    tables = ["wp_posts", "wp_comments", "wp_options", "wp_wc_orders", "wp_wc_orders_meta", "wp_wc_order_stats",
              "wp_woocommerce_order_items", "wp_usermeta", "other_posts", "wp_wc_product_meta_lookup"]
    assert presets.protected_tables(tables, "wp_", "content-protect") == ["wp_comments", "wp_posts"]
    assert presets.protected_tables(tables, "wp_", "commerce-protect") == [
        "wp_comments", "wp_posts", "wp_wc_order_stats", "wp_wc_orders", "wp_wc_orders_meta",
        "wp_woocommerce_order_items"]
    assert not presets.is_protected_table("other_posts", "wp_", "commerce-protect")
    assert set(presets.preset_names()) == {"content-protect", "commerce-protect"}


def table(rows, checksum, chunks=None, volatile=None):
    entry = {"rows": rows, "checksum": checksum, "key": "integer", "chunks": chunks or [[rows, rows, checksum[:16]]]}
    if volatile:
        entry["volatile"] = volatile
    return entry


BASELINE = {
    "prefix": "wp_",
    "release": "20260101T000000Z",
    "tables": {
        "wp_options": table(100, "a" * 64, chunks=[[50, 50, "1"], [120, 50, "2"]],
                            volatile={"rows": 3, "checksum": "v1"}),
        "wp_posts": table(10, "b" * 64),
        "wp_wc_orders": table(5, "c" * 64),
        "wp_woocommerce_sessions": table(2, "d" * 64),
    },
    "code": {"index.php": ["file", 10, "e" * 64], "wp-content/plugins/shop.php": ["file", 20, "f" * 64]},
    "uploads": {"2026/a.jpg": ["file", 5, "1" * 64]},
}


def changed(**tables):
    now = copy.deepcopy(BASELINE)
    for name, entry in tables.items():
        if entry is None:
            del now["tables"][name]
        else:
            now["tables"][name] = entry
    return now


def test_unchanged_production_is_clean():
    report = drift.compare(BASELINE, copy.deepcopy(BASELINE), "content-protect")
    assert report["result"] == "clean" and report["tables"] == []
    assert drift.summary(report) == "clean: production unchanged since the baseline"


def test_orders_and_posts_added_in_production_are_reported_not_blocking_under_commerce_protect():
    now = changed(wp_posts=table(11, "x" * 64), wp_wc_orders=table(7, "y" * 64))
    now["uploads"]["2026/b.jpg"] = ["file", 6, "2" * 64]
    report = drift.compare(BASELINE, now, "commerce-protect")
    assert report["result"] == "clean"
    assert {(entry["table"], entry["rows_added"], entry["blocking"]) for entry in report["tables"]} == {
        ("wp_posts", 1, False), ("wp_wc_orders", 2, False)}
    assert report["uploads"]["added"] == ["2026/b.jpg"]
    # The same orders under content-protect: the promotion would overwrite them.
    assert drift.compare(BASELINE, now, "content-protect")["blocking_tables"] == ["wp_wc_orders"]


def test_a_changed_setting_is_drift_and_says_after_which_key():
    now = changed(wp_options=table(100, "z" * 64, chunks=[[50, 50, "1"], [120, 50, "3"]],
                                   volatile={"rows": 3, "checksum": "v1"}))
    report = drift.compare(BASELINE, now, "commerce-protect")
    assert report["result"] == "drifted" and report["blocking_tables"] == ["wp_options"]
    assert report["tables"][0]["changed_after_key"] == 50


def test_volatile_rows_and_tables_are_reported_not_blocking():
    now = changed(wp_options=table(100, "a" * 64, chunks=[[50, 50, "1"], [120, 50, "2"]],
                                   volatile={"rows": 4, "checksum": "v2"}),
                  wp_woocommerce_sessions=table(9, "s" * 64))
    report = drift.compare(BASELINE, now, "content-protect")
    assert report["result"] == "clean"
    assert {(entry["table"], entry["kind"]) for entry in report["tables"]} == {
        ("wp_options", "volatile rows"), ("wp_woocommerce_sessions", "volatile")}


def test_tables_added_or_removed_and_code_changes_are_drift():
    now = changed(wp_woocommerce_sessions=None, wp_newplugin=table(1, "n" * 64))
    report = drift.compare(BASELINE, now, "content-protect")
    assert report["result"] == "drifted"
    assert {(entry["table"], entry["change"]) for entry in report["tables"]} == {
        ("wp_newplugin", "added"), ("wp_woocommerce_sessions", "removed")}
    assert report["blocking_tables"] == ["wp_newplugin"]  # a volatile table's going is reported only

    code = copy.deepcopy(BASELINE)
    code["code"]["wp-content/plugins/shop.php"] = ["file", 21, "0" * 64]
    code["code"]["wp-content/plugins/new.php"] = ["file", 1, "0" * 64]
    del code["code"]["index.php"]
    report = drift.compare(BASELINE, code, "content-protect")
    assert report["result"] == "drifted" and report["code_changes"] == 3
    assert (report["code"]["added"], report["code"]["changed"], report["code"]["removed"]) == (
        ["wp-content/plugins/new.php"], ["wp-content/plugins/shop.php"], ["index.php"])
