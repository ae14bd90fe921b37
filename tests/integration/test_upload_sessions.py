"""Upload sessions that cannot strand (issue 10, items 4 and 5): a bounded size, a cap
per user, only our web app's origin, and expiry that really closes them."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared import clients, upload_sessions
from shared.errors import RateLimited
from shared.settings import get_settings
from tests.integration.conftest import Api, TaskWatcher, User

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n% upload session test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def open_session(
    http: httpx.Client, stack: dict, user: User, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    return http.post(
        f"{stack['SUBMIT_URL']}/v1/uploads",
        headers={**user.headers, **(headers or {})},
        json=body,
    )


def session_doc(upload_id: str) -> Any:
    collection = get_settings().upload_sessions_collection
    return clients.firestore().collection(collection).document(upload_id)


def blob_of(user: User, upload_id: str) -> Any:
    bucket = clients.storage().bucket(get_settings().bucket_name)
    return bucket.blob(upload_sessions.object_name(user.uid, upload_id))


def test_a_session_needs_its_size(http: httpx.Client, stack: dict, user: User) -> None:
    answer = open_session(http, stack, user, filename="brochure.pdf")
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "size_bytes"


def test_only_our_web_app_may_open_a_session_from_a_browser(
    http: httpx.Client, stack: dict, user: User
) -> None:
    ours = stack["WEB_URL"]
    assert open_session(http, stack, user, {"Origin": ours}, size_bytes=len(PDF)).status_code == 201
    other = open_session(http, stack, user, {"Origin": "https://evil.example"}, size_bytes=len(PDF))
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "invalid_argument"
    # No Origin (the CLI, curl): allowed, the session answers no CORS.
    assert open_session(http, stack, user, size_bytes=len(PDF)).status_code == 201


def test_sessions_per_user_are_capped(http: httpx.Client, stack: dict, new_user: Any) -> None:
    user, neighbour = new_user(), new_user()
    cap = get_settings().max_upload_sessions_per_user_per_hour
    assert cap > 0
    codes = [open_session(http, stack, user, size_bytes=len(PDF)).status_code for _ in range(cap)]
    assert codes == [201] * cap
    refused = open_session(http, stack, user, size_bytes=len(PDF))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert open_session(http, stack, neighbour, size_bytes=len(PDF)).status_code == 201


def test_an_expired_session_is_closed_and_its_object_removed(
    http: httpx.Client, stack: dict, user: User
) -> None:
    session = open_session(http, stack, user, size_bytes=len(PDF)).json()
    upload_id = session["upload_id"]
    put = http.put(session["upload_url"], content=PDF, headers={"Content-Type": "application/pdf"})
    assert put.status_code in (200, 201), put.text
    assert blob_of(user, upload_id).exists()
    session_doc(upload_id).update({"expires_at": datetime.now(UTC) - timedelta(seconds=1)})

    assert upload_sessions.sweep_expired(datetime.now(UTC)) >= 1
    assert not session_doc(upload_id).get().exists
    assert not blob_of(user, upload_id).exists()


def test_a_late_upload_to_an_expired_session_cannot_be_used(
    api: Api, http: httpx.Client, stack: dict, user: User
) -> None:
    """The sweeper cancels the Cloud Storage session (DELETE on its URL, which Cloud
    Storage honours; the emulator here ignores it), and the session is gone: bytes
    sent late are never used by a task (the bucket's lifecycle deletes them)."""
    session = open_session(http, stack, user, size_bytes=len(PDF)).json()
    session_doc(session["upload_id"]).update(
        {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
    )
    upload_sessions.sweep_expired(datetime.now(UTC))
    http.put(session["upload_url"], content=PDF, headers={"Content-Type": "application/pdf"})
    answer = api.submit(user, brief="A late upload", upload_id=session["upload_id"])
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "upload_id"


def test_an_expired_session_keeps_the_object_a_task_uses(
    api: Api, http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher, marker: str
) -> None:
    pdf = PDF + os.urandom(8)
    session = open_session(http, stack, user, size_bytes=len(pdf)).json()
    upload_id = session["upload_id"]
    http.put(session["upload_url"], content=pdf, headers={"Content-Type": "application/pdf"})
    task_id = api.submit_ok(user, brief=f"Uses its upload {marker}", upload_id=upload_id)
    assert watcher.wait(task_id)["status"] == "COMPLETED"
    session_doc(upload_id).update({"expires_at": datetime.now(UTC) - timedelta(seconds=1)})

    upload_sessions.sweep_expired(datetime.now(UTC))
    assert not session_doc(upload_id).get().exists
    assert blob_of(user, upload_id).exists()  # the bucket's lifecycle deletes it later


def test_an_upload_is_hashed_once_at_its_first_use_and_again_if_replaced(
    api: Api, http: httpx.Client, stack: dict, user: User, marker: str
) -> None:
    """A loop of submits of one upload must not read 50 MiB each time (issue 18)."""
    pdf = PDF + os.urandom(8)
    session = open_session(http, stack, user, size_bytes=len(pdf)).json()
    upload_id = session["upload_id"]
    http.put(session["upload_url"], content=pdf, headers={"Content-Type": "application/pdf"})
    first = api.submit_ok(user, brief=f"First use {marker}", upload_id=upload_id)
    kept = session_doc(upload_id).get().to_dict()
    assert kept["sha256"] == hashlib.sha256(pdf).hexdigest()
    bucket = clients.storage().bucket(get_settings().bucket_name)
    assert kept["generation"] == bucket.get_blob(blob_of(user, upload_id).name).generation
    # What the session keeps is what a later submit uses: it does not hash again.
    session_doc(upload_id).update({"sha256": "ab" * 32})
    second = api.submit_ok(user, brief=f"Second use {marker}", upload_id=upload_id)
    tasks = clients.firestore().collection(get_settings().tasks_collection)
    assert tasks.document(second).get().to_dict()["request"]["pdf"]["sha256"] == "ab" * 32
    assert tasks.document(first).get().to_dict()["request"]["pdf"]["sha256"] == kept["sha256"]
    # Another generation of the object (replaced): hashed again.
    session_doc(upload_id).update({"generation": -1})
    third = api.submit_ok(user, brief=f"Third use {marker}", upload_id=upload_id)
    assert tasks.document(third).get().to_dict()["request"]["pdf"]["sha256"] == kept["sha256"]


@pytest.fixture
def own_sessions(stack: dict, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process's sessions and counters in collections of their own."""
    suffix = uuid.uuid4().hex[:12]
    monkeypatch.setenv("UPLOAD_SESSIONS_COLLECTION", f"sessions_test_{suffix}")
    monkeypatch.setenv("QUOTA_COLLECTION", f"quota_sessions_test_{suffix}")
    monkeypatch.setenv("QUOTA_SHARDS", "16")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_sweeper_closes_every_expired_session_not_just_a_page(own_sessions: None) -> None:
    collection = clients.firestore().collection(get_settings().upload_sessions_collection)
    past = datetime.now(UTC) - timedelta(minutes=5)
    for start in range(0, 450, 150):
        batch = clients.firestore().batch()
        for n in range(start, start + 150):
            batch.set(collection.document(f"s{n}"), {"uid": "u", "expires_at": past})
        batch.commit()
    assert upload_sessions.sweep_expired(datetime.now(UTC), page=200) == 450
    assert list(collection.limit(1).stream()) == []


def test_the_project_opens_at_most_its_cap_of_sessions_an_hour(
    own_sessions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh anonymous users cannot hold open sessions without bound (issue 18, item 6)."""
    monkeypatch.setenv("MAX_UPLOAD_SESSIONS_PER_HOUR", "3")
    get_settings.cache_clear()
    request = upload_sessions.UploadRequest(size_bytes=len(PDF))

    def open_one(n: int) -> RateLimited | None:
        try:
            upload_sessions.create_session(f"user-{n}-{uuid.uuid4().hex[:6]}", request, None)
        except RateLimited as refused:
            return refused
        return None

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(open_one, range(6)))
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert len(refused) == 3
    assert all("upload sessions an hour" in r.message for r in refused)
    sessions = clients.firestore().collection(get_settings().upload_sessions_collection)
    assert len(list(sessions.stream())) == 3  # a refused one left no session behind
