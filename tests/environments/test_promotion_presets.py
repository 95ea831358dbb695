"""Which tables each promotion preset keeps (apps/environments/remote/promotion_presets.py,
shared by the panel, the drift check and the node programs env_promote.py and env_checksums.py)."""

import pytest

from apps.environments.choices import PromotionPreset
from apps.environments.remote import promotion_presets

TABLES = ["wp_options", "wp_posts", "wp_postmeta", "wp_comments", "wp_commentmeta", "wp_terms", "wp_term_taxonomy",
          "wp_term_relationships", "wp_termmeta", "wp_users", "wp_usermeta", "wp_woocommerce_order_items",
          "wp_woocommerce_order_itemmeta", "wp_woocommerce_orders", "wp_wc_customer_lookup", "wp_wc_order_stats",
          "wp_wc_orders", "wp_wc_orders_meta", "wp_wc_order_addresses", "wp_wc_order_operational_data",
          "wp_wc_product_meta_lookup", "wp_actionscheduler_actions", "wp_actionscheduler_logs", "wp_shop_settings",
          "other_posts", "wp_postsx"]
CONTENT = ["wp_commentmeta", "wp_comments", "wp_postmeta", "wp_posts", "wp_term_relationships", "wp_term_taxonomy",
           "wp_terms"]


def test_every_preset_of_the_model_is_known():
    assert set(promotion_presets.preset_names()) == set(PromotionPreset.values)


def test_content_protect_keeps_the_content_tables_with_the_prefix_only():
    assert promotion_presets.protected_tables(TABLES, "wp_", "content-protect") == CONTENT


def test_commerce_protect_adds_orders_customers_every_hpos_table_and_the_action_scheduler():
    assert promotion_presets.protected_tables(TABLES, "wp_", "commerce-protect") == sorted(CONTENT + [
        "wp_actionscheduler_actions", "wp_actionscheduler_logs",
        "wp_wc_customer_lookup", "wp_wc_order_addresses", "wp_wc_order_operational_data", "wp_wc_order_stats",
        "wp_wc_orders", "wp_wc_orders_meta", "wp_woocommerce_order_itemmeta", "wp_woocommerce_order_items",
        "wp_woocommerce_orders"])


def test_another_prefix_and_an_unknown_preset():
    assert promotion_presets.protected_tables(["shop_posts", "wp_posts"], "shop_", "content-protect") == ["shop_posts"]
    with pytest.raises(ValueError):
        promotion_presets.protected_tables(TABLES, "wp_", "everything")
