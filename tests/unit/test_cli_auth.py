"""Sign-in, kept credentials and ID-token refresh timing (a fake clock, a fake Auth API),
and the HTTP client around them: retries with one Idempotency-Key, PDFs, 401s."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from cli import transport
from cli.api import Api, Pdf, pdf_request_limit
from cli.auth import REFRESH_MARGIN_S, Auth, CredentialStore, StoredUser
from cli.config import Target
from cli.errors import CliError, Exit

TARGET = Target(
    submit_url="http://submit.test",
    status_url="http://status.test",
    project="demo-test",
    api_key="emulator-key",
    auth_emulator="auth.test",
    firestore_emulator="firestore.test",
)
PDF = b"%PDF-1.4\n" + b"x" * 200


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCloud:
    """The Auth emulator's two APIs and the two HTTP functions, recording every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens = 0
        self.valid_refresh = {"refresh-1"}
        self.refuse_token: set[str] = set()  # ID tokens the API answers 401 for
        self.submit_failures: list[int] = []  # statuses to answer before a 202
        self.upload_put: list[bytes] = []

    def new_token(self) -> str:
        self.tokens += 1
        return f"id-{self.tokens}"

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if url.startswith("http://auth.test/identitytoolkit.googleapis.com/v1/accounts:signUp"):
            body = json.loads(request.content)
            if body.get("email") == "taken@example.com":
                return httpx.Response(400, json={"error": {"message": "EMAIL_EXISTS"}})
            return httpx.Response(
                200,
                json={
                    "localId": "uid-1",
                    "idToken": self.new_token(),
                    "refreshToken": "refresh-1",
                    "expiresIn": "3600",
                },
            )
        if "accounts:signInWithPassword" in url:
            body = json.loads(request.content)
            if body["password"] != "secret":
                return httpx.Response(400, json={"error": {"message": "INVALID_LOGIN_CREDENTIALS"}})
            return httpx.Response(
                200,
                json={
                    "localId": "uid-2",
                    "idToken": self.new_token(),
                    "refreshToken": "refresh-1",
                    "expiresIn": "3600",
                },
            )
        if url.startswith("http://auth.test/securetoken.googleapis.com/v1/token"):
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["refresh_token"]
            if form["refresh_token"][0] not in self.valid_refresh:
                return httpx.Response(400, json={"error": {"message": "TOKEN_EXPIRED"}})
            return httpx.Response(
                200,
                json={
                    "id_token": self.new_token(),
                    "refresh_token": "refresh-1",
                    "expires_in": "3600",
                    "user_id": "uid-1",
                },
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.refuse_token:
            return httpx.Response(
                401, json={"error": {"code": "unauthenticated", "message": "bad"}}
            )
        if url == "http://submit.test/v1/strategies":
            if self.submit_failures:
                return httpx.Response(self.submit_failures.pop(0), json={})
            return httpx.Response(
                202, json={"task_id": "t1", "status": "PENDING", "status_url": "x"}
            )
        if url == "http://submit.test/v1/uploads":
            return httpx.Response(
                201, json={"upload_id": "up1", "upload_url": "http://storage.test/put/up1"}
            )
        if url == "http://storage.test/put/up1":
            self.upload_put.append(request.content)
            return httpx.Response(200, json={})
        if url == "http://status.test/v1/tasks/t1":
            return httpx.Response(200, json={"task_id": "t1", "status": "PENDING"})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such"}})


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transport.time, "sleep", slept.append)
    return slept


@pytest.fixture
def make_auth(cloud: FakeCloud, tmp_path: Path) -> Callable[[Clock], Auth]:
    def make(clock: Clock) -> Auth:
        http = httpx.Client(transport=httpx.MockTransport(cloud.handler))
        return Auth(TARGET, http, CredentialStore(tmp_path), clock=clock)

    return make


def test_anonymous_login_keeps_a_private_refresh_token(
    make_auth: Callable[[Clock], Auth], tmp_path: Path
) -> None:
    clock = Clock()
    user = make_auth(clock).sign_up_anonymous()
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = "demo-test@auth.test for http://submit.test:80 http://status.test:80"
    stored = json.loads(path.read_text())["users"][key]
    assert stored["refresh_token"] == "refresh-1"
    # Bound to where it was made: its Auth endpoint and the two origins of its target.
    assert stored["auth_endpoint"] == "http://auth.test/identitytoolkit.googleapis.com/v1"
    assert (stored["submit_origin"], stored["status_origin"]) == (
        "http://submit.test:80",
        "http://status.test:80",
    )
    assert stored["expires_at"] == clock.now + 3600
    assert user.anonymous and user.uid == "uid-1"


