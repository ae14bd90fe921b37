"""Shared steps of the browser tests: submitting, waiting, the message catalogs, axe."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT

DONE_MS = 20_000
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Formats the app uses per interface language (web/src/i18n.js).
FORMAT_LOCALES = {"en": "en-GB", "ro": "ro-RO"}


def pdf_bytes(size: int = 0) -> bytes:
    """A small valid-looking PDF, padded with a comment to ``size`` bytes."""
    head = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n"
    )
    tail = b"%%EOF\n"
    padding = max(0, size - len(head) - len(tail))
    return head + (b"%" + b"x" * (padding - 2) + b"\n" if padding >= 2 else b"") + tail


def submit_brief(page: Page, brief: str, *, urls: str = "", image: bool = True) -> None:
    page.fill("#brief", brief)
    if urls:
        page.fill("#urls", urls)
    page.set_checked("#image", image)
    page.click("#submit")


def task_id_of(page: Page) -> str:
    expect(page.locator("#task-panel")).to_have_attribute("data-task-id", re.compile(r".+"))
    task_id = page.locator("#task-panel").get_attribute("data-task-id")
    assert task_id
    return task_id


def wait_completed(page: Page) -> str:
    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=DONE_MS
    )
    expect(page.locator("#strategy")).to_be_visible()
    return task_id_of(page)


@cache
def catalogs() -> dict[str, dict[str, Any]]:
    """The two message catalogs, read from web/src/i18n.js by node itself."""
    script = "import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify(m.CATALOGS)))"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, str(ROOT / "web" / "src" / "i18n.js")],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    loaded: dict[str, dict[str, Any]] = json.loads(out.stdout)
    return loaded


def message(language: str, key: str) -> str:
    text = catalogs()[language][key]
    assert isinstance(text, str), key
    return text


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core in the page: the serious and critical violations, with their nodes."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's Content-Security-Policy
        # refuses an inline <script> (add_script_tag), as it should.
        page.evaluate(f"{AXE.read_text()}\n;undefined")
    results = page.evaluate(
        """async () => {
          const results = await axe.run(document, {resultTypes: ['violations']});
          return results.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
          }));
        }"""
    )
    return [v for v in results if v["impact"] in ("serious", "critical")]


def intl_number(page: Page, language: str, value: float, options: dict[str, Any]) -> str:
    """``value`` formatted by the browser's Intl for the interface language."""
    formatted: str = page.evaluate(
        "([value, locale, options]) => new Intl.NumberFormat(locale, options).format(value)",
        [value, FORMAT_LOCALES[language], options],
    )
    return formatted


def eur(page: Page, language: str, value: float) -> str:
    return intl_number(
        page, language, value, {"style": "currency", "currency": "EUR", "maximumFractionDigits": 0}
    )


def percent(page: Page, language: str, share: float) -> str:
    return intl_number(page, language, share, {"style": "percent", "maximumFractionDigits": 1})
