"""Revisions in a real browser (issue 19): revise a finished strategy from its page,
follow the new version, see the versions listed and compare two side by side."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import WebApp

pytestmark = pytest.mark.e2e

DONE_MS = 20_000


def test_revise_then_compare_two_versions(web: WebApp, marker: str) -> None:
    page = web.open()
    page.fill("#brief", f"Bike repair shop in Iasi ({marker})")
    page.set_checked("#image", False)
    page.click("#submit")
    status = page.locator("#task-status")
    expect(status).to_have_attribute("data-status", "COMPLETED", timeout=DONE_MS)
    first_id = page.locator("#task-panel").get_attribute("data-task-id")
    expect(page.locator("#versions-box")).to_be_visible()

    page.click("#revise-submit")  # nothing typed: asked what to change, nothing sent
    expect(page.locator("#revise-error")).to_have_text("Say what should change.")
    page.fill("#revise-instruction", "Halve the budget and add TikTok")
    page.click("#revise-submit")
    expect(page.locator("#task-panel")).not_to_have_attribute("data-task-id", first_id or "")
    expect(status).to_have_attribute("data-status", "COMPLETED", timeout=DONE_MS)
    second_id = page.locator("#task-panel").get_attribute("data-task-id")

    items = page.locator("#versions-list .version-item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_have_attribute("data-task-id", first_id or "")
    expect(items.nth(1)).to_contain_text("Halve the budget and add TikTok")
    expect(items.nth(1)).to_have_attribute("aria-current", "true")
    assert page.locator("#compare-a").input_value() == first_id
    assert page.locator("#compare-b").input_value() == second_id

    page.click("#compare-button")
    table = page.locator("#compare-view table")
    expect(table).to_be_visible()
    expect(table.locator("caption")).to_have_text("Version 1 and version 2")
    rows = table.locator("tr[data-change]")
    assert rows.count() >= 3  # the budget, channels, steps...
    marks = set(rows.evaluate_all("rows => rows.map(row => row.dataset.change)"))
    assert marks <= {"same", "changed", "added", "removed"} and marks - {"same"}, marks

    items.nth(0).click()  # back to the first version
    expect(page.locator("#task-panel")).to_have_attribute("data-task-id", first_id or "")
