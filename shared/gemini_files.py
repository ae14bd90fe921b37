"""PDFs for Gemini through the File API (SPEC §4, issue 3).

The PDF streams from Cloud Storage into the File API in the SDK's 8 MiB
chunks (no full copy in memory). Tasks that use the same PDF (same sha256)
at the same time share one uploaded file: a Firestore document
``gemini_files/{sha256}`` counts its users, and the last one to finish
deletes the file, on success and on failure alike; or, with GEMINI_FILE_KEEP_S, keeps
it that long for a revision of its task (issue 19): the file is idle (``users`` 0,
``idle_since``), the next task with the PDF takes it back, and the first PDF task after
the window deletes every file idle past it (``tidy_soon``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import Aborted
from google.api_core.retry import Retry
from google.cloud import firestore
from google.genai import types

from shared import clients
from shared.gemini import GeminiError, call_gemini, within
from shared.log import get_logger
from shared.models import PdfRef
from shared.settings import FILE_API_CHUNK_BYTES, get_settings
from shared.uploads import PDF_MIME_TYPE, split_gcs_uri

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, Transaction

log = get_logger("gemini_files")
GCS_CHUNK_BYTES = FILE_API_CHUNK_BYTES  # read GCS in the SDK's own upload chunks
# Files live 48 h in the File API; a shared one is reused only well before that.
REUSE_MARGIN = timedelta(hours=1)
FILE_LIFETIME = timedelta(hours=48)


@dataclass(frozen=True)
class GeminiFile:
    name: str
    uri: str
    mime_type: str

    def part(self) -> types.Part:
        return types.Part.from_uri(file_uri=self.uri, mime_type=self.mime_type)


def _ref(sha256: str) -> DocumentReference:
    collection = get_settings().gemini_files_collection
    return clients.firestore().collection(collection).document(sha256)


@contextmanager
def pdf_for_gemini(pdf: PdfRef, *, task_id: str, deadline: float) -> Iterator[GeminiFile]:
    """The PDF as an ACTIVE File API file for the duration of the block.

    ``deadline`` (monotonic) is the attempt's: a wait for another task's upload of
    the same PDF uses only the PDF's share of the time left, and if that upload
    does not become ACTIVE in it the attempt ends (retryable) rather than upload a
    copy of its own past its lease.
    """
    role, file = _acquire(pdf.sha256, task_id)
    if role is Role.WAIT:
        settings = get_settings()
        share = (
            deadline
            - time.monotonic()
            - (settings.attempt_worst_case_s() - settings.pdf_upload_worst_case_s())
        )
        file = _wait_for_upload(pdf.sha256, timeout_s=max(0.0, share))
        if file is None:
            raise GeminiError(
                "pdf_busy",
                "Another task was still preparing the same PDF; trying again shortly",
                retryable=True,
            )
    if file is None:  # nobody has it: we upload it for everyone
        try:
            # Every File API request counts against the PDF's budget: the resumable start
            # (retried by retry_options), each chunk (which the SDK re-posts up to 3 times,
            # sleeping 1, 2 and 4 s, when an answer lacks X-Goog-Upload-Status), every
            # files.get poll. A timer of our own holds the whole to that budget.
            limit = time.monotonic() + get_settings().pdf_upload_worst_case_s()
            file = within(lambda: _upload(pdf, task_id=task_id, limit=limit), limit)
        except Exception:
            _abandon(pdf.sha256, task_id)
            raise
        _publish(pdf.sha256, task_id, file)
    try:
        yield file
    finally:
        _leave(pdf.sha256, file)
        tidy_soon()


class Role(StrEnum):
    USE = "use"  # a shared file is ACTIVE: use it
    WAIT = "wait"  # another task is uploading it: wait for it
    UPLOAD = "upload"  # nobody has it: upload it and share it


def _acquire(sha256: str, task_id: str) -> tuple[Role, GeminiFile | None]:
    """Count ourselves in as a user of the shared file, and learn our role."""
    ref = _ref(sha256)
    now = datetime.now(UTC)
    settings = get_settings()
    upload_budget = timedelta(seconds=settings.pdf_upload_worst_case_s())
    kept_since = now - timedelta(seconds=settings.gemini_file_keep_s)
    replaced: list[GeminiFile] = []  # an idle copy past its time, that we upload anew

    @firestore.transactional
    def run(transaction: Transaction) -> tuple[Role, GeminiFile | None]:
        replaced.clear()
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        joined = {"users": (data or {}).get("users", 0) + 1, "last_used_at": now}
        if data and data["state"] == "active":
            idle = data["users"] <= 0  # kept after its last task (GEMINI_FILE_KEEP_S)
            kept = not idle or data.get("idle_since", now) > kept_since
            if kept and data["expires_at"] > now + REUSE_MARGIN:
                transaction.update(ref, {**joined, "idle_since": None})
                return Role.USE, _file_of(data)
            if idle:  # nobody uses it: ours to replace, and to delete
                replaced.append(_file_of(data))
        elif data and data["state"] == "uploading" and data["started_at"] > now - upload_budget:
            transaction.update(ref, joined)
            return Role.WAIT, None
        transaction.set(
            ref,
            {
                "state": "uploading",
                "owner": task_id,
                "users": 1,
                "started_at": now,
                "last_used_at": now,
            },
        )
        return Role.UPLOAD, None

    role, file = run(clients.firestore().transaction())
    for stale in replaced:
        _delete_file(stale)
    return role, file


def _file_of(data: dict[str, Any]) -> GeminiFile:
    return GeminiFile(name=data["name"], uri=data["uri"], mime_type=data["mime_type"])


def _wait_for_upload(sha256: str, *, timeout_s: float) -> GeminiFile | None:
    """Follow the shared record with a listener until the upload is ACTIVE.

    None when the uploader gave up (record gone) or took longer than ``timeout_s``.
    """
    ready = threading.Event()
    found: list[GeminiFile | None] = []

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        data = snapshots[0].to_dict() if snapshots and snapshots[0].exists else None
        if data is None or data.get("state") == "active":
            found.append(_file_of(data) if data else None)
            ready.set()

    watch = _ref(sha256).on_snapshot(on_change)
    try:
        ready.wait(timeout_s)
    finally:
        watch.unsubscribe()
    return found[0] if found else None


def _publish(sha256: str, task_id: str, file: GeminiFile) -> None:
    ref = _ref(sha256)
    now = datetime.now(UTC)

    @firestore.transactional
    def run(transaction: Transaction) -> None:
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        if data and data.get("owner") == task_id and data["state"] == "uploading":
            transaction.update(
                ref,
                {
                    "state": "active",
                    "name": file.name,
                    "uri": file.uri,
                    "mime_type": file.mime_type,
                    "expires_at": now + FILE_LIFETIME,
                },
            )

    run(clients.firestore().transaction())


def _abandon(sha256: str, task_id: str) -> None:
    """Our shared upload failed: drop the record so that waiters upload their own."""
    ref = _ref(sha256)

    @firestore.transactional
    def run(transaction: Transaction) -> None:
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        if data and data.get("owner") == task_id and data["state"] == "uploading":
            transaction.delete(ref)

    try:
        run(clients.firestore().transaction())
    except Exception:
        log.exception("could not drop the shared file record")


# Tasks that share a file tend to finish together: their leaves contend for the record.
LEAVE_TRANSACTION_ATTEMPTS = 10


def _contended_retry() -> Retry:
    """A lost leave leaks the file until it expires (48 h): retry a contended
    transaction as a whole (a lock timeout may come in its read, or exhaust its
    commits), for up to OUTCOME_WRITE_TIMEOUT_S, which the attempt's budget counts."""
    return Retry(
        predicate=lambda exc: (
            isinstance(exc, Aborted)
            or (isinstance(exc, ValueError) and "Failed to commit transaction" in str(exc))
        ),
        initial=0.05,
        maximum=1.0,
        multiplier=2.0,
        timeout=get_settings().outcome_write_timeout_s,
    )


