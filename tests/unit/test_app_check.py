"""Firebase App Check tokens on the HTTP functions (SPEC §5; issue 10 item 3).

Tokens are signed with a local RSA key whose key set a server on 127.0.0.1 serves in
place of ``https://firebaseappcheck.googleapis.com/v1/jwks``: no network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import flask
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from google.api_core.exceptions import AlreadyExists, ServiceUnavailable
from pydantic import ValidationError

import functions.submit as submit_module
from functions.status import task_status
from functions.submit import submit_strategy
from shared import clients
from shared.app_check import (
    ALREADY_USED,
    HEADER,
    INVALID,
    MISSING,
    NOT_LIMITED_USE,
    _jwks_client,
    consume,
    verify_app_check,
    verify_limited_use,
)
from shared.auth import Caller
from shared.errors import Unauthenticated, Unavailable
from shared.models import TaskAccepted, TaskStatus
from shared.settings import Settings, get_settings
from shared.submission import Submitted
from tests.app_check_keys import (
    APP_ID,
    ISSUER_PREFIX,
    PROJECT_NUMBER,
    KeySetServer,
    SigningKey,
    app_check_token,
    limited_use_token,
)
from tests.local_servers import free_port

PROJECT_ID = "demo-app-check"
WEB = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("key-1")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey("key-2")


@pytest.fixture
def key_set(key: SigningKey) -> Iterator[KeySetServer]:
    with KeySetServer([key]) as server:
        yield server


def configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in Settings.model_fields:
        if name.startswith("app_check_"):
            monkeypatch.delenv(name.upper(), raising=False)
    configure(monkeypatch, GOOGLE_CLOUD_PROJECT=PROJECT_ID, CORS_ORIGINS=WEB)
    yield
    get_settings.cache_clear()


@pytest.fixture
def enforced(monkeypatch: pytest.MonkeyPatch, key_set: KeySetServer) -> KeySetServer:
    configure(
        monkeypatch,
        APP_CHECK_ENFORCED="true",
        APP_CHECK_PROJECT_NUMBER=PROJECT_NUMBER,
        APP_CHECK_JWKS_URL=key_set.url,
    )
    return key_set


def refused(token: str | None) -> str:
    with pytest.raises(Unauthenticated) as info:
        verify_app_check(token)
    return info.value.message


# ------------------------------------------------------------------ valid tokens


def test_a_valid_token_names_its_app(enforced: KeySetServer, key: SigningKey) -> None:
    assert verify_app_check(app_check_token(key)) == APP_ID
    assert verify_app_check(f"  {app_check_token(key)} ") == APP_ID


def test_the_audience_may_name_the_project_id(enforced: KeySetServer, key: SigningKey) -> None:
    assert verify_app_check(app_check_token(key, aud=[f"projects/{PROJECT_ID}"])) == APP_ID


def test_the_key_set_is_fetched_once_and_cached(enforced: KeySetServer, key: SigningKey) -> None:
    for _ in range(5):
        verify_app_check(app_check_token(key))
    assert enforced.fetches == 1


def test_a_rotated_in_key_is_fetched(
    enforced: KeySetServer, key: SigningKey, other_key: SigningKey
) -> None:
    verify_app_check(app_check_token(key))
    enforced.keys = [key, other_key]  # Firebase rotated a key in since the set was cached
    _jwks_client(get_settings()).cooldown_duration = 0  # not 30 s later: now
    assert verify_app_check(app_check_token(other_key)) == APP_ID
    assert enforced.fetches == 2


# ------------------------------------------------------------------ refused tokens


def test_no_token_when_enforced(enforced: KeySetServer) -> None:
    for header in (None, "", "   "):
        assert refused(header) == MISSING
    assert "App Check token is required" in MISSING
    assert enforced.fetches == 0


def test_an_expired_token(enforced: KeySetServer, key: SigningKey) -> None:
    assert refused(app_check_token(key, ttl_s=-5)) == INVALID
    assert "invalid or expired" in INVALID


@pytest.mark.parametrize(
    "audience",
    [
        ["projects/999999999999"],
        ["projects/another-project"],
        [PROJECT_NUMBER],
        f"projects/{PROJECT_NUMBER}",  # App Check's audience is a list
        [],
        None,
    ],
    ids=["other-number", "other-id", "bare-number", "string", "empty", "missing"],
)
def test_a_wrong_audience(enforced: KeySetServer, key: SigningKey, audience: object) -> None:
    assert refused(app_check_token(key, aud=audience)) == INVALID


@pytest.mark.parametrize(
    "issuer",
    [
        f"{ISSUER_PREFIX}999999999999",
        f"{ISSUER_PREFIX}{PROJECT_NUMBER}/",
        f"https://evil.example/{PROJECT_NUMBER}",
        f"https://securetoken.google.com/{PROJECT_ID}",  # an ID token's issuer
        None,
    ],
    ids=["other-project", "trailing-slash", "other-host", "id-token", "missing"],
)
def test_a_wrong_issuer(enforced: KeySetServer, key: SigningKey, issuer: str | None) -> None:
    assert refused(app_check_token(key, iss=issuer)) == INVALID


def test_a_token_of_another_project(enforced: KeySetServer, key: SigningKey) -> None:
    assert refused(app_check_token(key, project_number="999999999999")) == INVALID


@pytest.mark.parametrize("claim", ["sub", "exp"])
def test_a_missing_claim(enforced: KeySetServer, key: SigningKey, claim: str) -> None:
    assert refused(app_check_token(key, **{claim: None})) == INVALID


def test_an_empty_app_id(enforced: KeySetServer, key: SigningKey) -> None:
    assert refused(app_check_token(key, sub="")) == INVALID


def test_issued_in_the_future(enforced: KeySetServer, key: SigningKey) -> None:
    token = app_check_token(key, iat=int(time.time()) + 3600, ttl_s=7200)
    assert refused(token) == INVALID


def test_an_unknown_kid(enforced: KeySetServer, key: SigningKey, other_key: SigningKey) -> None:
    verify_app_check(app_check_token(key))
    for _ in range(3):
        assert refused(app_check_token(other_key)) == INVALID
    # Made-up kids do not make every request fetch the key set (PyJWT's cooldown).
    assert enforced.fetches == 1


def test_a_forged_signature(enforced: KeySetServer, key: SigningKey, other_key: SigningKey) -> None:
    # Signed by another key, under the kid of the real one.
    assert refused(app_check_token(other_key, header={"kid": key.kid})) == INVALID


def test_a_token_with_no_kid(enforced: KeySetServer, key: SigningKey) -> None:
    payload = jwt.decode(app_check_token(key), options={"verify_signature": False})
    token = jwt.encode(payload, key.private, algorithm="RS256", headers={"typ": "JWT"})
    assert refused(token) == INVALID


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", None])
def test_a_wrong_type_header(enforced: KeySetServer, key: SigningKey, typ: str | None) -> None:
    # Properly signed by the right key: only the typ header is wrong (None: no typ).
    assert refused(app_check_token(key, header={"typ": typ})) == INVALID


def test_hs256_with_the_public_key_as_secret(enforced: KeySetServer, key: SigningKey) -> None:
    """Key confusion: an HMAC token whose secret is the (public) key's PEM."""
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(app_check_token(key), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = (
        jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
        + "."
        + jwt.utils.base64url_encode(json.dumps(payload).encode()).decode()
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + jwt.utils.base64url_encode(signature).decode()
    assert refused(token) == INVALID


def test_alg_none(enforced: KeySetServer, key: SigningKey) -> None:
    payload = jwt.decode(app_check_token(key), options={"verify_signature": False})
    unsigned = jwt.encode(payload, None, algorithm="none", headers={"kid": key.kid})
    assert refused(unsigned) == INVALID
    assert refused(unsigned + "c2lnbmF0dXJl") == INVALID


@pytest.mark.parametrize(
    "garbage",
    [
        "abc",
        "a.b.c",
        "...",
        "eyJhbGciOiJub25lIn0.e30.",
        "Bearer x.y.z",
        "ü.ö.ä",
        "x" * 10_000,
        "eyJ" + "A" * 500 + ".e30.e30",
    ],
    ids=["word", "dots", "empty-parts", "unsigned", "bearer", "unicode", "long", "bad-b64"],
)
def test_garbage(enforced: KeySetServer, garbage: str) -> None:
    assert refused(garbage) == INVALID


# ------------------------------------------------------------------ the key set


@pytest.mark.parametrize(
    "failure",
    ["http-500", "not-json", "not-an-object", "no-keys", "unreachable"],
)
def test_the_key_set_cannot_be_fetched(
    monkeypatch: pytest.MonkeyPatch, key_set: KeySetServer, key: SigningKey, failure: str
) -> None:
    url = key_set.url
    if failure == "http-500":
        key_set.status = 500
    elif failure == "not-json":
        key_set.body = b"<html>maintenance</html>"
    elif failure == "not-an-object":
        key_set.body = b"[]"
    elif failure == "no-keys":
        key_set.body = b'{"keys": []}'
    else:
        url = f"http://127.0.0.1:{free_port()}/v1/jwks"  # nothing listens there
    configure(
        monkeypatch,
        APP_CHECK_ENFORCED="true",
        APP_CHECK_PROJECT_NUMBER=PROJECT_NUMBER,
        APP_CHECK_JWKS_URL=url,
    )
    with pytest.raises(Unavailable):
        verify_app_check(app_check_token(key))


def test_a_key_set_outage_after_caching_does_not_matter(
    enforced: KeySetServer, key: SigningKey
) -> None:
    verify_app_check(app_check_token(key))
    enforced.status = 503
    assert verify_app_check(app_check_token(key)) == APP_ID


def test_an_unknown_kid_when_the_key_set_is_down(
    enforced: KeySetServer, key: SigningKey, other_key: SigningKey
) -> None:
    """The refetch for a kid not in the cached set fails: maybe a key rotated in, so
    503 (try again), not 401."""
    verify_app_check(app_check_token(key))
    enforced.status = 503
    _jwks_client(get_settings()).cooldown_duration = 0
    with pytest.raises(Unavailable):
        verify_app_check(app_check_token(other_key))
    assert verify_app_check(app_check_token(key)) == APP_ID  # the cached set still serves


# ------------------------------------------------------------------ not enforced


def test_not_enforced_ignores_the_header(key_set: KeySetServer, key: SigningKey) -> None:
    assert get_settings().app_check_enforced is False
    for header in (None, "", "garbage", app_check_token(key), app_check_token(key, ttl_s=-5)):
        assert verify_app_check(header) is None
    assert key_set.fetches == 0


# ------------------------------------------------------------------ settings


def test_enforcement_needs_the_project_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_CHECK_ENFORCED", "true")
    with pytest.raises(ValidationError, match="APP_CHECK_PROJECT_NUMBER"):
        Settings()
    monkeypatch.setenv("APP_CHECK_PROJECT_NUMBER", PROJECT_NUMBER)
    settings = Settings()
    assert settings.app_check_enforced
    assert settings.app_check_jwks_url == "https://firebaseappcheck.googleapis.com/v1/jwks"


def test_defaults_and_the_project_number_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.app_check_enforced is False
    assert settings.app_check_project_number == ""
    with pytest.raises(ValidationError):
        Settings(app_check_project_number="my-project")


# ------------------------------------------------------------------ the HTTP functions


def call(handler: object, method: str, path: str, **headers: str) -> flask.Response:
    app = flask.Flask(__name__)
    with app.test_request_context(path, method=method, headers=headers, json={"brief": "x"}):
        return handler(flask.request)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("handler", "method", "path"),
    [
        (submit_strategy, "POST", "/v1/strategies"),
        (submit_strategy, "POST", "/v1/uploads"),
        (task_status, "GET", "/v1/tasks/abc"),
        (task_status, "DELETE", "/v1/tasks/abc"),
        (task_status, "GET", "/v1/tasks/abc/image"),
    ],
)
def test_the_functions_refuse_a_request_without_a_token(
    enforced: KeySetServer, handler: object, method: str, path: str
) -> None:
    # Checked before the ID token (a forged one here: it is never looked at).
    answer = call(handler, method, path, Authorization="Bearer eyJhbGciOiJub25lIn0.e30.")
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "unauthenticated"
    assert answer.get_json()["error"]["message"] == MISSING
    bad = call(handler, method, path, **{HEADER: "garbage"})
    assert bad.status_code == 401
    assert bad.get_json()["error"]["message"] == INVALID


def test_the_functions_answer_503_when_the_key_set_is_down(
    enforced: KeySetServer, key: SigningKey
) -> None:
    enforced.status = 500
    answer = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: app_check_token(key)})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "unavailable"


