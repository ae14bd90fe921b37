"""Forgetting on request (issue 19, SPEC §2.6): one finished task, or all of a user.

A task's data is its document and its objects in Cloud Storage (its preview,
``results/{task_id}/``; its PDF, ``uploads/{task_id}/`` or an upload session's
``uploads/{uid}/{upload_id}.pdf``, once no other task uses it: a revision shares its
parent's). The preview goes first, then the document, then the PDF (which must see the
document gone): a call cut short leaves a task the user can delete again, or a PDF the
bucket's lifecycle deletes within UPLOAD_RETENTION_DAYS.

A task's read-only links go with it. A user's data is, besides their tasks and links:
their upload sessions and objects, their
idempotency keys, their counters (ids made from a hash of the uid) and the Firebase
Auth user, deleted last, once everything else is gone. ``erase_user`` works within a
time budget and says whether it is done; calling it again goes on (idempotent).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared import (
    auth,
    clients,
    idempotency,
    quotas,
    shares,
    tasks,
    upload_sessions,
    webhook_secrets,
)
from shared.errors import FailedPrecondition
from shared.log import get_logger
from shared.models import Erasure, TaskRecord
from shared.settings import get_settings
from shared.uploads import preview_prefix, source_prefix, split_gcs_uri

log = get_logger("erasure")
PAGE = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def delete_task(task_id: str, *, uid: str) -> TaskRecord | None:
    """DELETE /v1/tasks/{id}: an unfinished task is cancelled (and returned, CANCELLED);
    a finished one is erased (None)."""
    try:
        return tasks.cancel_task(task_id, uid=uid)
    except FailedPrecondition:
        pass  # finished already: erase it
    erase_task(task_id, uid=uid)
    return None


def erase_task(task_id: str, *, uid: str) -> int:
    """Erase the owner's finished task: its objects, then its document. Returns the
    number of objects deleted. NotFound for a task that is not the user's (or gone)."""
    task = tasks.get_owned_task(task_id, uid=uid)
    if not task.status.is_terminal:
        raise FailedPrecondition("the task is unfinished: cancel it first")
    shares.delete_shares(uid=uid, task_id=task_id)  # its links die with it
    deleted = _delete_prefix(preview_prefix(task_id))
    tasks.delete_finished(task_id, uid=uid)
    # Its PDF goes once no other task uses it: its revisions share it (and keep working).
    pdf = task.request.pdf
    if pdf is not None:
        deleted += _delete_pdf_if_unused(uid, pdf.gcs_uri)
        _expire_gemini_copy(pdf.sha256)
    log.info("task erased", extra={"task_id": task_id, "objects": deleted})
    return deleted


def _expire_gemini_copy(sha256: str) -> None:
    """A kept File API copy of an erased PDF (GEMINI_FILE_KEEP_S) is due for deletion at
    once: the worker's next tidy deletes it (this function holds no Gemini key)."""
    if get_settings().gemini_file_keep_s <= 0:
        return
    ref = clients.firestore().collection(get_settings().gemini_files_collection).document(sha256)
    snapshot = ref.get()
    data = snapshot.to_dict() if snapshot.exists else None
    if data and data.get("users", 1) <= 0:
        ref.update({"idle_since": EPOCH})


def _delete_pdf_if_unused(uid: str, gcs_uri: str) -> int:
    """Delete a PDF no task uses any more (an upload session's: once its session is
    closed too). A failure here leaves it to the bucket's lifecycle (SPEC §2.6)."""
    if upload_sessions.is_session_object(uid, gcs_uri):
        return upload_sessions.delete_if_unused(gcs_uri)
    if upload_sessions.used_by_a_task(gcs_uri):
        return 0
    bucket, name = split_gcs_uri(gcs_uri)
    task_id = name.removeprefix("uploads/").removesuffix("/source.pdf")
    if bucket != get_settings().bucket_name or name != f"{source_prefix(task_id)}source.pdf":
        return 0  # not a PDF a request brought: not ours to delete
    return _delete_prefix(source_prefix(task_id))


@dataclass
class _Budget:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def spent(self) -> bool:
        return time.monotonic() - self.started >= self.seconds


def erase_user(uid: str, *, budget_s: float | None = None) -> Erasure:
    """DELETE /v1/me: everything of ``uid``, within ``budget_s`` (ERASURE_BUDGET_S);
    ``done`` is False when time ran out first: call again to go on."""
    budget = _Budget(get_settings().erasure_budget_s if budget_s is None else budget_s)
    erased = Erasure(done=False)
    while not budget.spent:
        page = _task_ids_of(uid, limit=PAGE)
        if not page:
            break
        for task_id in page:
            with contextlib.suppress(FailedPrecondition):  # finished: nothing to cancel
                tasks.cancel_task(task_id, uid=uid)
            erased.objects += erase_task(task_id, uid=uid)
            erased.tasks += 1
            if budget.spent:
                return erased
    if budget.spent:
        return erased
    erased.shares = shares.delete_shares(uid=uid)
    erased.upload_sessions = upload_sessions.close_sessions_of(uid)
    erased.objects += _delete_prefix(upload_sessions.user_prefix(uid))
    erased.idempotency_keys = idempotency.delete_keys_of(uid)
    erased.counters = quotas.delete_user_counters(uid)
    erased.webhook_secret = webhook_secrets.delete(uid)
    erased.auth_user = auth.delete_user(uid)
    erased.done = True
    log.info("user erased", extra={"tasks": erased.tasks, "objects": erased.objects})
    return erased


def _task_ids_of(uid: str, *, limit: int) -> list[str]:
    """Some of the user's tasks, any status (erased page by page)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    collection = clients.firestore().collection(get_settings().tasks_collection)
    query = collection.where(filter=FieldFilter("uid", "==", uid)).limit(limit)
    return [snapshot.id for snapshot in query.stream()]


def _delete_prefix(prefix: str) -> int:
    """Delete every object under ``prefix`` in the uploads bucket; a gone one is fine."""
    from google.api_core.exceptions import NotFound as ObjectNotFound

    bucket = clients.storage().bucket(get_settings().bucket_name)
    deleted = 0
    for blob in bucket.list_blobs(prefix=prefix):
        try:
            blob.delete()
        except ObjectNotFound:
            continue
        deleted += 1
    return deleted
