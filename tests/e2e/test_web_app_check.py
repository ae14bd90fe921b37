"""The web app with Firebase App Check, against a ``submit_strategy`` that enforces it.

The page's runtime config names a reCAPTCHA Enterprise site key, so the app starts
App Check (web/src/appcheck.js). Nothing leaves the machine: the browser's requests
for Google's reCAPTCHA script and for App Check's token exchange are answered here (a
stand-in ``grecaptcha``; tokens signed by the test's own key: the session token, and
for each exchange with ``limited_use`` a fresh token with a ``jti``, as App Check
answers ``getLimitedUseToken``), and the submit URL is a ``submit_strategy`` process
of the test's own that enforces App Check against that key's key set, consuming a
submit's limited-use token (tests/app_check_keys.py). The stack's other functions do
not enforce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jwt
import pytest
from playwright.sync_api import Request, Route, expect

from tests.app_check_keys import (
    APP_ID,
    KeySetServer,
    SigningKey,
    app_check_token,
    enforced_submit,
    limited_use_token,
)
from tests.e2e.conftest import STATE_FILE, WebApp
from tests.e2e.helpers import message, submit_brief, task_id_of

pytestmark = pytest.mark.e2e

HEADER = "x-firebase-appcheck"
RECAPTCHA = "https://www.google.com/recaptcha/enterprise.js*"
EXCHANGE = "https://content-firebaseappcheck.googleapis.com/**"
# What the app needs of reCAPTCHA Enterprise: an invisible widget whose execute()
# answers a token (and calls the widget's callback, as the real one does).
FAKE_GRECAPTCHA = """
window.grecaptcha = {enterprise: {
  ready: (callback) => callback(),
  render: (container, params) => { window.__recaptcha = params; return 1; },
  execute: async () => { window.__recaptcha.callback('recaptcha-ok'); return 'recaptcha-ok'; },
}};
"""


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("e2e-key")


@pytest.fixture(scope="module")
def enforced_url(
    stack_env: dict[str, str], key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with (
        KeySetServer([key]) as key_set,
        enforced_submit(STATE_FILE, tmp_path_factory.mktemp("app-check-e2e"), key_set.url) as url,
    ):
        yield url


@dataclass(frozen=True)
class Exchange:
    url: str
    limited_use: bool
    token: str  # what the stand-in answered


def _app_check_stand_ins(web: WebApp, key: SigningKey, token: str) -> list[Exchange]:
    """Answer reCAPTCHA and App Check's exchange in the page: ``token`` for a session
    token, a new limited-use token (with a jti) for each ``limited_use`` exchange;
    returns the exchanges."""
    exchanges: list[Exchange] = []

    def recaptcha(route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=FAKE_GRECAPTCHA)

    def exchange(route: Route) -> None:
        limited = json.loads(route.request.post_data or "{}").get("limited_use") is True
        answered = limited_use_token(key, ttl_s=300) if limited else token
        exchanges.append(Exchange(route.request.url, limited, answered))
        body = json.dumps({"token": answered, "ttl": "300s" if limited else "3600s"})
        route.fulfill(status=200, content_type="application/json", body=body)

    web.page.route(RECAPTCHA, recaptcha)
    web.page.route(EXCHANGE, exchange)
    return exchanges


def test_the_app_sends_its_app_check_token(
    new_web: Callable[..., WebApp], enforced_url: str, key: SigningKey, marker: str
) -> None:
    config = {"appCheckSiteKey": "site-key", "appId": APP_ID, "submitUrl": enforced_url}
    web = new_web(config=config)
    token = app_check_token(key)
    exchanges = _app_check_stand_ins(web, key, token)
    sent: list[Request] = []
    web.page.on("request", lambda r: sent.append(r) if r.url.startswith(enforced_url) else None)
    page = web.open()
    with page.expect_response(lambda r: r.url == f"{enforced_url}/v1/strategies") as answer:
        submit_brief(page, f"App Check from the browser ({marker})")
    assert answer.value.status == 202, answer.value.text()
    assert task_id_of(page) == answer.value.json()["task_id"]
    # A second submit from the same page gets in too: it has a limited-use token of its
    # own (the first one is spent; the function would refuse it).
    with page.expect_response(lambda r: r.url == f"{enforced_url}/v1/strategies") as second:
        submit_brief(page, f"App Check from the browser, again ({marker})")
    assert second.value.status == 202, second.value.text()
    posts = [r for r in sent if r.method == "POST"]
    assert len(posts) == 2
    # Each submit carried a limited-use token (getLimitedUseToken), not the session one:
    # one the stand-in minted for a limited_use exchange, with a jti, which the
    # function consumed.
    sent_tokens = [r.headers.get(HEADER) for r in posts]
    limited = [e.token for e in exchanges if e.limited_use]
    assert len(set(sent_tokens)) == 2 and token not in sent_tokens
    for sent_token in sent_tokens:
        assert sent_token in limited
        assert jwt.decode(sent_token, options={"verify_signature": False}).get("jti")
    assert all(":exchangeRecaptchaEnterpriseToken" in e.url for e in exchanges)


def test_without_app_check_the_enforcing_function_refuses(
    new_web: Callable[..., WebApp], enforced_url: str, marker: str
) -> None:
    """The app unchanged (no site key) sends no token: the function answers 401 and the
    page says so at the form, with no task opened."""
    web = new_web(config={"submitUrl": enforced_url})
    page = web.open()
    with page.expect_response(lambda r: r.url == f"{enforced_url}/v1/strategies") as answer:
        submit_brief(page, f"No App Check ({marker})")
    assert answer.value.status == 401
    assert answer.value.request.headers.get(HEADER) is None
    assert "App Check token is required" in answer.value.json()["error"]["message"]
    expect(page.locator("#form-error")).to_have_text(message("en", "err.unauthenticated"))
    expect(page.locator("#task-panel")).to_be_hidden()