def test_a_preflight_needs_no_token_and_allows_the_header(enforced: KeySetServer) -> None:
    answer = call(
        submit_strategy,
        "OPTIONS",
        "/v1/strategies",
        Origin=WEB,
        **{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": HEADER},
    )
    assert answer.status_code == 204
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert HEADER.lower() in allowed


def test_not_enforced_the_id_token_decides(key_set: KeySetServer) -> None:
    answer = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: "garbage"})
    assert answer.status_code == 401
    assert "ID token" in answer.get_json()["error"]["message"]


# ------------------------------------------------------------------ replay protection


class FakeDocument:
    def __init__(self, store: FakeFirestore, path: str) -> None:
        self.store = store
        self.path = path

    def create(self, data: dict[str, Any]) -> None:
        if self.store.failure is not None:
            raise self.store.failure
        if self.path in self.store.documents:
            raise AlreadyExists(f"{self.path} exists")
        self.store.documents[self.path] = data


class FakeCollection:
    def __init__(self, store: FakeFirestore, name: str) -> None:
        self.store = store
        self.name = name

    def document(self, doc_id: str) -> FakeDocument:
        return FakeDocument(self.store, f"{self.name}/{doc_id}")


class FakeFirestore:
    """What consume() uses of Firestore: an atomic create of one document."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.failure: Exception | None = None

    def collection(self, name: str) -> FakeCollection:
        return FakeCollection(self, name)


@pytest.fixture
def firestore(monkeypatch: pytest.MonkeyPatch) -> FakeFirestore:
    store = FakeFirestore()
    monkeypatch.setattr(clients, "firestore", lambda: store)
    return store


def spent(token: str) -> None:
    consume(verify_limited_use(token))


def test_a_limited_use_token_is_consumed_once(
    enforced: KeySetServer, key: SigningKey, firestore: FakeFirestore
) -> None:
    token = limited_use_token(key, jti="a-jti-of-sixteen-bytes-or-more")
    verified = verify_limited_use(token)
    assert verified is not None
    assert verified.app_id == APP_ID and verified.jti == "a-jti-of-sixteen-bytes-or-more"
    consume(verified)
    # One document, named by the jti's hash, whose expires_at (the TTL field) is exp.
    ((path, record),) = firestore.documents.items()
    digest = hashlib.sha256(b"a-jti-of-sixteen-bytes-or-more").hexdigest()
    assert path == f"app_check_tokens/{digest}"
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert record["expires_at"] == datetime.fromtimestamp(exp, UTC)
    assert record["app_id"] == APP_ID and "jti" not in record
    with pytest.raises(Unauthenticated) as info:
        spent(token)
    assert info.value.message == ALREADY_USED
    assert "already used" in ALREADY_USED
    # Another token with the same jti is the same token (as App Check counts them).
    with pytest.raises(Unauthenticated):
        spent(limited_use_token(key, jti="a-jti-of-sixteen-bytes-or-more", ttl_s=600))
    spent(limited_use_token(key))  # a fresh one passes
    assert len(firestore.documents) == 2


def test_a_token_without_a_jti_is_not_a_limited_use_token(
    enforced: KeySetServer, key: SigningKey, firestore: FakeFirestore
) -> None:
    for token in (app_check_token(key), app_check_token(key, jti="")):
        with pytest.raises(Unauthenticated) as info:
            verify_limited_use(token)
        assert info.value.message == NOT_LIMITED_USE
    assert "send a limited-use App Check token" in NOT_LIMITED_USE
    # A jti that is not a string is a malformed token.
    with pytest.raises(Unauthenticated) as info:
        verify_limited_use(app_check_token(key, jti=12345))
    assert info.value.message == INVALID
    # The ordinary checks come first: an expired limited-use token is invalid.
    with pytest.raises(Unauthenticated) as info:
        verify_limited_use(limited_use_token(key, ttl_s=-5))
    assert info.value.message == INVALID
    with pytest.raises(Unauthenticated) as info:
        verify_limited_use(None)
    assert info.value.message == MISSING
    assert firestore.documents == {}
    # Elsewhere (status reads, upload sessions) the ordinary token serves, again and again.
    token = app_check_token(key)
    assert verify_app_check(token) == verify_app_check(token) == APP_ID


def test_consumption_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, enforced: KeySetServer, key: SigningKey
) -> None:
    configure(monkeypatch, APP_CHECK_CONSUME_SUBMITS="false")
    assert verify_limited_use(app_check_token(key)) is None  # verified, nothing to spend
    with pytest.raises(Unauthenticated):
        verify_limited_use(app_check_token(key, ttl_s=-5))


def test_not_enforced_nothing_is_consumed(key_set: KeySetServer, key: SigningKey) -> None:
    assert get_settings().app_check_consume_submits is True
    for header in (None, "garbage", app_check_token(key), limited_use_token(key)):
        assert verify_limited_use(header) is None
    consume(None)  # no Firestore: clients.firestore() is never built
    assert key_set.fetches == 0


def test_a_firestore_failure_is_503(
    enforced: KeySetServer, key: SigningKey, firestore: FakeFirestore
) -> None:
    firestore.failure = ServiceUnavailable("down")
    with pytest.raises(Unavailable):
        spent(limited_use_token(key))


def test_the_replay_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.app_check_consume_submits is True
    assert settings.app_check_tokens_collection == "app_check_tokens"
    monkeypatch.setenv("APP_CHECK_TOKENS_COLLECTION", "replays")
    assert Settings().app_check_tokens_collection == "replays"


class SubmitCalls:
    """Stand-ins for what submit_strategy does after App Check, recording the order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.refuse_id_token = False
        monkeypatch.setattr(submit_module, "verify_caller", self.verify_caller)
        monkeypatch.setattr(submit_module.pause, "check_accepting", self.check_accepting)
        monkeypatch.setattr(submit_module.submission, "submit", self.submit)
        monkeypatch.setattr(submit_module, "_create_upload", self.create_upload)

    def verify_caller(self, authorization: str | None) -> Caller:
        self.calls.append("id token")
        if self.refuse_id_token:
            raise Unauthenticated("the ID token is invalid")
        return Caller(uid="uid-1", anonymous=True)

    def check_accepting(self) -> None:
        self.calls.append("pause")

    def submit(self, uid: str, *args: object, **kwargs: object) -> Submitted:
        self.calls.append("submit")
        accepted = TaskAccepted(task_id="t1", status=TaskStatus.PENDING, status_url="x")
        return Submitted(accepted=accepted, created=True)

    def create_upload(self, request: flask.Request, uid: str) -> flask.Response:
        self.calls.append("upload session")
        return flask.Response(status=201)


