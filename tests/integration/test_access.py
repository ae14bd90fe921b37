"""Who may see what (SPEC §5, issue 4 item 6).

The Firestore security rules are tested through the emulator's REST API, with
the ID tokens of two real Auth-emulator users and with no token at all (the
stack starts the emulator with ``--rules=firestore.rules``). The task documents
are made by the real API, so the rules see genuine documents. Then the HTTP
side: the status function, the image route and cancel check ownership. Last,
the functions refuse to start with emulator variables for a real project.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Api, StandIn, TaskWatcher, User
from tests.local_servers import function_process

pytestmark = pytest.mark.integration

STRATEGY_CALL = "generateContent"


# ------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class World:
    owner: User
    other: User
    done_id: str  # COMPLETED, with a preview image
    key_doc_id: str  # idempotency_keys/{id} made by the owner's keyed submit
    secret: str  # webhook_secrets/{owner uid}, made by POST /v1/webhooks/secret


@pytest.fixture(scope="module")
def world(api: Api, new_user: Callable[[], User], watcher: TaskWatcher) -> World:
    owner, other = new_user(), new_user()
    key = "access-test-key"
    answer = api.http.post(
        f"{api.stack['SUBMIT_URL']}/v1/strategies",
        json={"brief": "Rules matrix: a tea room in Brasov", "image": True},
        headers={**owner.headers, "Idempotency-Key": key},
    )
    assert answer.status_code == 202, answer.text
    done_id = answer.json()["task_id"]
    task = watcher.wait(done_id)
    assert task["status"] == "COMPLETED", task.get("error")
    assert task["result"]["image"] is not None
    key_doc_id = hashlib.sha256(f"{owner.uid}\0{key}".encode()).hexdigest()
    made = api.http.post(f"{api.stack['STATUS_URL']}/v1/webhooks/secret", headers=owner.headers)
    assert made.status_code == 200, made.text
    return World(owner, other, done_id, key_doc_id, secret=made.json()["secret"])


class Rest:
    """The Firestore emulator's REST API, as a web or mobile client reaches it."""

    def __init__(self, stack: dict[str, str], http: httpx.Client) -> None:
        project = stack["GOOGLE_CLOUD_PROJECT"]
        self.root = f"projects/{project}/databases/(default)/documents"
        self.base = f"http://{stack['FIRESTORE_EMULATOR_HOST']}/v1/{self.root}"
        self.http = http

    @staticmethod
    def _headers(user: User | None) -> dict[str, str]:
        return user.headers if user else {}

    def get(self, user: User | None, path: str) -> httpx.Response:
        return self.http.get(f"{self.base}/{path}", headers=self._headers(user))

    def create(self, user: User | None, collection: str, doc_id: str, uid: str) -> httpx.Response:
        return self.http.post(
            f"{self.base}/{collection}",
            params={"documentId": doc_id},
            json={"fields": {"uid": {"stringValue": uid}, "status": {"stringValue": "PENDING"}}},
            headers=self._headers(user),
        )

    def update(self, user: User | None, path: str) -> httpx.Response:
        return self.http.patch(
            f"{self.base}/{path}",
            params={"updateMask.fieldPaths": "status"},
            json={"fields": {"status": {"stringValue": "COMPLETED"}}},
            headers=self._headers(user),
        )

    def delete(self, user: User | None, path: str) -> httpx.Response:
        return self.http.delete(f"{self.base}/{path}", headers=self._headers(user))

    def query(self, user: User | None, collection: str, uid: str | None) -> httpx.Response:
        query: dict[str, Any] = {"from": [{"collectionId": collection}]}
        if uid is not None:
            query["where"] = {
                "fieldFilter": {
                    "field": {"fieldPath": "uid"},
                    "op": "EQUAL",
                    "value": {"stringValue": uid},
                }
            }
        return self.http.post(
            f"{self.base}:runQuery",
            json={"structuredQuery": query},
            headers=self._headers(user),
        )


@pytest.fixture(scope="module")
def rest(stack: dict[str, str], http: httpx.Client) -> Rest:
    return Rest(stack, http)


@pytest.fixture(scope="module")
def gemini_file_id(stack: dict[str, str], firestore_client: Any) -> Iterator[str]:
    """A gemini_files document (the worker deletes its own after use: make one)."""
    from shared.settings import get_settings

    doc_id = hashlib.sha256(os.urandom(16)).hexdigest()
    ref = firestore_client.collection(get_settings().gemini_files_collection).document(doc_id)
    ref.set({"name": "files/abc", "uri": "https://example.invalid/files/abc", "users": 1})
    yield doc_id
    ref.delete()


