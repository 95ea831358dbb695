"""The admin's public-key boxes select their whole key on a click (their
inline script), so an operator copies it in one go: the panel's key on the
node pages, an environment's deploy key on its git repository page."""

import pytest
from playwright.sync_api import expect

from tests.browser.support import log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SELECTS_ALL = "box => box.selectionStart === 0 && box.selectionEnd === box.value.length && box.value.length > 40"


def click_selects_the_key(box, starts_with: str) -> None:
    assert box.input_value().startswith(starts_with)
    assert not box.evaluate(SELECTS_ALL)
    box.click()
    assert box.evaluate(SELECTS_ALL)


def test_key_boxes_select_the_whole_key_on_click(browser_page, staff_user):
    from apps.environments.factories import EnvironmentFactory
    from apps.nodes import keys
    from apps.nodes.factories import NodeFactory
    from apps.sites.factories import SiteFactory

    node = NodeFactory(name="far")
    environment = EnvironmentFactory(site=SiteFactory(slug="keys"), node=node, slug="staging",
                                     environment_type="staging")
    page = browser_page.page
    log_in(page, staff_user.email, PASSWORD)
    panel_key = keys.public_key().strip()

    # "Register node": the panel's key to authorize on the new node.
    page.goto("/admin/nodes/node/add/")
    box = page.locator("textarea.pressluft-key")
    click_selects_the_key(box, "ssh-")
    assert box.input_value().strip() == panel_key

    # A node's page shows the same key.
    page.goto(f"/admin/nodes/node/{node.pk}/change/")
    box = page.locator(".field-panel_public_key textarea")
    click_selects_the_key(box, "ssh-")
    assert box.input_value().strip() == panel_key

    # An environment's deploy key, made when its repository is first set.
    page.goto(f"/admin/environments/environment/{environment.pk}/change/")
    page.get_by_role("button", name="Git repository").click()
    page.get_by_label("Repository URL").fill("https://git.example.test/keys.git")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("repository set to https://git.example.test/keys.git")
    environment.refresh_from_db()
    box = page.locator("textarea.pressluft-key")
    click_selects_the_key(box, "ssh-")
    assert box.input_value().strip() == environment.deploy_key_public.strip()
    browser_page.assert_clean()