def test_the_submit_route_consumes_its_token_after_the_id_token(
    monkeypatch: pytest.MonkeyPatch,
    enforced: KeySetServer,
    key: SigningKey,
    firestore: FakeFirestore,
) -> None:
    calls = SubmitCalls(monkeypatch)
    token = limited_use_token(key)
    # A refused ID token leaves the App Check token unspent: the retry may use it.
    calls.refuse_id_token = True
    answer = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: token})
    assert answer.status_code == 401 and "ID token" in answer.get_json()["error"]["message"]
    assert firestore.documents == {} and calls.calls == ["id token"]
    calls.refuse_id_token = False
    calls.calls.clear()
    answer = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: token})
    assert answer.status_code == 202, answer.get_json()
    assert calls.calls == ["id token", "pause", "submit"]
    assert len(firestore.documents) == 1
    # The same token again: refused before anything is submitted.
    calls.calls.clear()
    again = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: token})
    assert again.status_code == 401
    assert again.get_json()["error"] == {
        "code": "unauthenticated",
        "message": ALREADY_USED,
        "field": None,
    }
    assert calls.calls == ["id token", "pause"]
    # The function's root is the submit route too.
    calls.calls.clear()
    assert call(submit_strategy, "POST", "/", **{HEADER: token}).status_code == 401
    assert call(submit_strategy, "POST", "/", **{HEADER: limited_use_token(key)}).status_code == 202
    assert len(firestore.documents) == 2


def test_a_submit_without_a_jti_is_refused_before_the_id_token(
    monkeypatch: pytest.MonkeyPatch,
    enforced: KeySetServer,
    key: SigningKey,
    firestore: FakeFirestore,
) -> None:
    calls = SubmitCalls(monkeypatch)
    answer = call(submit_strategy, "POST", "/v1/strategies", **{HEADER: app_check_token(key)})
    assert answer.status_code == 401
    assert answer.get_json()["error"]["message"] == NOT_LIMITED_USE
    assert calls.calls == [] and firestore.documents == {}
    # An upload session takes the ordinary token and spends nothing.
    token = app_check_token(key)
    for _ in range(2):
        assert call(submit_strategy, "POST", "/v1/uploads", **{HEADER: token}).status_code == 201
    assert calls.calls == ["id token", "pause", "upload session"] * 2
    assert firestore.documents == {}
