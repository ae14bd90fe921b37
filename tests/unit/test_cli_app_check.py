"""The ``tinkerbell`` command and Firebase App Check: a debug token from
``TINKERBELL_APP_CHECK_TOKEN`` or the config file, exchanged for an App Check token
(``exchangeDebugToken``, for the app ``FIREBASE_APP_ID``) that goes as
``X-Firebase-AppCheck`` with every API request (not to Auth, not to the upload URL);
a submit gets a limited-use token of its own per attempt (``limitedUse``: the function
consumes it); the debug token is never shown."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from cli import transport
from cli.api import APP_CHECK_HEADER, Api, Pdf, api_error
from cli.auth import Auth, CredentialStore
from cli.config import normalize_key, resolve_target
from cli.errors import CliError, Exit
from cli.parser import DESCRIPTION
from cli.tinkerbell import run
from tests.unit.test_cli_auth import PDF, TARGET, Clock, FakeCloud
from tests.unit.test_cli_config import DEPLOYED, write_state

DEBUG_TOKEN = "0f1e2d3c-debug-token-4b5a"
APP_ID = "1:123456789012:web:0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport.time, "sleep", lambda _s: None)


def test_the_token_comes_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    env = {"TINKERBELL_APP_CHECK_TOKEN": DEBUG_TOKEN}
    assert resolve_target({}, env, DEPLOYED, tmp_path).app_check_token == DEBUG_TOKEN
    from_file = DEPLOYED | {"APP_CHECK_TOKEN": "from-file"}
    assert resolve_target({}, {}, from_file, tmp_path).app_check_token == "from-file"
    assert resolve_target({}, env, from_file, tmp_path).app_check_token == DEBUG_TOKEN
    assert resolve_target({}, {}, DEPLOYED, tmp_path).app_check_token is None
    app = {"TINKERBELL_FIREBASE_APP_ID": APP_ID}
    assert resolve_target({}, app, DEPLOYED, tmp_path).app_check_app_id == APP_ID
    in_file = DEPLOYED | {"FIREBASE_APP_ID": "1:2:web:3"}
    assert resolve_target({}, {}, in_file, tmp_path).app_check_app_id == "1:2:web:3"
    # Whatever the target, a local stack too.
    write_state(tmp_path)
    assert resolve_target({}, env, {}, tmp_path).app_check_token == DEBUG_TOKEN
    assert normalize_key("app-check-token") == "APP_CHECK_TOKEN"
    assert normalize_key("firebase-app-id") == "FIREBASE_APP_ID"
    assert DEBUG_TOKEN not in repr(resolve_target({}, env, {}, tmp_path))


class AppCheckCloud(FakeCloud):
    """FakeCloud plus App Check's exchangeDebugToken (one registered debug token)."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "firebaseappcheck.googleapis.com":
            self.exchanges.append(request)
            self.requests.append(request)
            if json.loads(request.content).get("debugToken") != DEBUG_TOKEN:
                return httpx.Response(
                    403, json={"error": {"code": 403, "message": "App attestation failed."}}
                )
            token = f"{EXCHANGED}-{len(self.exchanges)}"
            return httpx.Response(200, json={"token": token, "ttl": "3600s"})
        return super().handler(request)


EXCHANGED = "eyJhbGciOiJSUzI1NiJ9.exchanged"


def api_with(
    cloud: FakeCloud, tmp_path: Path, clock: Clock | None = None, **app_check: str | None
) -> Api:
    http = httpx.Client(transport=httpx.MockTransport(cloud.handler))
    auth = Auth(TARGET, http, CredentialStore(tmp_path), clock=Clock())
    auth.sign_up_anonymous()
    api = Api(replace(TARGET, **app_check), auth, http)  # type: ignore[arg-type]
    if clock is not None:
        api.app_check.clock = clock
    return api


def exchanged_as(cloud: AppCheckCloud, token: str) -> dict[str, object]:
    """The body of the exchange that answered ``token``."""
    index = int(token.rsplit("-", 1)[1]) - 1
    return dict(json.loads(cloud.exchanges[index].content))