def _denied(answer: httpx.Response) -> bool:
    return answer.status_code == 403 and "PERMISSION_DENIED" in answer.text


# ------------------------------------------------------------- rules: reads


def test_owner_reads_its_task(rest: Rest, world: World) -> None:
    answer = rest.get(world.owner, f"tasks/{world.done_id}")
    assert answer.status_code == 200, answer.text
    fields = answer.json()["fields"]
    assert fields["uid"]["stringValue"] == world.owner.uid
    assert fields["status"]["stringValue"] == "COMPLETED"


@pytest.mark.parametrize("who", ["other", "anonymous"])
def test_others_cannot_read_a_task(rest: Rest, world: World, who: str) -> None:
    user = world.other if who == "other" else None
    assert _denied(rest.get(user, f"tasks/{world.done_id}"))


def test_a_missing_task_is_denied_not_revealed(rest: Rest, world: World) -> None:
    # resource is null: the rule cannot match the uid, so "missing" looks like "not yours".
    assert _denied(rest.get(world.owner, f"tasks/{'0' * 32}"))


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
@pytest.mark.parametrize("collection", ["idempotency_keys", "gemini_files", "webhook_secrets"])
def test_internal_collections_are_unreadable(
    rest: Rest, world: World, gemini_file_id: str, who: str, collection: str
) -> None:
    user = {"owner": world.owner, "other": world.other, "anonymous": None}[who]
    doc_id = {
        "idempotency_keys": world.key_doc_id,
        "gemini_files": gemini_file_id,
        # Not even its owner reads their signing secret here (only the API hands it out).
        "webhook_secrets": world.owner.uid,
    }[collection]
    assert _denied(rest.get(user, f"{collection}/{doc_id}"))
    assert _denied(rest.query(user, collection, None))
    assert _denied(rest.query(user, collection, world.owner.uid))


def test_webhook_secret_document_is_genuine(firestore_client: Any, world: World) -> None:
    """The denied reads above were of the secret the API made for the owner."""
    snap = firestore_client.collection("webhook_secrets").document(world.owner.uid).get()
    assert snap.exists
    assert snap.to_dict()["secret"] == world.secret


def test_idempotency_key_document_is_genuine(firestore_client: Any, world: World) -> None:
    """The denied read above was of a real document, written by the API."""
    snap = firestore_client.collection("idempotency_keys").document(world.key_doc_id).get()
    assert snap.exists
    assert snap.to_dict()["task_id"] == world.done_id


# ----------------------------------------------------------- rules: queries


def test_owner_may_query_its_own_tasks(rest: Rest, world: World) -> None:
    answer = rest.query(world.owner, "tasks", world.owner.uid)
    assert answer.status_code == 200, answer.text
    names = [row["document"]["name"] for row in answer.json() if "document" in row]
    assert names == [f"{rest.root}/tasks/{world.done_id}"]


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
def test_query_over_all_tasks_is_denied(rest: Rest, world: World, who: str) -> None:
    user = {"owner": world.owner, "other": world.other, "anonymous": None}[who]
    assert _denied(rest.query(user, "tasks", None))


def test_query_for_someone_elses_tasks_is_denied(rest: Rest, world: World) -> None:
    assert _denied(rest.query(world.other, "tasks", world.owner.uid))
    assert _denied(rest.query(None, "tasks", world.owner.uid))


def test_listing_the_collection_is_denied(rest: Rest, world: World) -> None:
    assert _denied(rest.get(world.owner, "tasks"))


# ------------------------------------------------------------ rules: writes


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
@pytest.mark.parametrize(
    "collection", ["tasks", "idempotency_keys", "gemini_files", "webhook_secrets", "anything"]
)
def test_clients_cannot_create(rest: Rest, world: World, who: str, collection: str) -> None:
    user = {"owner": world.owner, "other": world.other, "anonymous": None}[who]
    doc_id = f"client-made-{os.urandom(4).hex()}"
    # Even a document that claims the writer as its owner.
    uid = user.uid if user else world.owner.uid
    assert _denied(rest.create(user, collection, doc_id, uid))


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
def test_clients_cannot_update_or_delete_a_task(
    rest: Rest, world: World, firestore_client: Any, who: str
) -> None:
    user = {"owner": world.owner, "other": world.other, "anonymous": None}[who]
    path = f"tasks/{world.done_id}"
    assert _denied(rest.update(user, path))
    assert _denied(rest.delete(user, path))
    snap = firestore_client.collection("tasks").document(world.done_id).get()
    assert snap.exists
    assert snap.to_dict()["status"] == "COMPLETED"


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
def test_clients_cannot_touch_internal_documents(
    rest: Rest, world: World, gemini_file_id: str, firestore_client: Any, who: str
) -> None:
    user = {"owner": world.owner, "other": world.other, "anonymous": None}[who]
    for path in (
        f"idempotency_keys/{world.key_doc_id}",
        f"gemini_files/{gemini_file_id}",
        f"webhook_secrets/{world.owner.uid}",
    ):
        assert _denied(rest.update(user, path)), path
        assert _denied(rest.delete(user, path)), path
    assert firestore_client.collection("idempotency_keys").document(world.key_doc_id).get().exists
    secret = firestore_client.collection("webhook_secrets").document(world.owner.uid).get()
    assert secret.to_dict()["secret"] == world.secret


