"""In-memory fakes of the worker's ports (``shared.ports``), for unit tests.

They keep state as the real services do and apply the same rules (the claim's rule
is ``shared.tasks.decide_claim`` itself); each records what it was asked, and can be
told to fail a given way a given number of times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import RateLimited
from shared.gemini import GeminiError, ImageAnswer, ProgressCallback, StrategyAnswer
from shared.idempotency import ACCEPTED, PENDING, Reservation
from shared.models import (
    MarketingStrategy,
    PdfRef,
    Progress,
    StrategyDraft,
    StrategyStep,
    TaskError,
    TaskRecord,
    TaskRequest,
    TaskResult,
    TaskStatus,
    Usage,
)
from shared.tasks import (
    Claim,
    ClaimOutcome,
    decide_abandoned,
    decide_claim,
    held_by_an_attempt,
    owned,
    terminal_fields,
)


class Failures:
    """Exceptions to raise on the next calls of a named operation."""

    def __init__(self) -> None:
        self._queued: dict[str, list[BaseException]] = {}

    def add(self, operation: str, exc: BaseException, times: int = 1) -> None:
        self._queued.setdefault(operation, []).extend([exc] * times)

    def maybe_raise(self, operation: str) -> None:
        queued = self._queued.get(operation)
        if queued:
            raise queued.pop(0)


class FakeTaskStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.failures = Failures()
        self.calls: list[str] = []
        self.progress_written: list[Progress] = []
        # task_id -> what its end settled the budget at (micro-EUR; None: kept whole).
        self.settled: dict[str, int | None] = {}
        # task_id -> what the worker's task watch calls when the task is lost to it.
        self.watchers: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def put(self, task: TaskRecord) -> None:
        self.docs[task.task_id] = task.model_dump()

    def get(self, task_id: str) -> TaskRecord:
        return TaskRecord.model_validate(self.docs[task_id])

    def _apply(self, task_id: str, changes: dict[str, Any]) -> None:
        self.docs[task_id].update(changes)

    def _if_owned(self, task_id: str, lease_owner: str, changes: dict[str, Any]) -> bool:
        if not owned(self.docs.get(task_id), lease_owner):
            return False
        self._apply(task_id, changes)
        return True

    def claim_task(self, task_id: str, *, lease_owner: str, now: datetime) -> Claim:
        with self._lock:
            self.calls.append("claim_task")
            self.failures.maybe_raise("claim_task")
            data = self.docs.get(task_id)
            task = TaskRecord.model_validate(data) if data else None
            claim, changes = decide_claim(task, lease_owner=lease_owner, now=now)
            if changes:
                self._apply(task_id, changes)
            return claim

    def holds_lease(self, task_id: str, lease_owner: str) -> bool:
        self.calls.append("holds_lease")
        return owned(self.docs.get(task_id), lease_owner)

    def save_checkpoint(
        self, task_id: str, *, lease_owner: str, now: datetime, checkpoint: TaskResult
    ) -> bool:
        with self._lock:
            self.calls.append("save_checkpoint")
            self.failures.maybe_raise("save_checkpoint")
            changes = {"checkpoint": checkpoint.model_dump(), "updated_at": now}
            return self._if_owned(task_id, lease_owner, changes)

    def finish_task(
        self,
        task_id: str,
        *,
        lease_owner: str,
        now: datetime,
        result: TaskResult | None = None,
        error: TaskError | None = None,
        spent_micros: int | None = 0,
        webhook_url: str | None = None,
    ) -> bool:
        with self._lock:
            self.calls.append("finish_task")
            self.failures.maybe_raise("finish_task")
            status = TaskStatus.COMPLETED if result is not None else TaskStatus.FAILED
            changes = terminal_fields(
                status, now, result=result, error=error, webhook_url=webhook_url
            )
            before = int((self.docs.get(task_id) or {}).get("spent_micros") or 0)
            kept = self._if_owned(task_id, lease_owner, changes)
            if kept:  # what the budget was settled at (None: the reservation stays)
                self.settled[task_id] = None if spent_micros is None else before + spent_micros
            return kept

    def release_stopped(self, task_id: str, *, lease_owner: str | None) -> bool:
        with self._lock:
            self.calls.append("release_stopped")
            data = self.docs.get(task_id)
            held = (
                data is not None
                and data.get("status") == TaskStatus.CANCELLED.value
                and data.get("lease_expires_at") is not None
                and data.get("lease_owner") == lease_owner
            )
            if held:
                self._apply(task_id, {"lease_expires_at": None})
            return held

    def watch_task(
        self, task_id: str, lease_owner: str, on_lost: Callable[[], None]
    ) -> Callable[[], None]:
        self.watchers[task_id] = on_lost
        return lambda: self.watchers.pop(task_id, None)

    def release_lease(
        self,
        task_id: str,
        *,
        lease_owner: str,
        now: datetime,
        progress: Progress | None = None,
        error: str | None = None,
        checkpoint: TaskResult | None = None,
        spent_micros: int = 0,
    ) -> bool:
        with self._lock:
            self.calls.append("release_lease")
            self.failures.maybe_raise("release_lease")
            data = self.docs.get(task_id)
            if not owned(data, lease_owner):
                return False
            assert data is not None
            changes: dict[str, Any] = {"lease_expires_at": now, "updated_at": now}
            if progress is not None:
                changes["progress"] = progress.model_dump()
            if error is not None and error not in data.get("attempt_errors", []):
                changes["attempt_errors"] = [*data.get("attempt_errors", []), error]
            if checkpoint is not None:
                changes["checkpoint"] = checkpoint.model_dump()
            if spent_micros:
                changes["spent_micros"] = int(data.get("spent_micros") or 0) + spent_micros
            self._apply(task_id, changes)
            return True

    def record_progress(
        self,
        task_id: str,
        *,
        lease_owner: str,
        progress: Progress,
        draft: StrategyDraft | None,
        now: datetime,
    ) -> bool:
        with self._lock:
            self.calls.append("record_progress")
            self.progress_written.append(progress)
            self.failures.maybe_raise("record_progress")
            changes: dict[str, Any] = {"progress": progress.model_dump(), "updated_at": now}
            if draft is not None:
                changes["draft"] = draft.model_dump(exclude_none=True)
            return self._if_owned(task_id, lease_owner, changes)

    def cancel(self, task_id: str, now: datetime) -> None:
        """As shared.tasks.cancel_task: a live attempt keeps its lease until it stops."""
        changes = terminal_fields(TaskStatus.CANCELLED, now)
        if held_by_an_attempt(self.get(task_id), now):
            changes["lease_expires_at"] = self.docs[task_id]["lease_expires_at"]
        self._apply(task_id, changes)

    # -- recovery (shared.recovery.RecoveryStore) -------------------------------------

    def get_task(self, task_id: str) -> TaskRecord | None:
        data = self.docs.get(task_id)
        return TaskRecord.model_validate(data) if data else None

    def fail_if_abandoned(self, task_id: str, *, now: datetime, error: TaskError) -> ClaimOutcome:
        with self._lock:
            self.calls.append("fail_if_abandoned")
            outcome = decide_abandoned(self.get_task(task_id), now)
            if outcome is ClaimOutcome.EXHAUSTED:
                self._apply(task_id, terminal_fields(TaskStatus.FAILED, now, error=error))
            return outcome

    def stale_task_ids(self, *, now: datetime, pending_before: datetime, limit: int) -> list[str]:
        """What the three Firestore queries of ``shared.tasks.stale_task_ids`` find."""
        stale = []
        for task_id, data in self.docs.items():
            lease = data.get("lease_expires_at")
            leased = data["status"] in (TaskStatus.PROCESSING.value, TaskStatus.CANCELLED.value)
            expired = leased and lease and lease < now
            forgotten = (
                data["status"] == TaskStatus.PENDING.value and data["created_at"] < pending_before
            )
            if expired or forgotten:
                stale.append(task_id)
        return stale[:limit]


class FakeQueue:
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish_task(self, task_id: str) -> str:
        self.published.append(task_id)
        return f"message-{len(self.published)}"


class FakePreviewStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.failures = Failures()

    def store_preview(self, task_id: str, data: bytes, mime_type: str) -> str:
        self.failures.maybe_raise("store_preview")
        uri = f"gs://fake-bucket/results/{task_id}/preview"
        self.objects[uri] = (data, mime_type)
        return uri


class FakeDeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[str, str]] = []
        self.failures = Failures()

    def dead_letter(self, task_id: str, *, reason: str) -> str:
        self.failures.maybe_raise("dead_letter")
        self.letters.append((task_id, reason))
        return f"message-{len(self.letters)}"


@dataclass
class FakeFile:
    uri: str

    def part(self) -> object:
        return {"file_uri": self.uri}


def sample_strategy(name: str = "Fake strategy") -> MarketingStrategy:
    return MarketingStrategy(
        strategy_name=name,
        target_audience="Testers",
        required_budget=1000,
        steps=[StrategyStep(step_number=1, description="Test it")],
        visual_brief="A test pattern",
    )


@dataclass
class FakeGemini:
    """Answers at once; ``failures`` makes a call raise (``GeminiError`` or anything)."""

    failures: Failures = field(default_factory=Failures)
    strategy_calls: int = 0
    image_calls: int = 0
    uploads: int = 0
    deadlines: list[float | None] = field(default_factory=list)
    text_pieces: list[str] = field(default_factory=lambda: ['{"strategy_name": "Fa', 'ke"}'])
    # Runs inside the strategy call, after its text: what happens while it streams.
    before_strategy: Callable[[], None] | None = None

    @contextmanager
    def pdf_for_gemini(self, pdf: PdfRef, *, task_id: str, deadline: float) -> Iterator[FakeFile]:
        self.failures.maybe_raise("pdf_for_gemini")
        self.uploads += 1
        yield FakeFile(uri=f"files/{pdf.sha256[:8]}")

    def generate_strategy(
        self,
        request: TaskRequest,
        *,
        file_parts: list[Any] | None = None,
        on_progress: ProgressCallback | None = None,
        on_text: Any = None,
        deadline: float | None = None,
    ) -> StrategyAnswer:
        self.strategy_calls += 1
        self.deadlines.append(deadline)
        for piece in self.text_pieces:
            if on_text is not None:
                on_text(piece)
            if on_progress is not None:
                on_progress("writing_strategy", "Writing the strategy", 40)
        if self.before_strategy is not None:
            self.before_strategy()
        self.failures.maybe_raise("generate_strategy")
        return StrategyAnswer(
            strategy=sample_strategy(),
            usage=Usage(prompt_tokens=10, output_tokens=30, thoughts_tokens=20, total_tokens=40),
            model="fake-text-model",
        )

    def generate_image(self, strategy: MarketingStrategy) -> ImageAnswer:
        self.image_calls += 1
        self.failures.maybe_raise("generate_image")
        return ImageAnswer(
            data=b"\xff\xd8fake-jpeg",
            mime_type="image/jpeg",
            width=16,
            height=9,
            usage=Usage(prompt_tokens=5, output_tokens=7, thoughts_tokens=2, total_tokens=12),
            model="fake-image-model",
        )


def gemini_error(code: str = "gemini_unavailable", *, retryable: bool = True) -> GeminiError:
    return GeminiError(code, f"fake {code}", retryable=retryable)


# -- the accept path (shared.submission) -----------------------------------------------


class FakeTaskWriter:
    """Tasks as the accept path writes them; ``lose_answer_of_create`` makes a create
    commit and then raise, as a lost answer (a timeout) does."""

    def __init__(self) -> None:
        self.docs: dict[str, TaskRecord] = {}
        self.failures = Failures()
        self.lose_answer_of_create = False
        self.discarded: list[str] = []

    def create_task(self, task: TaskRecord) -> None:
        self.failures.maybe_raise("create_task")
        self.docs[task.task_id] = task
        if self.lose_answer_of_create:
            raise TimeoutError("the commit's answer was lost")

    def discard_new_task(self, task: TaskRecord) -> bool:
        self.discarded.append(task.task_id)
        return self.docs.pop(task.task_id, None) is not None

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self.docs.get(task_id)


class FakePdfStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failures = Failures()

    def store_pdf(self, task_id: str, data: bytes, filename: str | None) -> PdfRef:
        """Where ``shared.uploads.store_pdf`` writes it: the settings' bucket."""
        from shared.settings import get_settings
        from shared.uploads import source_object_name

        self.failures.maybe_raise("store_pdf")
        uri = f"gs://{get_settings().bucket_name}/{source_object_name(task_id)}"
        self.objects[uri] = data
        return PdfRef(gcs_uri=uri, size_bytes=len(data), sha256="0" * 64, filename=filename)

    def delete_object(self, gcs_uri: str) -> None:
        self.objects.pop(gcs_uri, None)


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.failures = Failures()

    def publish_task(self, task_id: str) -> str:
        self.failures.maybe_raise("publish_task")
        self.published.append(task_id)
        return f"message-{len(self.published)}"


