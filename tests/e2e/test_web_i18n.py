"""The web app in English and Romanian: the catalogs, the browser's language, the
switch (remembered), the strategy language's default, and localized errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import ROOT, WebApp
from tests.e2e.helpers import DONE_MS, catalogs, message, submit_brief

pytestmark = pytest.mark.e2e

# docs/spec.md §2.1 (API answers) and §4 (failed tasks).
API_CODES = [
    "invalid_argument",
    "unauthenticated",
    "not_found",
    "method_not_allowed",
    "failed_precondition",
    "payload_too_large",
    "budget_exhausted",
    "paused",
    "unsupported_media_type",
    "rate_limited",
    "internal",
    "unavailable",
]
TASK_CODES = [
    "content_blocked",
    "answer_truncated",
    "gemini_model_not_found",
    "gemini_unreachable",
    "gemini_resource_exhausted",
    "gemini_unavailable",
    "gemini_internal",
    "gemini_cancelled",
    "gemini_not_found",
    "gemini_invalid_argument",
    "gemini_permission_denied",
    "gemini_unusable_answer",
    "gemini_schema_mismatch",
    "gemini_no_image",
    "pdf_unreadable",
    "pdf_processing_timeout",
    "attempts_exhausted",
    "delivery_failed",
]
STAGES = ["queued", "reading_sources", "writing_strategy", "waiting_to_retry"]
STAGES += ["drawing_image", "saving", "done"]
STATUSES = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
# Keys named in the app's code: quoted dotted lower-case words ('facts.budget').
KEY_LITERAL = re.compile(r"'([a-z_]+(?:\.[A-Za-z_]+)+)'")
HTML_KEY = re.compile(r'data-i18n(?:-[a-z-]+)?="([^"]+)"')


def fill(text: str, **params: object) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), text)


def placeholders(text: Any) -> set[str]:
    forms = text.values() if isinstance(text, dict) else [text]
    return {name for form in forms for name in re.findall(r"\{(\w+)\}", form)}


def test_both_catalogs_have_every_message() -> None:
    english, romanian = catalogs()["en"], catalogs()["ro"]
    assert set(english) == set(romanian), set(english) ^ set(romanian)
    for key, text in english.items():
        # The same placeholders, so no translation drops a number or a name.
        assert placeholders(text) == placeholders(romanian[key]), key
        if not key.startswith("stagehint."):
            assert text and romanian[key], key
    for code in API_CODES + TASK_CODES:
        assert f"err.{code}" in english, code
    for stage in STAGES:
        assert f"stage.{stage}" in english, stage
    for status in STATUSES:
        assert f"status.{status}" in english, status
    # Romanian plural forms: 1 săptămână, 2 săptămâni, 20 de săptămâni.
    assert set(romanian["weeks"]) == {"one", "few", "other"}


def test_every_message_the_app_names_exists() -> None:
    known = set(catalogs()["en"])
    html = (ROOT / "web" / "index.html").read_text()
    named = set(HTML_KEY.findall(html))
    assert named, "index.html names no messages"
    for source in (ROOT / "web" / "src").glob("*.js"):
        if source.name != "i18n.js":
            named |= set(KEY_LITERAL.findall(source.read_text()))
    assert named - known == set()


def test_index_html_has_no_text_of_its_own() -> None:
    """Every visible text comes from the catalogs (only the brand name stays)."""
    html = (ROOT / "web" / "index.html").read_text()
    body = html[html.index("<body>") :]
    body = re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL)
    body = re.sub(r"<(svg|script|style)\b.*?</\1>", "", body, flags=re.DOTALL)
    texts = [text.strip() for text in re.findall(r">([^<]+)<", body)]
    assert [text for text in texts if text and text not in {"Tinkerbell", "✦", "⇪", "*"}] == []


def test_a_romanian_browser_gets_romanian(new_web: Callable[..., WebApp]) -> None:
    page = new_web(locale="ro-RO").open()
    assert page.evaluate("navigator.languages[0]").startswith("ro")
    expect(page.locator("html")).to_have_attribute("lang", "ro")
    expect(page.locator("#new-heading")).to_have_text(message("ro", "form.heading"))
    expect(page.locator("#submit")).to_have_text(message("ro", "submit.idle"))
    expect(page.locator("[data-ui-language=ro]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#brief")).to_have_attribute(
        "placeholder", message("ro", "brief.placeholder")
    )
    # The strategy language defaults to the interface language.
    expect(page.locator("#language")).to_have_value("ro")
    expect(page.locator("#brief-counter")).to_have_text("0 / 20.000")
    assert page.title() == message("ro", "app.title")
    assert_no_english(page)


def assert_no_english(page: Page) -> None:
    """No English message is on screen (those that read the same in both are fine)."""
    shown = page.inner_text("body")
    english, romanian = catalogs()["en"], catalogs()["ro"]
    in_romanian = " ".join(text for text in romanian.values() if isinstance(text, str))
    left = [
        text
        for text in english.values()
        if isinstance(text, str)
        and len(text) >= 6
        and "{" not in text
        and text not in in_romanian  # "English" (the switch) reads the same in both
        and text in shown
    ]
    assert left == []


def test_the_switch_is_remembered_across_reloads(new_web: Callable[..., WebApp]) -> None:
    app = new_web(locale="en-US")
    page = app.open()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#new-heading")).to_have_text(message("en", "form.heading"))
    expect(page.locator("#auth-status")).to_contain_text("Signed in")

    page.click("[data-ui-language=ro]")
    expect(page.locator("html")).to_have_attribute("lang", "ro")
    expect(page.locator("#new-heading")).to_have_text(message("ro", "form.heading"))
    expect(page.locator("#auth-status")).to_contain_text("Autentificat")
    expect(page.locator("[data-ui-language=ro]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-ui-language=en]")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("localStorage.getItem('tinkerbell.uiLanguage')") == "ro"
    assert_no_english(page)

    app.open()  # a reload: the choice beats the browser's English
    expect(page.locator("html")).to_have_attribute("lang", "ro")
    expect(page.locator("#new-heading")).to_have_text(message("ro", "form.heading"))

    page.click("[data-ui-language=en]")
    expect(page.locator("#new-heading")).to_have_text(message("en", "form.heading"))
    app.open()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_strategy_language_follows_the_interface_until_picked(
    new_web: Callable[..., WebApp],
) -> None:
    page = new_web(locale="en-GB").open()
    expect(page.locator("#language")).to_have_value("en")
    page.click("[data-ui-language=ro]")
    expect(page.locator("#language")).to_have_value("ro")
    # The option texts are in the interface language too.
    expect(page.locator("#language option[value=de]")).to_have_text(message("ro", "language.de"))
    page.select_option("#language", "de")
    page.click("[data-ui-language=en]")
    expect(page.locator("#language")).to_have_value("de")  # the user's pick stays


def cors_json(route: Route, status: int, body: dict[str, Any], **headers: str) -> None:
    origin = route.request.headers.get("origin", "*")
    route.fulfill(
        status=status,
        content_type="application/json",
        body=json.dumps(body),
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "Retry-After",
            **headers,
        },
    )


def test_api_errors_are_told_in_the_interface_language(
    new_web: Callable[..., WebApp],
) -> None:
    page = new_web(locale="ro-RO").open()
    answers = [
        (429, {"error": {"code": "rate_limited", "message": "slow down", "field": None}}),
        (400, {"error": {"code": "teapot_error", "message": "a new server text", "field": None}}),
        (
            429,
            {
                "error": {
                    "code": "budget_exhausted",
                    "message": "the day's budget is used up",
                    "field": None,
                    "resets_at": "2026-12-05T00:00:00Z",
                }
            },
        ),
        (503, {"error": {"code": "paused", "message": "paused", "field": None}}),
    ]

    def refuse(route: Route) -> None:
        if route.request.method == "OPTIONS":
            route.continue_()
            return
        status, body = answers.pop(0)
        cors_json(route, status, body, **({"Retry-After": "7"} if status == 429 else {}))

    page.route("**/v1/strategies", refuse)
    submit_brief(page, "Florărie în Cluj")
    expected = fill(message("ro", "err.rate_limited"), seconds=7)
    expect(page.locator("#form-error")).to_have_text(expected)
    # A code this app does not know: the server's own message.
    page.click("#submit")
    expect(page.locator("#form-error")).to_have_text("a new server text")
    # A day budget: when it starts again, in the reader's language and time zone.
    page.click("#submit")
    before_time = message("ro", "err.budget_exhausted").split("{time}")[0]
    expect(page.locator("#form-error")).to_contain_text(before_time)
    expect(page.locator("#form-error")).to_contain_text("2026")
    # The operator's kill switch.
    page.click("#submit")
    expect(page.locator("#form-error")).to_have_text(message("ro", "err.paused"))
    # Client-side checks speak Romanian too, and switch with the interface.
    page.fill("#brief", "   ")
    page.click("#submit")
    expect(page.locator("#brief-error")).to_have_text(message("ro", "val.brief_empty"))
    page.click("[data-ui-language=en]")
    expect(page.locator("#brief-error")).to_have_text(message("en", "val.brief_empty"))


def test_a_failed_task_is_explained_in_romanian(
    new_web: Callable[..., WebApp], marker: str, standin_fault: Callable[..., Any]
) -> None:
    standin_fault(marker, endpoint="generateContent", block_reason="SAFETY")
    page = new_web(locale="ro-RO").open()
    submit_brief(page, f"Brief refuzat ({marker})", image=False)
    expect(page.locator("#task-status")).to_have_attribute("data-status", "FAILED", timeout=DONE_MS)
    expect(page.locator("#task-status")).to_have_text(message("ro", "status.FAILED"))
    expect(page.locator("#task-error-heading")).to_have_text(message("ro", "task.failed_heading"))
    expect(page.locator("#task-error-message")).to_have_text(message("ro", "err.content_blocked"))
    expect(page.locator("#task-error-code")).to_contain_text("content_blocked")
    page.click("[data-ui-language=en]")
    expect(page.locator("#task-error-message")).to_have_text(message("en", "err.content_blocked"))