# ------------------------------------------------------------- HTTP ownership


def test_status_function_checks_ownership(api: Api, world: World) -> None:
    mine = api.status(world.owner, world.done_id)
    assert mine.status_code == 200
    stranger = api.status(world.other, world.done_id)
    assert stranger.status_code == 404
    assert stranger.json() == {
        "error": {"code": "not_found", "message": "no such task", "field": None}
    }
    # Exactly what an unknown id gets: nothing tells "not yours" from "no such task".
    assert api.status(world.other, "0" * 32).json() == stranger.json()
    assert api.status(None, world.done_id).status_code == 401


def test_image_route_checks_ownership(http: httpx.Client, stack: dict, world: World) -> None:
    url = f"{stack['STATUS_URL']}/v1/tasks/{world.done_id}/image"
    mine = http.get(url, headers=world.owner.headers)
    assert mine.status_code == 200
    assert mine.headers["content-type"] == "image/jpeg"  # current image models answer JPEG
    assert mine.content.startswith(b"\xff\xd8\xff")
    assert "private" in mine.headers["cache-control"]

    stranger = http.get(url, headers=world.other.headers)
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
    assert b"PNG" not in stranger.content
    assert http.get(url).status_code == 401


def test_delete_by_another_user_is_404_and_cancels_nothing(
    api: Api, world: World, standin: StandIn, marker: str, watcher: TaskWatcher
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=2.0)
    task_id = api.submit_ok(world.owner, brief=f"Slow task for the cancel check {marker}")

    stranger = api.cancel(world.other, task_id)
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
    assert api.status(world.owner, task_id).json()["status"] in ("PENDING", "PROCESSING")

    task = watcher.wait(task_id)
    assert task["status"] == "COMPLETED"  # the stranger's DELETE changed nothing


# ----------------------------------------- no emulators for a real project


def _run_function(
    tmp_path: Path,
    target: str,
    signature: str,
    project: str,
    timeout_s: float = 20,
    extra_env: dict[str, str] | None = None,
) -> tuple[int | None, int | None, str]:
    """Start one function as the platform would; (exit code, status of one request, log)."""
    run_dir = tmp_path / f"run-{target}-{project}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run_dir),
        "GOOGLE_CLOUD_PROJECT": project,
        # The one that lets anyone in: firebase-admin accepts unsigned tokens with it.
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    status: int | None = None
    with function_process(target, signature, env, run_dir) as function:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and function.process.poll() is None:
            try:
                # An unsigned token for the "real" project: the Auth emulator variable
                # would make firebase-admin accept it.
                answer = httpx.post(
                    f"{function.url}/v1/strategies",
                    json={"brief": "x"},
                    headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
                    timeout=5,
                )
                status = answer.status_code
                break
            except httpx.TransportError:
                time.sleep(0.2)
    proc, log_path = function.process, function.log_path
    code = proc.returncode if status is None else None
    return code, status, log_path.read_text(errors="replace")


@pytest.mark.parametrize(
    ("target", "signature"),
    [("submit_strategy", "http"), ("task_status", "http"), ("process_task", "cloudevent")],
)
def test_functions_refuse_to_start_with_emulators_for_a_real_project(
    tmp_path: Path, target: str, signature: str
) -> None:
    code, status, log = _run_function(tmp_path, target, signature, "real-project")
    # It fails at cold start (import), before serving anything: no request is answered.
    assert status is None, f"the function served a request ({status}):\n{log[-2000:]}"
    assert code not in (None, 0), log[-2000:]
    assert "FIREBASE_AUTH_EMULATOR_HOST set for the real project 'real-project'" in log


def test_the_same_function_starts_for_a_demo_project(tmp_path: Path) -> None:
    """The control: only the project id differs, and the function serves."""
    _, status, log = _run_function(tmp_path, "submit_strategy", "http", "demo-access-check")
    assert status == 401, log[-2000:]