def _leave(sha256: str, file: GeminiFile) -> None:
    """Count ourselves out; the last user deletes the file and its record (or, with
    GEMINI_FILE_KEEP_S, leaves it idle for that long)."""
    ref = _ref(sha256)
    keep = get_settings().gemini_file_keep_s > 0

    @firestore.transactional
    def run(transaction: Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        if not data or data.get("name") != file.name:
            return True  # not (or no longer) the shared file: ours alone
        if data["users"] <= 1 and keep:
            transaction.update(ref, {"users": 0, "idle_since": datetime.now(UTC)})
            return False  # kept for a revision: tidy_soon deletes it once idle too long
        if data["users"] <= 1:
            transaction.delete(ref)
            return True
        transaction.update(ref, {"users": data["users"] - 1})
        return False

    try:
        last = _contended_retry()(
            lambda: run(clients.firestore().transaction(max_attempts=LEAVE_TRANSACTION_ATTEMPTS))
        )()
    except Exception:
        log.exception("could not update the shared file record")
        last = False
    if last:
        _delete_file(file)


def _options_until(limit: float) -> types.HttpOptions:
    """One File API request's deadline: its own timeout, or the time left if shorter."""
    settings = get_settings()
    left = limit - time.monotonic()
    if left <= 0:
        raise GeminiError(
            "pdf_processing_timeout",
            "Gemini took too long to take the PDF; try again later",
            retryable=True,
        )
    return clients.gemini_http_options(
        timeout_s=min(settings.gemini_upload_timeout_s, left),
        attempts=settings.gemini_max_attempts,
    )


def _upload(pdf: PdfRef, *, task_id: str, limit: float) -> GeminiFile:
    settings = get_settings()
    bucket, name = split_gcs_uri(pdf.gcs_uri)
    blob = clients.storage().bucket(bucket).blob(name)
    with blob.open("rb", chunk_size=GCS_CHUNK_BYTES) as reader:
        uploaded = call_gemini(
            lambda: clients.gemini().files.upload(
                file=reader,
                config=types.UploadFileConfig(
                    mime_type=PDF_MIME_TYPE,
                    display_name=f"tinkerbell-{task_id}.pdf",
                    # Each 8 MiB chunk's own deadline (the client's would apply otherwise).
                    http_options=_options_until(limit),
                ),
            )
        )
    deadline = min(limit, time.monotonic() + settings.file_active_timeout_s)
    file = _wait_until_active(uploaded, deadline=deadline)
    return GeminiFile(name=file.name or "", uri=file.uri or "", mime_type=PDF_MIME_TYPE)


def _wait_until_active(file: Any, *, deadline: float) -> Any:
    """The File API processes uploads asynchronously and offers no push: ask,
    with growing pauses, until ACTIVE, FAILED or the deadline (monotonic), each
    files.get with the time left as its own deadline."""
    pause = 0.1
    while file.state != types.FileState.ACTIVE:
        if file.state == types.FileState.FAILED:
            _delete_file(GeminiFile(name=file.name, uri=file.uri or "", mime_type=PDF_MIME_TYPE))
            raise GeminiError("pdf_unreadable", "Gemini could not read the PDF", retryable=False)
        if time.monotonic() + pause > deadline:
            _delete_file(GeminiFile(name=file.name, uri=file.uri or "", mime_type=PDF_MIME_TYPE))
            raise GeminiError(
                "pdf_processing_timeout",
                "Gemini took too long to process the PDF; try again later",
                retryable=True,
            )
        threading.Event().wait(pause)
        pause = min(pause * 2, 2.0)
        file = call_gemini(
            functools.partial(
                clients.gemini().files.get,
                name=file.name,
                config=types.GetFileConfig(http_options=_options_until(deadline)),
            )
        )
    return file


def _delete_file(file: GeminiFile) -> None:
    """In the background: the attempt goes on (to the image call) without waiting for
    it, and a failed delete costs nothing (the file expires within 48 h)."""
    threading.Thread(
        target=_delete_now, args=(file,), name="gemini-file-delete", daemon=True
    ).start()


def _delete_now(file: GeminiFile) -> None:
    settings = get_settings()
    options = clients.gemini_http_options(timeout_s=settings.gemini_upload_timeout_s, attempts=1)
    try:
        clients.gemini().files.delete(
            name=file.name, config=types.DeleteFileConfig(http_options=options)
        )
    except Exception:
        # It expires by itself within 48 h; a failed delete costs nothing more.
        log.warning("could not delete a File API file", extra={"outcome": "file_delete_failed"})


# Idle copies are looked for at most this often per instance, after a task with a PDF.
TIDY_INTERVAL_S = 60.0
_tidy_lock = threading.Lock()
_last_tidy = [-TIDY_INTERVAL_S]


def tidy_soon() -> None:
    """In the background, at most once a TIDY_INTERVAL_S: delete idle copies past their
    GEMINI_FILE_KEEP_S. Nothing to do when copies are not kept."""
    if get_settings().gemini_file_keep_s <= 0:
        return
    with _tidy_lock:
        if time.monotonic() - _last_tidy[0] < TIDY_INTERVAL_S:
            return
        _last_tidy[0] = time.monotonic()
    threading.Thread(target=_tidy_logged, name="gemini-file-tidy", daemon=True).start()


def _tidy_logged() -> None:
    try:
        tidy()
    except Exception:
        log.exception("could not tidy idle File API copies")


def tidy(now: datetime | None = None, *, limit: int = 100) -> int:
    """Delete the copies idle since before GEMINI_FILE_KEEP_S ago; returns how many."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=get_settings().gemini_file_keep_s)
    collection = clients.firestore().collection(get_settings().gemini_files_collection)
    idle = (
        collection.where(filter=FieldFilter("users", "==", 0))
        .where(filter=FieldFilter("idle_since", "<", cutoff))
        .limit(limit)
    )
    deleted = 0
    for snapshot in idle.stream():
        file = _take_idle(snapshot.id, cutoff)
        if file is not None:
            _delete_now(file)
            deleted += 1
    return deleted


def _take_idle(sha256: str, cutoff: datetime) -> GeminiFile | None:
    """Drop the record of a copy still idle since before ``cutoff`` (a task may have
    taken it back since the query); the copy is then the caller's to delete."""
    ref = _ref(sha256)

    @firestore.transactional
    def run(transaction: Transaction) -> GeminiFile | None:
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        if not data or data["users"] > 0 or not data.get("idle_since"):
            return None
        if data["idle_since"] >= cutoff:
            return None
        transaction.delete(ref)
        return _file_of(data)

    result: GeminiFile | None = run(clients.firestore().transaction())
    return result
