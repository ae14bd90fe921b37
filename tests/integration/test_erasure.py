"""Forget it (issue 19): a finished task is deleted on its owner's request, with its
objects; DELETE /v1/me erases everything of the user, the Auth user last. Through the
stack: nothing of the user is left in Firestore or Cloud Storage afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import clients, erasure, quotas
from shared.settings import get_settings
from tests.integration.conftest import Api, StandIn, TaskWatcher, User

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n% erasure test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STRATEGY_CALL = "generateContent"


def _bucket() -> Any:
    return clients.storage().bucket(get_settings().bucket_name)


def _objects(*prefixes: str) -> set[str]:
    return {blob.name for p in prefixes for blob in _bucket().list_blobs(prefix=p)}


def _task_objects(task_id: str) -> set[str]:
    return _objects(f"uploads/{task_id}/", f"results/{task_id}/")


def _submit_with_pdf(http: httpx.Client, stack: dict, user: User, brief: str) -> str:
    return Api(stack, http).submit_pdf(user, PDF, brief=brief, image="true")


def _upload(http: httpx.Client, stack: dict, user: User) -> str:
    session = http.post(
        f"{stack['SUBMIT_URL']}/v1/uploads", headers=user.headers, json={"size_bytes": len(PDF)}
    )
    assert session.status_code == 201, session.text
    body = session.json()
    put = http.put(body["upload_url"], content=PDF, headers={"Content-Type": "application/pdf"})
    assert put.status_code in (200, 201), put.text
    upload_id: str = body["upload_id"]
    return upload_id


def _where_uid(collection: str, uid: str) -> list[str]:
    query = clients.firestore().collection(collection).where(filter=FieldFilter("uid", "==", uid))
    return [snapshot.id for snapshot in query.stream()]


def test_deleting_a_finished_task_erases_it_and_its_objects(
    http: httpx.Client, stack: dict, user: User, new_user: Callable[[], User], watcher: TaskWatcher
) -> None:
    task_id = _submit_with_pdf(http, stack, user, "A honey brand in Cluj")
    assert watcher.wait(task_id)["status"] == "COMPLETED"
    objects = _task_objects(task_id)
    assert f"uploads/{task_id}/source.pdf" in objects
    assert any(name.startswith(f"results/{task_id}/preview.") for name in objects)
    url = f"{stack['STATUS_URL']}/v1/tasks/{task_id}"

    stranger = new_user()
    assert http.delete(url, headers=stranger.headers).status_code == 404  # not theirs
    assert http.get(url, headers=user.headers).status_code == 200

    deleted = http.delete(url, headers=user.headers)
    assert deleted.status_code == 204, deleted.text
    assert _task_objects(task_id) == set()
    for again in (http.get(url, headers=user.headers), http.delete(url, headers=user.headers)):
        assert again.status_code == 404  # as if it never existed
        assert again.json()["error"]["code"] == "not_found"
    image = http.get(f"{url}/image", headers=user.headers)
    assert image.status_code == 404


def test_deleting_an_unfinished_task_cancels_it_then_erases_it(
    http: httpx.Client, stack: dict, user: User, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=5)
    task_id = Api(stack, http).submit_ok(user, brief=f"A tea room {marker}", image=False)
    url = f"{stack['STATUS_URL']}/v1/tasks/{task_id}"
    first = http.delete(url, headers=user.headers)
    assert first.status_code == 200 and first.json()["status"] == "CANCELLED"
    assert http.delete(url, headers=user.headers).status_code == 204
    assert http.get(url, headers=user.headers).status_code == 404


def test_erasing_a_user_leaves_nothing_of_them(
    http: httpx.Client,
    stack: dict,
    new_user: Callable[[], User],
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
) -> None:
    user, neighbour = new_user(), new_user()
    settings = get_settings()
    finished = _submit_with_pdf(http, stack, user, "A bike shop in Iasi")
    upload_id = _upload(http, stack, user)
    from_upload = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers={**user.headers, "Idempotency-Key": f"erase-{marker}"},
        json={"brief": "A bakery in Brasov", "upload_id": upload_id, "image": False},
    ).json()["task_id"]
    _upload(http, stack, user)  # an upload session never used
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=5)
    unfinished = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        json={"brief": f"A slow one {marker}", "image": False},
    ).json()["task_id"]
    theirs = _submit_with_pdf(http, stack, neighbour, "Somebody else's brief")
    watcher.wait_all([finished, from_upload, theirs])
    assert _where_uid(settings.tasks_collection, user.uid)
    assert _where_uid(settings.idempotency_collection, user.uid)
    assert _where_uid(settings.upload_sessions_collection, user.uid)

    erased = http.delete(f"{stack['STATUS_URL']}/v1/me", headers=user.headers)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["done"] is True and report["auth_user"] is True
    assert report["tasks"] == 3 and report["upload_sessions"] == 2
    assert report["objects"] >= 4  # 1 PDF + 1 preview + 2 upload-session PDFs

    for collection in (
        settings.tasks_collection,
        settings.idempotency_collection,
        settings.upload_sessions_collection,
    ):
        assert _where_uid(collection, user.uid) == [], collection
    counters = clients.firestore().collection(settings.quota_collection)
    prefix = f"user-{quotas.user_key(user.uid)}-"
    assert [d.id for d in counters.list_documents() if d.id.startswith(prefix)] == []
    leftovers = _objects(f"uploads/{user.uid}/")
    for task_id in (finished, from_upload, unfinished):
        leftovers |= _task_objects(task_id)
    assert leftovers == set()
    # The Auth user is gone: its token is refused.
    after = http.get(f"{stack['STATUS_URL']}/v1/tasks/{finished}", headers=user.headers)
    assert after.status_code == 401
    # The neighbour keeps everything.
    assert _where_uid(settings.tasks_collection, neighbour.uid) == [theirs]
    assert _task_objects(theirs)


def test_an_erasure_cut_short_goes_on_when_called_again(
    http: httpx.Client,
    stack: dict,
    user: User,
    watcher: TaskWatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In this process: a budget spent at once erases one task, then says not done."""
    auth_host = stack["AUTH_EMULATOR_URL"].removeprefix("http://")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", auth_host)
    task_ids = [_submit_with_pdf(http, stack, user, f"Shop {n}") for n in range(3)]
    watcher.wait_all(task_ids)
    first = erasure.erase_user(user.uid, budget_s=0.001)
    assert first.done is False and first.tasks == 1
    second = erasure.erase_user(user.uid)
    assert second.done is True and second.tasks == 2 and second.auth_user is True
    third = erasure.erase_user(user.uid)  # idempotent: nothing left
    assert third.done is True and third.tasks == 0 and third.auth_user is False
