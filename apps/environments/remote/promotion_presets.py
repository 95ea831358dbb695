"""What a promotion never overwrites in production, per preset: one
definition for the panel (``apps.environments.remote.promotion_presets``) and
for the node programs (``import promotion_presets``, installed with the rest
of this directory). Standard library only, no imports from the panel or from
nodelib, so both sides can load it.

Table names here are without the site's table prefix; ``protected_tables``
applies it to the tables a database actually has.
"""

from __future__ import annotations

CONTENT_PROTECT = "content-protect"
COMMERCE_PROTECT = "commerce-protect"

CONTENT_TABLES = ("posts", "postmeta", "terms", "term_taxonomy", "term_relationships", "comments", "commentmeta")
COMMERCE_TABLES = CONTENT_TABLES + (
    "woocommerce_orders", "woocommerce_order_items", "woocommerce_order_itemmeta", "wc_customer_lookup",
    "wc_order_stats",
)
# Protected where present, by the start of their name: every WooCommerce order
# table — the HPOS tables (wc_orders, wc_orders_meta, wc_order_addresses,
# wc_order_operational_data: an order's address lives in the third, so "wc_orders*"
# alone would keep orders and lose where they ship) and the order lookup tables —,
# and the Action Scheduler's queue, whose renewals and payments a staging copy
# holds back (docs/staging-holds.md): production must keep its own.
COMMERCE_TABLE_PREFIXES = ("wc_order", "actionscheduler_")

PRESETS = {
    CONTENT_PROTECT: {"tables": CONTENT_TABLES, "table_prefixes": ()},
    COMMERCE_PROTECT: {"tables": COMMERCE_TABLES, "table_prefixes": COMMERCE_TABLE_PREFIXES},
}

# Paths under an environment's root a promotion never writes, whatever the preset.
PROTECTED_PATHS = ("shared/uploads",)
# The same, as seen from inside a release (a link into shared/).
PROTECTED_RELEASE_PATHS = ("wp-content/uploads",)

# Data WordPress and WooCommerce rewrite by themselves while a site is merely
# visited (caches, the WP-Cron schedule, login sessions, carts, queued
# background actions). A drift check reports their changes but they do not
# make production "drifted": otherwise every live site would drift within
# minutes of each check. Tables (without prefix) and, per table, rows by a
# column's value: exact names or LIKE patterns.
VOLATILE_TABLES = ("woocommerce_sessions", "actionscheduler_actions", "actionscheduler_logs",
                   "actionscheduler_claims")
VOLATILE_ROWS = {
    "options": ("option_name", ("cron",), ("\\_transient\\_%", "\\_site\\_transient\\_%")),
    "usermeta": ("meta_key", ("session_tokens",), ()),
}


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)


def is_protected_table(table: str, prefix: str, preset: str) -> bool:
    """Whether ``table`` (a full name, prefix included) is never overwritten under ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown promotion preset {preset!r}")
    if not table.startswith(prefix):
        return False
    bare = table[len(prefix):]
    rules = PRESETS[preset]
    return bare in rules["tables"] or any(bare.startswith(start) for start in rules["table_prefixes"])


def protected_tables(tables, prefix: str, preset: str) -> list[str]:
    """The tables among ``tables`` (full names) that ``preset`` protects."""
    return sorted(table for table in tables if is_protected_table(table, prefix, preset))


def is_volatile_table(table: str, prefix: str) -> bool:
    return table.startswith(prefix) and table[len(prefix):] in VOLATILE_TABLES


def volatile_rows(table: str, prefix: str) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """(column, exact values, LIKE patterns) of ``table``'s volatile rows, or None."""
    if not table.startswith(prefix):
        return None
    return VOLATILE_ROWS.get(table[len(prefix):])
