"""Fixtures for the browser tests of the web app against the running local stack.

The stack (``make test``, or ``python -m dev.stack up --name NAME``) serves ``web/``
on WEB_PORT; ``web/dist/app.js`` comes from ``npm run build:web``. Each test gets
a fresh browser context, so it signs in as a new anonymous user. The page's
``dist/config.json`` is answered here from the stack's own env, so stacks that
share one working tree (and one ``web/``) never read each other's config.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    sync_playwright,
)

from infra.hosting import format_policy, parse_policy, source_of

ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = Path(os.environ.get("TB_STACK_STATE", ".stack/test/state.json"))
CHROMIUM = Path(os.environ.get("TB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the web app in Chromium against the stack")


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    if not STATE_FILE.exists():
        pytest.fail(
            f"no running stack ({STATE_FILE} missing): run the tests with `make test`",
            pytrace=False,
        )
    env: dict[str, str] = json.loads(STATE_FILE.read_text())["env"]
    if "WEB_URL" not in env:
        pytest.fail(
            "the stack serves no web app (web/index.html was missing when it started)",
            pytrace=False,
        )
    return env


@pytest.fixture(scope="session")
def web_config(stack_env: dict[str, str]) -> dict[str, str]:
    """What `node web/build.mjs` writes to web/dist/config.json for this stack."""
    if not (ROOT / "web" / "dist" / "app.js").is_file():
        pytest.fail("web/dist/app.js is missing: run `npm run build:web`", pytrace=False)
    return {
        "projectId": stack_env["GOOGLE_CLOUD_PROJECT"],
        "apiKey": "demo-api-key",
        "authEmulatorUrl": stack_env["AUTH_EMULATOR_URL"],
        "firestoreEmulatorHost": stack_env["FIRESTORE_EMULATOR_HOST"],
        "submitUrl": stack_env["SUBMIT_URL"],
        "statusUrl": stack_env["STATUS_URL"],
    }


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class WebApp:
    """One browser tab on the web app, with the problems it logged."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # A refused request (the validation test) logs a resource error; that is expected.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")

    def open(self) -> Page:
        self.page.goto(self.url)
        # A function, not an expression: Playwright polls an expression with eval,
        # which the page's Content-Security-Policy refuses.
        self.page.wait_for_function("() => document.body.dataset.uid", timeout=TIMEOUT_MS)
        return self.page


@pytest.fixture
def new_web(
    browser: Browser, stack_env: dict[str, str], web_config: dict[str, str]
) -> Iterator[Callable[..., WebApp]]:
    """Open the web app in a fresh browser context (a new anonymous user).

    ``locale`` sets the browser's language (navigator.languages); ``config`` adds to
    the page's runtime config (e.g. ``uploadThresholdBytes``, which only tests set).
    """
    contexts: list[BrowserContext] = []
    apps: list[WebApp] = []

    def make(*, locale: str = "en-US", config: dict[str, Any] | None = None) -> WebApp:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        body = json.dumps({**web_config, **(config or {})})

        def answer_config(route: Route) -> None:
            route.fulfill(status=200, content_type="application/json", body=body)

        context.route("**/dist/config.json", answer_config)
        # Functions of the test's own (e.g. one that enforces App Check): the page's
        # policy names them as deploy.sh's names the deployed ones (infra/hosting.py).
        own = [(config or {})[key] for key in ("submitUrl", "statusUrl") if key in (config or {})]
        if own:
            page_urls = {stack_env["WEB_URL"] + path for path in ("/", "/index.html")}
            context.route(lambda url: url in page_urls, partial(_allow_backends, own))
            # A page the test answers has no address of its own: Chromium takes it for a
            # public one, and asks before it reaches loopback (Local Network Access).
            context.grant_permissions(["local-network-access"], origin=stack_env["WEB_URL"])
        app = WebApp(context.new_page(), stack_env["WEB_URL"] + "/")
        apps.append(app)
        return app

    yield make
    for context in contexts:
        context.close()
    errors = [error for app in apps for error in app.errors]
    assert not errors, errors


