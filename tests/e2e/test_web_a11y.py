"""Accessibility: the web app used with the keyboard alone, end to end, and axe-core
finding no serious or critical violation on the empty form, a running task and a
finished strategy, in both languages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import WebApp
from tests.e2e.helpers import (
    DONE_MS,
    FORMAT_LOCALES,
    message,
    pdf_bytes,
    run_axe,
    submit_brief,
    wait_completed,
)

pytestmark = pytest.mark.e2e

# What has the focus, and whether it is drawn: the element itself, or for the
# visually hidden file input, its label that stands in for it.
FOCUSED = """
() => {
  const node = document.activeElement;
  if (!node || node === document.body) return null;
  const shown = node.id === 'pdf' ? document.querySelector('.file-button') : node;
  const style = getComputedStyle(shown);
  const box = shown.getBoundingClientRect();
  return {
    key: node.id || node.dataset.uiLanguage || node.className,
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0,
  };
}
"""
FORM_ORDER = ["skip-link", "en", "ro", "brief", "urls", "pdf", "language", "image"]
FORM_ORDER += ["grounding", "submit"]


def tab_until(page: Page, key: str, limit: int = 40) -> list[str]:
    """Press Tab until `key` has the focus; every stop must show a visible focus."""
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused, "the focus left the page"
        assert focused["outline"], f"no visible focus on {focused['key']}"
        assert focused["onScreen"], f"{focused['key']} has the focus but is not on screen"
        seen.append(focused["key"])
        if focused["key"] == key:
            return seen
    raise AssertionError(f"{key} never got the focus: {seen}")


def test_keyboard_alone_from_brief_to_markdown(
    web: WebApp, marker: str, read_task: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    page = web.open()
    # Listening from the start: Playwright turns file chooser interception on when
    # the first listener comes, and an Enter sent right after may beat it.
    page.on("filechooser", lambda _: None)
    seen = tab_until(page, "brief")
    page.keyboard.type(f"Board game café in Brasov ({marker})")
    seen += tab_until(page, "pdf")
    # The drop zone's file input opens the file chooser from the keyboard.
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(
        files=[{"name": "menu.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes(2048)}]
    )
    expect(page.locator("#pdf-chosen")).to_contain_text("menu.pdf")
    seen += tab_until(page, "image")
    page.keyboard.press("Space")  # no preview image
    expect(page.locator("#image")).not_to_be_checked()
    seen += tab_until(page, "submit")
    assert [key for key in seen if key in FORM_ORDER] == FORM_ORDER
    page.keyboard.press("Enter")

    task_id = wait_completed(page)
    expect(page.locator("#submit")).to_be_focused()  # the keyboard's place is kept
    task = read_task(task_id)
    assert task["request"]["image"] is False
    assert task["request"]["pdf"]["filename"] == "menu.pdf"
    tab_until(page, "export-markdown")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename.endswith(".md")
    tab_until(page, "export-print")


def test_language_switch_and_skip_link_by_keyboard(web: WebApp) -> None:
    page = web.open()
    tab_until(page, "ro")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "ro")
    expect(page.locator("[data-ui-language=ro]")).to_be_focused()  # the focus stays put
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Space")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    # The skip link jumps past the top bar to the form.
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("#brief")).to_be_focused()


def assert_no_serious_violations(page: Page, when: str) -> None:
    violations = run_axe(page)
    assert violations == [], f"{when}: {violations}"


@pytest.mark.parametrize("language", ["en", "ro"])
def test_axe_finds_no_serious_violations(
    new_web: Callable[..., WebApp],
    marker: str,
    standin_fault: Callable[..., Any],
    language: str,
) -> None:
    # A slow strategy call, so that the running task can be checked too.
    standin_fault(marker, endpoint="generateContent", latency_s=3, times=1)
    page = new_web(locale=FORMAT_LOCALES[language]).open()
    expect(page.locator("html")).to_have_attribute("lang", language)
    assert_no_serious_violations(page, "empty form")

    page.click("#submit")  # an empty brief: the form with its error shown
    expect(page.locator("#brief-error")).to_have_text(message(language, "val.brief_empty"))
    assert_no_serious_violations(page, "form with an error")

    submit_brief(page, f"Yoga studio in Timisoara ({marker})", image=True)
    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", re.compile("PENDING|PROCESSING")
    )
    expect(page.locator("#progress-box")).to_be_visible()
    assert_no_serious_violations(page, "running task")

    wait_completed(page)
    expect(page.locator("#preview")).to_be_visible(timeout=DONE_MS)
    assert_no_serious_violations(page, "finished strategy")


def test_cancel_by_keyboard_keeps_the_focus_in_the_task(
    web: WebApp, marker: str, standin_fault: Callable[..., Any]
) -> None:
    standin_fault(marker, endpoint="generateContent", latency_s=5)
    page = web.open()
    submit_brief(page, f"Slow brief to cancel by keyboard ({marker})", image=False)
    expect(page.locator("#cancel")).to_be_visible()
    page.focus("#submit")
    tab_until(page, "cancel")
    page.keyboard.press("Enter")
    expect(page.locator("#task-status")).to_have_attribute("data-status", "CANCELLED")
    # The button went away: the focus moved to the task's heading, not the page's top.
    expect(page.locator("#task-heading")).to_be_focused()