def test_the_id_token_is_refreshed_only_near_its_expiry(
    make_auth: Callable[[Clock], Auth], cloud: FakeCloud
) -> None:
    clock = Clock()
    auth = make_auth(clock)
    auth.sign_up_anonymous()
    assert auth.id_token() == "id-1"
    clock.now += 3600 - REFRESH_MARGIN_S - 1  # still valid for a while
    assert auth.id_token() == "id-1"
    refreshes = [r for r in cloud.requests if "securetoken" in str(r.url)]
    assert refreshes == []
    clock.now += 2  # within the margin: refreshed, and kept for the next invocation
    assert auth.id_token() == "id-2"
    assert make_auth(clock).id_token() == "id-2"
    clock.now += 10
    assert auth.id_token() == "id-2"
    assert len([r for r in cloud.requests if "securetoken" in str(r.url)]) == 1


def test_needs_refresh_boundaries() -> None:
    user = StoredUser(uid="u", refresh_token="r", id_token="i", expires_at=1000.0)
    assert not user.needs_refresh(1000.0 - REFRESH_MARGIN_S - 0.001)
    assert user.needs_refresh(1000.0 - REFRESH_MARGIN_S)
    assert user.needs_refresh(2000.0)


def test_a_refused_refresh_is_an_auth_error(
    make_auth: Callable[[Clock], Auth], cloud: FakeCloud
) -> None:
    clock = Clock()
    auth = make_auth(clock)
    auth.sign_up_anonymous()
    cloud.valid_refresh.clear()
    clock.now += 3600
    with pytest.raises(CliError) as raised:
        auth.id_token()
    assert raised.value.exit == Exit.AUTH
    assert "tinkerbell login" in raised.value.message


def test_not_logged_in_is_an_auth_error(make_auth: Callable[[Clock], Auth]) -> None:
    with pytest.raises(CliError) as raised:
        make_auth(Clock()).id_token()
    assert raised.value.exit == Exit.AUTH


def test_email_sign_in_and_its_errors(make_auth: Callable[[Clock], Auth]) -> None:
    auth = make_auth(Clock())
    user = auth.sign_in_email("ana@example.com", "secret")
    assert user.email == "ana@example.com" and not user.anonymous
    with pytest.raises(CliError) as raised:
        auth.sign_in_email("ana@example.com", "wrong")
    assert raised.value.exit == Exit.AUTH and "wrong email or password" in raised.value.message
    with pytest.raises(CliError) as raised:
        auth.sign_in_email("taken@example.com", "secret", create=True)
    assert raised.value.exit == Exit.AUTH and "exists already" in raised.value.message


def test_logout_forgets_only_this_target(
    tmp_path: Path, make_auth: Callable[[Clock], Auth]
) -> None:
    store = CredentialStore(tmp_path)
    store.put("other@firebase", StoredUser("u9", "r9", "i9", 0.0))
    auth = make_auth(Clock())
    auth.sign_up_anonymous()
    assert auth.logout() is not None
    assert store.get(TARGET.credentials_key) is None
    assert store.get("other@firebase") is not None
    assert store.remove_all()
    assert not (tmp_path / "credentials.json").exists()


def api_for(cloud: FakeCloud, make_auth: Callable[[Clock], Auth]) -> Api:
    auth = make_auth(Clock())
    auth.sign_up_anonymous()
    return Api(TARGET, auth, auth.http)


def submitted(cloud: FakeCloud) -> list[httpx.Request]:
    return [r for r in cloud.requests if str(r.url).endswith("/v1/strategies")]


def test_retries_keep_the_idempotency_key(
    cloud: FakeCloud, make_auth: Callable[[Clock], Auth], _no_real_sleep: list[float]
) -> None:
    api = api_for(cloud, make_auth)
    cloud.submit_failures = [503, 502]
    answer = api.submit({"brief": "b"}, pdf=None, idempotency_key="key-1")
    assert answer["task_id"] == "t1" and answer["pdf_via"] is None
    sent = submitted(cloud)
    assert len(sent) == 3
    assert {r.headers["Idempotency-Key"] for r in sent} == {"key-1"}
    assert _no_real_sleep == [0.5, 1.0]  # exponential backoff