def _allow_backends(urls: list[str], route: Route) -> None:
    """The page as the stack serves it, its Content-Security-Policy also letting the app
    reach ``urls``."""
    response = route.fetch()
    headers = dict(response.headers)
    policy = parse_policy(headers["content-security-policy"])
    policy["connect-src"] += [source_of(url) for url in urls]
    headers["content-security-policy"] = format_policy(policy)
    route.fulfill(response=response, headers=headers)


@pytest.fixture
def web(new_web: Callable[..., WebApp]) -> WebApp:
    return new_web()


@pytest.fixture
def marker() -> str:
    return f"mk-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def standin_fault(stack_env: dict[str, str]) -> Iterator[Any]:
    """Add a fault rule to the Gemini stand-in (rules match the test's own marker)."""
    base = stack_env.get("GEMINI_STANDIN_URL")
    if base is None:
        pytest.fail("the stack runs no Gemini stand-in", pytrace=False)
    with httpx.Client(timeout=10) as client:

        def add(match: str, **rule: Any) -> None:
            answer = client.post(f"{base}/_standin/faults", json={"match": match, **rule})
            answer.raise_for_status()

        yield add


def _firestore_value(value: dict[str, Any]) -> Any:
    """One value of the Firestore REST encoding as plain Python."""
    if "mapValue" in value:
        fields = value["mapValue"].get("fields", {})
        return {key: _firestore_value(item) for key, item in fields.items()}
    if "arrayValue" in value:
        return [_firestore_value(item) for item in value["arrayValue"].get("values", [])]
    if "integerValue" in value:
        return int(value["integerValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "nullValue" in value:
        return None
    for kind in ("stringValue", "booleanValue", "timestampValue", "referenceValue", "bytesValue"):
        if kind in value:
            return value[kind]
    raise ValueError(f"unknown Firestore value: {value}")


def _firestore_encode(value: Any) -> dict[str, Any]:
    """Plain Python as a Firestore REST value (datetimes as timestamps)."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_firestore_encode(item) for item in value]}}
    if isinstance(value, dict):
        fields = {key: _firestore_encode(item) for key, item in value.items()}
        return {"mapValue": {"fields": fields}}
    raise TypeError(f"cannot store {value!r}")


def _tasks_url(stack_env: dict[str, str]) -> str:
    host = stack_env["FIRESTORE_EMULATOR_HOST"]
    project = stack_env["GOOGLE_CLOUD_PROJECT"]
    return f"http://{host}/v1/projects/{project}/databases/(default)/documents/tasks"


# "Bearer owner" is the emulator's admin: it passes the security rules.
OWNER = {"Authorization": "Bearer owner"}


@pytest.fixture
def read_task(stack_env: dict[str, str]) -> Callable[[str], dict[str, Any]]:
    """The task document as stored, read through the Firestore emulator's REST API."""
    base = _tasks_url(stack_env)

    def read(task_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{base}/{task_id}", headers=OWNER)
        answer.raise_for_status()
        return {k: _firestore_value(v) for k, v in answer.json()["fields"].items()}

    return read


@pytest.fixture
def write_task(stack_env: dict[str, str]) -> Callable[[str, dict[str, Any]], None]:
    """Write (create or replace) a task document directly, as the worker would: the
    page renders whatever its listener sees, so a test can show it any strategy."""
    base = _tasks_url(stack_env)

    def write(task_id: str, task: dict[str, Any]) -> None:
        # A whole document, as the API's own reads validate it (its id included).
        fields = {
            key: _firestore_encode(value) for key, value in {"task_id": task_id, **task}.items()
        }
        answer = httpx.patch(f"{base}/{task_id}", json={"fields": fields}, headers=OWNER)
        answer.raise_for_status()

    return write
