"""Idempotency-Key on submit (SPEC §2.2): a retry returns the first task.

A key is reserved with an atomic ``create`` before anything else is written,
so two racing requests with one key cannot both make a task. The document id
is a hash of uid and key: keys of different users never meet.

A reservation starts ``pending`` for IDEMPOTENCY_PENDING_S (if the instance dies
before the task exists, the key is free again soon, not for a day) and becomes
``accepted`` for IDEMPOTENCY_TTL_HOURS once the task is created and queued. A replay
answers with the task only when it was accepted: never with one that the first
request is still deciding about (a cap may yet refuse it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from google.api_core.exceptions import AlreadyExists

from shared import clients
from shared.errors import FailedPrecondition, InvalidArgument
from shared.models import TaskRequest
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x20-\x7e]{1,128}\Z")
# A reservation that vanished or expired between create and read: try again.
RESERVE_ATTEMPTS = 3


PENDING = "pending"
ACCEPTED = "accepted"


@dataclass(frozen=True)
class Reservation:
    task_id: str
    replay: bool  # True: the key was used before, task_id is the first task's


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidArgument(f"{HEADER}: must be 1 to 128 printable ASCII characters")
    return key


def fingerprint(request: TaskRequest) -> str:
    """What makes two requests "the same body": everything but server-made names."""
    body = request.model_dump(mode="json")
    if body.get("pdf"):
        body["pdf"].pop("gcs_uri", None)  # it names the task, which differs per request
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _ref(uid: str, key: str) -> DocumentReference:
    settings = get_settings()
    doc_id = hashlib.sha256(f"{uid}\0{key}".encode()).hexdigest()
    return clients.firestore().collection(settings.idempotency_collection).document(doc_id)


def reserve(
    uid: str, key: str, request_fingerprint: str, task_id: str, now: datetime
) -> Reservation:
    """Claim ``key`` for ``task_id``, or return the task that claimed it first."""
    settings = get_settings()
    ref = _ref(uid, key)
    for _ in range(RESERVE_ATTEMPTS):
        try:
            ref.create(
                {
                    "uid": uid,
                    "task_id": task_id,
                    "fingerprint": request_fingerprint,
                    "state": PENDING,
                    "created_at": now,
                    # A Firestore TTL policy on expires_at deletes old keys in production.
                    "expires_at": now + timedelta(seconds=settings.idempotency_pending_s),
                }
            )
            return Reservation(task_id=task_id, replay=False)
        except AlreadyExists:
            snapshot = ref.get()
            first = snapshot.to_dict() if snapshot.exists else None
            if first is None:
                continue
            if first["expires_at"] <= now:
                # Only if nobody renewed it meanwhile.
                ref.delete(
                    option=clients.firestore().write_option(last_update_time=snapshot.update_time)
                )
                continue
            if first["fingerprint"] != request_fingerprint:
                raise FailedPrecondition(
                    f"{HEADER}: already used for a different request"
                ) from None
            return Reservation(task_id=str(first["task_id"]), replay=True)
    raise FailedPrecondition(f"{HEADER}: is being used by another request; retry")


def accept(uid: str, key: str, task_id: str, now: datetime) -> None:
    """The task of this key exists and is queued: replays get it for a day."""
    hours = get_settings().idempotency_ttl_hours
    ref = _ref(uid, key)
    snapshot = ref.get()
    if snapshot.exists and snapshot.get("task_id") == task_id:
        ref.update(
            {"state": ACCEPTED, "expires_at": now + timedelta(hours=hours)},
            option=clients.firestore().write_option(last_update_time=snapshot.update_time),
        )


def holder(uid: str, key: str) -> tuple[str, str] | None:
    """The task id that holds ``key`` now and its state, or None when the key is free."""
    snapshot = _ref(uid, key).get()
    data = snapshot.to_dict() if snapshot.exists else None
    return (str(data["task_id"]), str(data.get("state", ACCEPTED))) if data else None


def release(uid: str, key: str) -> None:
    """Forget a reservation whose task could not be made, so a retry can succeed."""
    ref = _ref(uid, key)
    ref.delete()


def delete_keys_of(uid: str) -> int:
    """Forget every key of ``uid`` (DELETE /v1/me); they hold its task ids."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    keys = clients.firestore().collection(get_settings().idempotency_collection)
    deleted = 0
    for snapshot in keys.where(filter=FieldFilter("uid", "==", uid)).stream():
        snapshot.reference.delete()
        deleted += 1
    return deleted