def test_5xx_after_every_retry_is_a_network_error(
    cloud: FakeCloud, make_auth: Callable[[Clock], Auth]
) -> None:
    api = api_for(cloud, make_auth)
    cloud.submit_failures = [503] * transport.ATTEMPTS
    with pytest.raises(CliError) as raised:
        api.submit({"brief": "b"}, pdf=None, idempotency_key="k")
    assert raised.value.exit == Exit.NETWORK


def test_connection_failures_are_network_errors(_no_real_sleep: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(CliError) as raised:
        transport.send(http, "GET", "http://127.0.0.1:1/x", hint=" (is the local stack up?)")
    assert raised.value.exit == Exit.NETWORK
    assert raised.value.message == "cannot connect to 127.0.0.1:1 (is the local stack up?)"
    assert len(_no_real_sleep) == transport.ATTEMPTS - 1


def test_a_401_gets_one_retry_with_a_fresh_token(
    cloud: FakeCloud, make_auth: Callable[[Clock], Auth]
) -> None:
    api = api_for(cloud, make_auth)
    cloud.refuse_token = {"id-1"}
    assert api.task("t1")["status"] == "PENDING"
    tokens = [r.headers.get("Authorization") for r in cloud.requests if "status.test" in str(r.url)]
    assert tokens == ["Bearer id-1", "Bearer id-2"]
    cloud.refuse_token = {"id-2", "id-3"}
    with pytest.raises(CliError) as raised:
        api.task("t1")
    assert raised.value.exit == Exit.AUTH


def test_api_errors_map_to_exit_codes(cloud: FakeCloud, make_auth: Callable[[Clock], Auth]) -> None:
    api = api_for(cloud, make_auth)
    with pytest.raises(CliError) as raised:
        api.task("unknown")
    assert raised.value.exit == Exit.REFUSED and raised.value.code == "not_found"
    with pytest.raises(CliError) as raised:
        api.task("../v1/uploads")  # never sent
    assert raised.value.exit == Exit.REFUSED


def test_small_pdf_goes_in_the_request(
    cloud: FakeCloud, make_auth: Callable[[Clock], Auth], tmp_path: Path
) -> None:
    api = api_for(cloud, make_auth)
    path = tmp_path / "brief.pdf"
    path.write_bytes(PDF)
    fields: dict[str, Any] = {"brief": "b", "image": False, "urls": ["https://a.example/"]}
    answer = api.submit(fields, pdf=Pdf.read(path), idempotency_key="k", request_limit=len(PDF))
    assert answer["pdf_via"] == "request"
    (request,) = submitted(cloud)
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="image"\r\n\r\nfalse' in body
    assert b'name="urls"\r\n\r\nhttps://a.example/' in body
    assert b'filename="brief.pdf"' in body and PDF in body


def test_large_pdf_goes_through_an_upload_session(
    cloud: FakeCloud, make_auth: Callable[[Clock], Auth], tmp_path: Path
) -> None:
    api = api_for(cloud, make_auth)
    path = tmp_path / "catalogue.pdf"
    path.write_bytes(PDF)
    answer = api.submit(
        {"brief": "b"}, pdf=Pdf.read(path), idempotency_key="k", request_limit=len(PDF) - 1
    )
    assert answer["pdf_via"] == "upload_session"
    opened = [r for r in cloud.requests if str(r.url).endswith("/v1/uploads")]
    assert json.loads(opened[0].content) == {"size_bytes": len(PDF), "filename": "catalogue.pdf"}
    assert cloud.upload_put == [PDF]
    (request,) = submitted(cloud)
    assert json.loads(request.content) == {"brief": "b", "upload_id": "up1"}


def test_pdf_checks_before_sending(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(CliError) as raised:
        Pdf.read(path)
    assert raised.value.exit == Exit.USAGE
    with pytest.raises(CliError) as raised:
        Pdf.read(tmp_path / "missing.pdf")
    assert raised.value.exit == Exit.USAGE


def test_the_request_limit_is_30_mib_unless_overridden() -> None:
    assert pdf_request_limit({}) == 30 * 1024 * 1024
    assert pdf_request_limit({"TINKERBELL_PDF_REQUEST_LIMIT": "1000"}) == 1000
    with pytest.raises(CliError):
        pdf_request_limit({"TINKERBELL_PDF_REQUEST_LIMIT": "lots"})
