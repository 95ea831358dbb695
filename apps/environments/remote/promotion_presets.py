"""Promotion presets: which tables of production a promotion never writes.

Standard library only, no Django: the panel imports it
(``apps.environments.remote.promotion_presets``) to show and check a plan, and
node programs import it from the node bundle (every file of ``apps/*/remote/``
is installed under the node's lib dir), so both sides classify a table the
same way.

- ``content-protect``: the content tables (posts, terms, comments and their
  meta), with the site's table prefix.
- ``commerce-protect``: the same, plus WooCommerce's order and customer
  tables, and every table whose name (after the prefix) starts with
  ``wc_order`` — the HPOS tables ``wc_orders``, ``wc_orders_meta``,
  ``wc_order_addresses``, ``wc_order_operational_data`` and the order lookup
  tables — and ``actionscheduler_*`` (the Action Scheduler's queue: staging
  holds its payments and renewals back, production must keep its own),
  wherever they are present.

``wp-content/uploads`` is never written by a promotion under any preset (it is
a link into the environment's own ``shared/``).
"""

from __future__ import annotations

import re

CONTENT_TABLES = ("posts", "postmeta", "terms", "term_taxonomy", "term_relationships", "comments", "commentmeta")
COMMERCE_TABLES = ("woocommerce_orders", "woocommerce_order_items", "woocommerce_order_itemmeta",
                   "wc_customer_lookup", "wc_order_stats")
# Table names (after the prefix) that start with one of these are protected too: every
# WooCommerce order table (HPOS and lookups), and the Action Scheduler's queue, whose
# renewals and payments a staging copy holds back (docs/staging-holds.md).
COMMERCE_PREFIXES = ("wc_order", "actionscheduler_")

PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "content-protect": {"tables": CONTENT_TABLES, "prefixes": ()},
    "commerce-protect": {"tables": CONTENT_TABLES + COMMERCE_TABLES, "prefixes": COMMERCE_PREFIXES},
}
PREFIX = re.compile(r"^[A-Za-z0-9_]{1,32}$")


class UnknownPreset(ValueError):
    pass


def preset(name: str) -> dict[str, tuple[str, ...]]:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPreset(f"unknown promotion preset {name!r}") from None


def is_protected(table: str, preset_name: str, prefix: str) -> bool:
    """Whether ``table`` (its full name, prefix included) is one the preset keeps."""
    rules = preset(preset_name)
    if not table.startswith(prefix):
        return False
    bare = table[len(prefix):]
    return bare in rules["tables"] or any(bare.startswith(start) for start in rules["prefixes"])


def protected_tables(tables, preset_name: str, prefix: str) -> list[str]:
    """The protected ones among ``tables`` (full names), sorted."""
    return sorted(table for table in tables if is_protected(table, preset_name, prefix))