class FakeKeys:
    """Idempotency reservations: (uid, key) -> [task_id, fingerprint, state]."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], list[str]] = {}

    def reserve(
        self, uid: str, key: str, request_fingerprint: str, task_id: str, now: datetime
    ) -> Reservation:
        first = self.held.get((uid, key))
        if first is None:
            self.held[(uid, key)] = [task_id, request_fingerprint, PENDING]
            return Reservation(task_id=task_id, replay=False)
        return Reservation(task_id=first[0], replay=True)

    def holder(self, uid: str, key: str) -> tuple[str, str] | None:
        held = self.held.get((uid, key))
        return (held[0], held[2]) if held else None

    def accept(self, uid: str, key: str, task_id: str, now: datetime) -> None:
        held = self.held.get((uid, key))
        if held and held[0] == task_id:
            held[2] = ACCEPTED

    def release(self, uid: str, key: str) -> None:
        self.held.pop((uid, key), None)


class FakeSessions:
    """Upload sessions whose objects the user uploaded (they are not the request's)."""

    def __init__(self, store: FakePdfStore) -> None:
        self.store = store
        self.used: list[str] = []  # each use reads (and may hash) the object

    def open(self, uid: str, upload_id: str, data: bytes) -> str:
        uri = f"gs://fake-bucket/uploads/{uid}/{upload_id}.pdf"
        self.store.objects[uri] = data
        return uri

    def use_upload(self, uid: str, upload_id: str) -> PdfRef:
        self.used.append(upload_id)
        uri = f"gs://fake-bucket/uploads/{uid}/{upload_id}.pdf"
        data = self.store.objects[uri]
        return PdfRef(gcs_uri=uri, size_bytes=len(data), sha256="1" * 64, filename="big.pdf")


class FakeCaps:
    """The user's caps as the accept path asks them before a PDF's costly work;
    ``refusal`` set: the user is at a cap."""

    def __init__(self) -> None:
        self.refusal: RateLimited | None = None
        self.asked: list[tuple[str, bool, int]] = []
        # Set: a project-wide count refused a task moments ago (shared.quotas' memory).
        self.project_refusal: RateLimited | None = None
        self.project_asked: list[int] = []

    def check_user_room(self, uid: str, now: datetime, *, anonymous: bool, reserved: int) -> None:
        self.asked.append((uid, anonymous, reserved))
        if self.refusal is not None:
            raise self.refusal

    def check_project_room(self, now: datetime, *, reserved: int) -> None:
        self.project_asked.append(reserved)
        if self.project_refusal is not None:
            raise self.project_refusal