def test_every_api_request_carries_an_exchanged_token(tmp_path: Path) -> None:
    cloud = AppCheckCloud()
    api = api_with(cloud, tmp_path, app_check_token=DEBUG_TOKEN, app_check_app_id=APP_ID)
    path = tmp_path / "big.pdf"
    path.write_bytes(PDF)
    api.submit({"brief": "b"}, pdf=None, idempotency_key="k1")
    api.submit({"brief": "b"}, pdf=Pdf.read(path), idempotency_key="k2")
    api.submit({"brief": "b"}, pdf=Pdf.read(path), idempotency_key="k3", request_limit=10)
    api.task("t1")
    ours = [r for r in cloud.requests if r.url.host in ("submit.test", "status.test")]
    assert len(ours) == 5  # 3 submits, 1 upload session, 1 status
    assert all(r.headers.get(APP_CHECK_HEADER, "").startswith(EXCHANGED) for r in ours)
    submits = [r.headers[APP_CHECK_HEADER] for r in ours if r.url.path == "/v1/strategies"]
    others = [r.headers[APP_CHECK_HEADER] for r in ours if r.url.path != "/v1/strategies"]
    # Each submit its own limited-use token (the function consumes it)...
    assert len(submits) == 3 and len(set(submits)) == 3
    limited = {"debugToken": DEBUG_TOKEN, "limitedUse": True}
    assert all(exchanged_as(cloud, token) == limited for token in submits)
    # ...the upload session and the status read one session token, exchanged once.
    (session,) = set(others)
    assert exchanged_as(cloud, session) == {"debugToken": DEBUG_TOKEN}
    assert len(cloud.exchanges) == 4
    # As Firebase's SDKs make the exchange: the app, the web API key, the secret.
    for exchange in cloud.exchanges:
        path_ = f"/v1/projects/{TARGET.project}/apps/{APP_ID}:exchangeDebugToken"
        assert exchange.url.path == path_
        assert exchange.url.params["key"] == TARGET.api_key
    rest = [r for r in cloud.requests if r not in ours]  # Auth, the upload URL, App Check
    assert rest and all(APP_CHECK_HEADER not in r.headers for r in rest)


def test_every_attempt_of_a_submit_has_a_fresh_limited_use_token(tmp_path: Path) -> None:
    """The transport resends a submit after a 5xx (its answer may be lost after the
    function consumed the token), and a 401 is tried again with a fresh ID token: each
    attempt exchanges a new limited-use token, never replays a spent one."""
    cloud = AppCheckCloud()
    cloud.submit_failures = [503, 502]
    api = api_with(cloud, tmp_path, app_check_token=DEBUG_TOKEN, app_check_app_id=APP_ID)
    api.submit({"brief": "b"}, pdf=None, idempotency_key="k1")
    sent = [r for r in cloud.requests if r.url.host == "submit.test"]
    assert len(sent) == 3 and {r.headers["Idempotency-Key"] for r in sent} == {"k1"}
    tokens = [r.headers[APP_CHECK_HEADER] for r in sent]
    assert len(set(tokens)) == 3
    assert all(exchanged_as(cloud, t).get("limitedUse") is True for t in tokens)
    # A refused ID token: the retry with a fresh one has a fresh App Check token too.
    refused = sent[-1].headers["Authorization"].removeprefix("Bearer ")
    cloud.refuse_token.add(refused)
    api.submit({"brief": "b"}, pdf=None, idempotency_key="k2")
    again = [r for r in cloud.requests if r.url.host == "submit.test"][3:]
    assert len(again) == 2
    assert again[0].headers["Authorization"] != again[1].headers["Authorization"]
    assert again[0].headers[APP_CHECK_HEADER] != again[1].headers[APP_CHECK_HEADER]


def test_the_token_is_exchanged_again_before_it_expires(tmp_path: Path) -> None:
    cloud = AppCheckCloud()
    clock = Clock()
    api = api_with(cloud, tmp_path, clock, app_check_token=DEBUG_TOKEN, app_check_app_id=APP_ID)
    api.task("t1")
    clock.now += 3400  # within 5 minutes of the hour's end
    api.task("t1")
    api.task("t1")
    sent = [r.headers[APP_CHECK_HEADER] for r in cloud.requests if r.url.host == "status.test"]
    assert sent == [f"{EXCHANGED}-1", f"{EXCHANGED}-2", f"{EXCHANGED}-2"]


