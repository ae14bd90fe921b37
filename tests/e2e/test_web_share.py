"""Read-only sharing (issue 19) in a real browser: the owner shares a finished strategy,
copies and revokes the link; someone else opens it at /s/{id} without signing in and
sees the strategy, in its own language, and nothing of the brief."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import WebApp

pytestmark = pytest.mark.e2e

DONE_MS = 20_000


def _finished(page: Page, brief: str) -> None:
    page.fill("#brief", brief)
    page.select_option("#language", "ro")
    page.click("#submit")
    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=DONE_MS
    )


def test_a_shared_link_opens_the_strategy_without_sign_in_until_revoked(
    new_web: Callable[..., WebApp], marker: str, stack_env: dict[str, str]
) -> None:
    owner = new_web()
    page = owner.open()
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=stack_env["WEB_URL"]
    )
    brief = f"Confidential: a cider brand's launch plan ({marker})"
    _finished(page, brief)
    name = page.locator("#strategy-name").inner_text()

    page.click("#share-create")
    link = page.locator("#share-link")
    expect(page.locator("#share-link-row")).to_be_visible()
    url = link.input_value()
    assert url.startswith(f"{stack_env['WEB_URL']}/s/") and len(url.rsplit("/", 1)[1]) >= 32
    expect(page.locator("#share-note")).to_contain_text("until")
    page.click("#share-copy")
    expect(page.locator("#share-note")).to_have_text("Link copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == url

    viewer = new_web()  # a fresh browser: nobody signed in
    shared = viewer.page
    shared.goto(url)
    expect(shared.locator("#strategy-name")).to_have_text(name, timeout=DONE_MS)
    expect(shared.locator("#strategy-name")).to_have_attribute("lang", "ro")
    expect(shared.locator("#shared-note")).to_contain_text("Read-only")
    expect(shared.locator("#brief-form")).to_be_hidden()
    expect(shared.locator("#share-box")).to_be_hidden()
    expect(shared.locator("#delete-task")).to_be_hidden()
    assert shared.evaluate("() => document.body.dataset.uid ?? null") is None  # no sign-in
    assert marker not in shared.content()  # the brief never reaches the viewer

    page.click("#share-revoke")
    expect(page.locator("#share-note")).to_contain_text("revoked")
    expect(page.locator("#share-link-row")).to_be_hidden()
    shared.reload()
    expect(shared.locator("#shared-note")).to_contain_text("does not work")
    expect(shared.locator("#strategy")).to_be_hidden()
