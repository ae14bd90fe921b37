"""App Check enforced on a real ``submit_strategy`` (SPEC §5; issue 10 item 3, issue 18).

The test stack runs without App Check, so this starts a ``submit_strategy`` process of
its own: the stack's submit environment (emulators, topic, CORS origins) plus
``APP_CHECK_ENFORCED=true`` and a key set this test serves on 127.0.0.1, whose key
signs the tokens. Anonymous sign-up alone then no longer gets a task in; and a submit
needs a limited-use token (a ``jti``), which it consumes: a replay gets nothing in.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import quotas
from shared.settings import get_settings
from tests.app_check_keys import (
    KeySetServer,
    SigningKey,
    app_check_token,
    enforced_submit,
    limited_use_token,
    new_jti,
)
from tests.integration.conftest import STATE_FILE, User

pytestmark = pytest.mark.integration

HEADER = "X-Firebase-AppCheck"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("integration-key")


@pytest.fixture(scope="module")
def submit_url(
    stack: dict[str, str], key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with (
        KeySetServer([key]) as key_set,
        enforced_submit(STATE_FILE, tmp_path_factory.mktemp("app-check"), key_set.url) as url,
    ):
        yield url


def _post(
    http: httpx.Client, url: str, user: User, token: str | None, key: str, **body: Any
) -> httpx.Response:
    headers = {**user.headers, "Idempotency-Key": key}
    if token is not None:
        headers[HEADER] = token
    return http.post(f"{url}/v1/strategies", json=body, headers=headers)


def _written_for(user: User, idempotency_key: str, firestore_client: Any) -> list[str]:
    """Everything a submit of this user would have written (SPEC §2.2)."""
    settings = get_settings()
    found: list[str] = []
    tasks = firestore_client.collection(settings.tasks_collection)
    mine = FieldFilter("uid", "==", user.uid)
    found += [f"task {s.id}" for s in tasks.where(filter=mine).stream()]
    sessions = firestore_client.collection(settings.upload_sessions_collection)
    found += [f"upload session {s.id}" for s in sessions.where(filter=mine).stream()]
    doc_id = hashlib.sha256(f"{user.uid}\0{idempotency_key}".encode()).hexdigest()
    if firestore_client.collection(settings.idempotency_collection).document(doc_id).get().exists:
        found.append("idempotency key")
    prefix = f"user-{quotas.user_key(user.uid)}"
    counters = firestore_client.collection(settings.quota_collection).list_documents()
    found += [f"quota counter {ref.id}" for ref in counters if ref.id.startswith(prefix)]
    return found


def test_no_token_is_refused_and_nothing_is_written(
    submit_url: str, http: httpx.Client, user: User, firestore_client: Any
) -> None:
    key = f"app-check-{uuid.uuid4().hex}"
    answer = _post(http, submit_url, user, None, key, brief="App Check: no token")
    assert answer.status_code == 401, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unauthenticated"
    assert "App Check token is required" in error["message"]
    garbage = _post(http, submit_url, user, "not-a-token", key, brief="App Check: garbage")
    assert garbage.status_code == 401, garbage.text
    assert "invalid or expired" in garbage.json()["error"]["message"]
    uploads = http.post(
        f"{submit_url}/v1/uploads",
        json={"size_bytes": 1000, "filename": "a.pdf"},
        headers=user.headers,
    )
    assert uploads.status_code == 401, uploads.text
    assert _written_for(user, key, firestore_client) == []


def _tasks_of(user: User, firestore_client: Any) -> list[str]:
    tasks = firestore_client.collection(get_settings().tasks_collection)
    return [s.id for s in tasks.where(filter=FieldFilter("uid", "==", user.uid)).stream()]


def _token_record(jti: str, firestore_client: Any) -> dict[str, Any] | None:
    """The consumed-token document of ``jti`` (shared/app_check.py), if any."""
    collection = firestore_client.collection(get_settings().app_check_tokens_collection)
    snapshot = collection.document(hashlib.sha256(jti.encode()).hexdigest()).get()
    return snapshot.to_dict() if snapshot.exists else None


def test_a_token_of_the_project_gets_the_task_in(
    submit_url: str, http: httpx.Client, user: User, key: SigningKey, firestore_client: Any
) -> None:
    idempotency_key = f"app-check-{uuid.uuid4().hex}"
    token = limited_use_token(key)
    answer = _post(http, submit_url, user, token, idempotency_key, brief="App Check: a bakery")
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    snapshot = firestore_client.collection(get_settings().tasks_collection).document(task_id).get()
    assert snapshot.exists and snapshot.to_dict()["uid"] == user.uid
    # A retry of the same submit (its Idempotency-Key) comes with a fresh limited-use
    # token, as the clients send one per attempt: the first task, 200.
    fresh = limited_use_token(key)
    again = _post(http, submit_url, user, fresh, idempotency_key, brief="App Check: a bakery")
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == task_id


def test_a_limited_use_token_works_once(
    submit_url: str, http: httpx.Client, user: User, key: SigningKey, firestore_client: Any
) -> None:
    jti = new_jti()
    token = limited_use_token(key, jti=jti)
    first_key = f"app-check-{uuid.uuid4().hex}"
    answer = _post(http, submit_url, user, token, first_key, brief="App Check: once")
    assert answer.status_code == 202, answer.text
    tasks = _tasks_of(user, firestore_client)
    assert tasks == [answer.json()["task_id"]]
    # The token is recorded as consumed, until its exp (the TTL policy's field).
    record = _token_record(jti, firestore_client)
    assert record is not None
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert record["expires_at"] == datetime.fromtimestamp(exp, UTC)
    # The same token again, for another submit (a new Idempotency-Key, another brief):
    # 401, and nothing is written for it, no task above all.
    replay_key = f"app-check-{uuid.uuid4().hex}"
    before = _written_for(user, replay_key, firestore_client)  # the first task, its counts
    replay = _post(http, submit_url, user, token, replay_key, brief="App Check: a replay")
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"]["code"] == "unauthenticated"
    assert "already used" in replay.json()["error"]["message"]
    assert _tasks_of(user, firestore_client) == tasks
    assert _written_for(user, replay_key, firestore_client) == before
    # Even as a retry of the first submit (its key), a spent token gets nothing back.
    retry = _post(http, submit_url, user, token, first_key, brief="App Check: once")
    assert retry.status_code == 401, retry.text
    assert _tasks_of(user, firestore_client) == tasks


def test_a_token_without_jti_is_refused(
    submit_url: str, http: httpx.Client, user: User, key: SigningKey, firestore_client: Any
) -> None:
    idempotency_key = f"app-check-{uuid.uuid4().hex}"
    session_token = app_check_token(key)  # valid, but not limited-use
    answer = _post(http, submit_url, user, session_token, idempotency_key, brief="App Check: jti")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert "send a limited-use App Check token" in answer.json()["error"]["message"]
    assert _written_for(user, idempotency_key, firestore_client) == []
    # Upload sessions take the ordinary token, and it serves more than once there.
    for _ in range(2):
        uploads = http.post(
            f"{submit_url}/v1/uploads",
            json={"size_bytes": 1000, "filename": "a.pdf"},
            headers={**user.headers, HEADER: session_token},
        )
        assert uploads.status_code == 201, uploads.text


def test_a_refused_id_token_leaves_the_token_unspent(
    submit_url: str, http: httpx.Client, user: User, key: SigningKey, firestore_client: Any
) -> None:
    """The token is consumed after the ID token is checked: a client whose ID token had
    expired retries with a fresh one and the same App Check token."""
    jti = new_jti()
    token = limited_use_token(key, jti=jti)
    idempotency_key = f"app-check-{uuid.uuid4().hex}"
    stale = User(uid=user.uid, token="not-an-id-token")
    refused = _post(http, submit_url, stale, token, idempotency_key, brief="App Check: stale")
    assert refused.status_code == 401, refused.text
    assert "ID token" in refused.json()["error"]["message"]
    assert _token_record(jti, firestore_client) is None
    answer = _post(http, submit_url, user, token, idempotency_key, brief="App Check: stale")
    assert answer.status_code == 202, answer.text
    assert _token_record(jti, firestore_client) is not None


def test_a_token_of_another_project_is_refused(
    submit_url: str, http: httpx.Client, user: User, key: SigningKey, firestore_client: Any
) -> None:
    idempotency_key = f"app-check-{uuid.uuid4().hex}"
    other = limited_use_token(key, project_number="999999999999")
    answer = _post(http, submit_url, user, other, idempotency_key, brief="App Check: elsewhere")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert "invalid or expired" in answer.json()["error"]["message"]
    expired = limited_use_token(key, ttl_s=-60)
    assert _post(http, submit_url, user, expired, idempotency_key, brief="x").status_code == 401
    assert _written_for(user, idempotency_key, firestore_client) == []


def test_a_preflight_from_the_web_app_allows_the_header(
    submit_url: str, stack: dict[str, str], http: httpx.Client
) -> None:
    origin = stack.get("WEB_URL")
    if not origin:
        pytest.skip("the stack serves no web app, so it answers CORS for no origin")
    answer = http.options(
        f"{submit_url}/v1/strategies",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": f"authorization,content-type,{HEADER.lower()}",
        },
    )
    assert answer.status_code == 204, answer.text
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert HEADER.lower() in allowed