def test_an_app_check_token_is_sent_as_it_is(tmp_path: Path) -> None:
    cloud = AppCheckCloud()
    minted = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    api = api_with(cloud, tmp_path, app_check_token=minted)
    api.task("t1")
    api.submit({"brief": "b"}, pdf=None, idempotency_key="k1")
    assert not cloud.exchanges
    ours = [r for r in cloud.requests if r.url.host in ("status.test", "submit.test")]
    assert len(ours) == 2 and all(r.headers[APP_CHECK_HEADER] == minted for r in ours)


def test_a_refused_debug_token_is_an_auth_error_without_the_secret(tmp_path: Path) -> None:
    cloud = AppCheckCloud()
    api = api_with(cloud, tmp_path, app_check_token="not-registered", app_check_app_id=APP_ID)
    with pytest.raises(CliError) as info:
        api.task("t1")
    assert info.value.exit == Exit.AUTH
    assert "Manage debug tokens" in info.value.message and APP_ID in info.value.message
    assert "not-registered" not in info.value.message
    assert not [r for r in cloud.requests if r.url.host == "status.test"]


def test_a_debug_token_needs_the_app_id(tmp_path: Path) -> None:
    api = api_with(AppCheckCloud(), tmp_path, app_check_token=DEBUG_TOKEN)
    with pytest.raises(CliError) as info:
        api.task("t1")
    assert info.value.exit == Exit.USAGE and "FIREBASE_APP_ID" in info.value.message
    assert DEBUG_TOKEN not in info.value.message


def test_without_a_token_no_header(tmp_path: Path) -> None:
    cloud = AppCheckCloud()
    api_with(cloud, tmp_path).submit({"brief": "b"}, pdf=None, idempotency_key="k1")
    assert all(APP_CHECK_HEADER not in r.headers for r in cloud.requests)
    assert not cloud.exchanges


def test_an_app_check_refusal_says_what_to_do() -> None:
    answer = httpx.Response(
        401,
        json={
            "error": {
                "code": "unauthenticated",
                "message": "an App Check token is required (X-Firebase-AppCheck header)",
                "field": None,
            }
        },
    )
    message = api_error(answer).message
    assert "APP_CHECK_TOKEN" in message and "debug token" in message
    assert "tinkerbell login" not in message
    other = httpx.Response(401, json={"error": {"code": "unauthenticated", "message": "bad"}})
    assert "tinkerbell login" in api_error(other).message


def test_config_keeps_the_token_private(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}

    def cli(*argv: str, extra: dict[str, str] | None = None) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), env=env | (extra or {}), cwd=tmp_path, stdout=out, stderr=err)
        return code, out.getvalue() + err.getvalue()

    for key, value in DEPLOYED.items():
        assert cli("config", "set", key, value)[0] == 0
    code, out = cli("config", "set", "app-check-token", DEBUG_TOKEN, "--json")
    assert code == 0 and DEBUG_TOKEN not in out
    stored = tmp_path / "config" / "tinkerbell" / "config.json"
    assert json.loads(stored.read_text())["APP_CHECK_TOKEN"] == DEBUG_TOKEN
    assert stored.stat().st_mode & 0o077 == 0
    for argv in (("config", "show"), ("config", "show", "--json")):
        code, out = cli(*argv, extra={"TINKERBELL_APP_CHECK_TOKEN": "env-" + DEBUG_TOKEN})
        assert code == 0 and DEBUG_TOKEN not in out, out
    _, shown = cli("config", "show", "--json")
    assert json.loads(shown)["target"]["APP_CHECK_TOKEN"] == "(set, not shown)"


def test_the_help_says_where_the_token_comes_from() -> None:
    assert "TINKERBELL_APP_CHECK_TOKEN" in DESCRIPTION and "FIREBASE_APP_ID" in DESCRIPTION
    assert "debug token" in DESCRIPTION and "Firebase console" in DESCRIPTION
