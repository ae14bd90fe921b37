"""The accept path of POST /v1/strategies: validate, store, record, enqueue.

Order matters for "nothing half-made": the PDF upload and the task document
are independent, so they run at once; the message is published only when
both exist, and any failure removes exactly what this request wrote.

``Submitter`` takes its collaborators as ports (``shared.ports``): the modules
``tasks``, ``uploads``, ``queue``, ``idempotency`` and ``upload_sessions`` in
production, in-memory fakes in the unit tests.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import costs, idempotency, quotas, uploads
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RateLimited,
    TinkerbellError,
    Unavailable,
)
from shared.log import get_logger
from shared.models import (
    PdfRef,
    Progress,
    Revision,
    RevisionRequest,
    StrategyRequest,
    TaskAccepted,
    TaskRecord,
    TaskRequest,
    TaskStatus,
)
from shared.ports import (
    IdempotencyKeys,
    PdfStore,
    TaskPublisher,
    TaskWriter,
    UploadSessions,
    UserCaps,
)
from shared.settings import get_settings
from shared.validation import to_task_request

log = get_logger("submission")


@dataclass(frozen=True)
class Lineage:
    """Where a new task stands among the versions of a strategy (a first one: its own root)."""

    parent_task_id: str | None
    root_task_id: str
    version: int


_io_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _io_pool
    if _io_pool is None:
        _io_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="accept-io")
    return _io_pool


@dataclass(frozen=True)
class PdfUpload:
    data: bytes
    filename: str | None


def status_url(task_id: str) -> str:
    return get_settings().status_url(task_id)


@dataclass(frozen=True)
class Submitted:
    accepted: TaskAccepted
    created: bool  # False: an Idempotency-Key replay of an earlier task


class Submitter:
    def __init__(
        self,
        *,
        tasks: TaskWriter,
        pdfs: PdfStore,
        queue: TaskPublisher,
        keys: IdempotencyKeys,
        sessions: UploadSessions,
        caps: UserCaps,
    ) -> None:
        self.tasks = tasks
        self.caps = caps
        self.pdfs = pdfs
        self.queue = queue
        self.keys = keys
        self.sessions = sessions

    def submit(
        self,
        uid: str,
        request: StrategyRequest,
        pdf: PdfUpload | None,
        idempotency_key: str | None = None,
        *,
        anonymous: bool = False,
    ) -> Submitted:
        settings = get_settings()
        task_request = to_task_request(request, settings)
        if request.upload_id is not None and pdf is not None:
            raise InvalidArgument("upload_id: send either a pdf or an upload_id", field="upload_id")
        if idempotency_key is not None:
            idempotency.check_key(idempotency_key)
        task_id = uuid.uuid4().hex
        with_pdf = pdf is not None or request.upload_id is not None
        reserved = (
            costs.worst_case_micros(task_request, with_pdf=with_pdf) if settings.budgets_on else 0
        )
        # A project-wide count that refused a task moments ago refuses this one from
        # memory: no write, no upload (issue 18, "cheap refusals first").
        self.caps.check_project_room(datetime.now(UTC), reserved=reserved)
        if with_pdf:
            # A PDF costs a Storage read and hash, or an upload: not for a request its
            # user's caps or budget refuse already.
            self.caps.check_user_room(
                uid, datetime.now(UTC), anonymous=anonymous, reserved=reserved
            )
        if pdf is not None:
            uploads.check_pdf(pdf.data, max_bytes=settings.max_pdf_bytes)
            task_request.pdf = PdfRef(
                gcs_uri=f"gs://{settings.bucket_name}/{uploads.source_object_name(task_id)}",
                size_bytes=len(pdf.data),
                sha256=hashlib.sha256(pdf.data).hexdigest(),
                filename=uploads.clean_filename(pdf.filename),
            )
        if request.upload_id is not None:
            task_request.pdf = self.sessions.use_upload(uid, request.upload_id)
        return self._accept(
            uid, task_id, task_request, pdf, idempotency_key, anonymous, None, reserved
        )

    def revise(
        self,
        uid: str,
        parent_task_id: str,
        body: RevisionRequest,
        idempotency_key: str | None = None,
        *,
        anonymous: bool = False,
    ) -> Submitted:
        """A new version of the owner's COMPLETED task: the same sources (its PDF is not
        uploaded again), its strategy and the instruction; accepted like a submit."""
        settings = get_settings()
        if idempotency_key is not None:
            idempotency.check_key(idempotency_key)
        parent = self.tasks.get_task(parent_task_id)
        if parent is None or parent.uid != uid:
            raise NotFound("no such task")
        if parent.status is not TaskStatus.COMPLETED or parent.result is None:
            raise FailedPrecondition("only a COMPLETED task can be revised")
        revision = Revision(
            parent_task_id=parent.task_id,
            instruction=body.instruction,
            strategy=parent.result.strategy,
        )
        task_request = parent.request.model_copy(
            update={
                "image": body.image,
                "language": body.language or parent.request.language,
                "revision": revision,
                # The revision's own: a parent's webhook was for the parent's end.
                "webhook_url": body.webhook_url,
            }
        )
        reserved = costs.worst_case_micros(task_request) if settings.budgets_on else 0
        self.caps.check_project_room(datetime.now(UTC), reserved=reserved)
        lineage = Lineage(
            parent_task_id=parent.task_id,
            root_task_id=parent.root_task_id or parent.task_id,
            version=parent.version + 1,
        )
        task_id = uuid.uuid4().hex
        return self._accept(
            uid, task_id, task_request, None, idempotency_key, anonymous, lineage, reserved
        )

    def _accept(
        self,
        uid: str,
        task_id: str,
        task_request: TaskRequest,
        pdf: PdfUpload | None,
        idempotency_key: str | None,
        anonymous: bool,
        lineage: Lineage | None,
        reserved: int,
    ) -> Submitted:
        """The common tail: the idempotency key, the counted create, the publish;
        ``reserved``: the worst case the caller checked the budgets with."""
        now = datetime.now(UTC)
        if idempotency_key is not None:
            reservation = self.keys.reserve(
                uid, idempotency_key, idempotency.fingerprint(task_request), task_id, now
            )
            if reservation.replay:
                accepted = self._replayed(uid, idempotency_key, reservation.task_id)
                return Submitted(accepted=accepted, created=False)
        try:
            task = self._create(uid, task_id, task_request, pdf, now, anonymous, lineage, reserved)
        except Exception:
            if idempotency_key is not None:
                self.keys.release(uid, idempotency_key)
            raise
        if idempotency_key is not None:
            self._accept_key(uid, idempotency_key, task_id)
        log.info("task accepted", extra={"task_id": task_id, "uid": uid})
        accepted = TaskAccepted(task_id=task_id, status=task.status, status_url=status_url(task_id))
        return Submitted(accepted=accepted, created=True)

    def _replayed(self, uid: str, key: str, task_id: str) -> TaskAccepted:
        """The first request's task once it is accepted: never the id of a task that a
        cap may still refuse, nor of one never made."""
        deadline = time.monotonic() + REPLAY_WAIT_S
        while True:
            held = self.keys.holder(uid, key)
            if held is None or held[0] != task_id:
                # The first request was refused (429, 503: it released the key).
                raise FailedPrecondition(
                    f"{idempotency.HEADER}: the first request with this key did not complete; retry"
                )
            if held[1] == idempotency.ACCEPTED:
                task = self.tasks.get_task(task_id)
                if task is not None:
                    return TaskAccepted(
                        task_id=task_id, status=task.status, status_url=status_url(task_id)
                    )
            if time.monotonic() >= deadline:
                raise FailedPrecondition(
                    f"{idempotency.HEADER}: the first request with this key is still running; retry"
                )
            time.sleep(REPLAY_POLL_S)

    def _accept_key(self, uid: str, key: str, task_id: str) -> None:
        try:
            self.keys.accept(uid, key, task_id, datetime.now(UTC))
        except Exception:
            # The task is made and queued; only a replay after the short pending
            # expiry could make a second one.
            log.exception("idempotency key not confirmed", extra={"task_id": task_id})

    def _create(
        self,
        uid: str,
        task_id: str,
        task_request: TaskRequest,
        pdf: PdfUpload | None,
        now: datetime,
        anonymous: bool,
        lineage: Lineage | None,
        reserved: int,
    ) -> TaskRecord:
        budgets = get_settings().budgets_on
        lineage = lineage or Lineage(parent_task_id=None, root_task_id=task_id, version=1)
        task = TaskRecord(
            task_id=task_id,
            parent_task_id=lineage.parent_task_id,
            root_task_id=lineage.root_task_id,
            version=lineage.version,
            uid=uid,
            status=TaskStatus.PENDING,
            created_at=now,
            updated_at=now,
            request=task_request,
            progress=Progress(stage="queued", message="Waiting for a worker", percent=0),
            # The day budgets hold the task's worst case until it ends (shared/costs.py).
            budget_day=quotas.day_of(now) if budgets else None,
            budget_reserved_micros=reserved if budgets else 0,
            anonymous_user=anonymous,
        )
        self._write_task_and_upload(task, pdf)
        try:
            self.queue.publish_task(task_id)
        except Exception as exc:
            # The PDF object is this request's only when it came with the request; an
            # upload session's object stays for the user's retry.
            self._remove(task, document=True, pdf_object=pdf is not None)
            raise Unavailable("could not queue the task; nothing was kept, try again") from exc
        return task

    def _write_task_and_upload(self, task: TaskRecord, pdf: PdfUpload | None) -> None:
        """The document (counted in its caps) and the request's own PDF, at once; on
        any failure, remove exactly what this request wrote."""
        pool = _pool()
        writes: list[Future[object]] = [pool.submit(self.tasks.create_task, task)]
        if pdf is not None:
            writes.append(pool.submit(self.pdfs.store_pdf, task.task_id, pdf.data, pdf.filename))
        errors = [f.exception() for f in writes]
        if any(errors):
            object_made = len(errors) > 1 and errors[1] is None
            # A create that raised may still have committed (a lost answer): check.
            document_maybe_made = not isinstance(errors[0], RateLimited)
            self._remove(task, document=document_maybe_made, pdf_object=object_made)
            first = next(e for e in errors if e is not None)
            if isinstance(first, TinkerbellError):
                raise first
            raise Unavailable("could not store the task; nothing was kept, try again") from first

    def _remove(self, task: TaskRecord, *, document: bool, pdf_object: bool) -> None:
        """Best-effort removal of what this request wrote: the task (with its counts)
        and the PDF it uploaded, never an upload session's object it only refers to."""
        try:
            if document:
                self.tasks.discard_new_task(task)
            if pdf_object and task.request.pdf is not None:
                self.pdfs.delete_object(task.request.pdf.gcs_uri)
        except Exception:
            log.exception("cleanup after a failed submit failed", extra={"task_id": task.task_id})


# A replay racing the first request waits this long for its task to be accepted.
REPLAY_WAIT_S = 5.0
REPLAY_POLL_S = 0.05


@functools.cache
def default_submitter() -> Submitter:
    """The accept path wired to the real services, once per process."""
    from shared import idempotency, queue, quotas, tasks, upload_sessions, uploads

    return Submitter(
        tasks=tasks,
        pdfs=uploads,
        queue=queue,
        keys=idempotency,
        sessions=upload_sessions,
        caps=quotas,
    )


def submit(
    uid: str,
    request: StrategyRequest,
    pdf: PdfUpload | None,
    idempotency_key: str | None = None,
    *,
    anonymous: bool = False,
) -> Submitted:
    return default_submitter().submit(uid, request, pdf, idempotency_key, anonymous=anonymous)


def revise(
    uid: str,
    parent_task_id: str,
    body: RevisionRequest,
    idempotency_key: str | None = None,
    *,
    anonymous: bool = False,
) -> Submitted:
    return default_submitter().revise(
        uid, parent_task_id, body, idempotency_key, anonymous=anonymous
    )
