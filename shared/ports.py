"""What the services need from the world, as small typed interfaces.

The real adapters are the modules ``shared.tasks`` (Firestore), ``shared.uploads``
(Cloud Storage), ``shared.queue`` (Pub/Sub), ``shared.idempotency``,
``shared.upload_sessions`` and ``shared.gemini_port`` (Gemini and its File API):
a module satisfies a Protocol by its functions. The unit tests hand the worker and
the accept path in-memory fakes of each (``tests/unit/fakes.py``) to drive every
failure path without the emulators.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.models import (
    MarketingStrategy,
    PdfRef,
    Progress,
    StrategyDraft,
    TaskError,
    TaskRecord,
    TaskRequest,
    TaskResult,
)

if TYPE_CHECKING:
    from shared.gemini import ImageAnswer, ProgressCallback, StrategyAnswer
    from shared.idempotency import Reservation
    from shared.tasks import Claim


class TaskStore(Protocol):
    def claim_task(self, task_id: str, *, lease_owner: str, now: datetime) -> Claim: ...

    def holds_lease(self, task_id: str, lease_owner: str) -> bool: ...

    def save_checkpoint(
        self, task_id: str, *, lease_owner: str, now: datetime, checkpoint: TaskResult
    ) -> bool: ...

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
    ) -> bool: ...

    def release_stopped(self, task_id: str, *, lease_owner: str | None) -> bool: ...

    def watch_task(
        self, task_id: str, lease_owner: str, on_lost: Callable[[], None]
    ) -> Callable[[], None]: ...

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
    ) -> bool: ...

    def record_progress(
        self,
        task_id: str,
        *,
        lease_owner: str,
        progress: Progress,
        draft: StrategyDraft | None,
        now: datetime,
    ) -> bool: ...


class PreviewStore(Protocol):
    def store_preview(self, task_id: str, data: bytes, mime_type: str) -> str: ...


class DeadLetters(Protocol):
    def dead_letter(self, task_id: str, *, reason: str) -> str: ...


class PdfFile(Protocol):
    """A PDF as Gemini reads it: a File API file, or on Vertex AI its Cloud Storage object."""

    def part(self) -> object: ...


class Gemini(Protocol):
    def pdf_for_gemini(
        self, pdf: PdfRef, *, task_id: str, deadline: float
    ) -> AbstractContextManager[PdfFile]: ...

    def generate_strategy(
        self,
        request: TaskRequest,
        *,
        file_parts: list[Any] | None = None,
        on_progress: ProgressCallback | None = None,
        on_text: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ) -> StrategyAnswer: ...

    def generate_image(self, strategy: MarketingStrategy) -> ImageAnswer: ...


# -- the accept path (shared.submission) ------------------------------------------------


class TaskWriter(Protocol):
    def create_task(self, task: TaskRecord) -> None: ...

    def discard_new_task(self, task: TaskRecord) -> bool: ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...


class PdfStore(Protocol):
    def store_pdf(self, task_id: str, data: bytes, filename: str | None) -> PdfRef: ...

    def delete_object(self, gcs_uri: str) -> None: ...


class TaskPublisher(Protocol):
    def publish_task(self, task_id: str) -> str: ...


class IdempotencyKeys(Protocol):
    def reserve(
        self, uid: str, key: str, request_fingerprint: str, task_id: str, now: datetime
    ) -> Reservation: ...

    def holder(self, uid: str, key: str) -> tuple[str, str] | None: ...

    def accept(self, uid: str, key: str, task_id: str, now: datetime) -> None: ...

    def release(self, uid: str, key: str) -> None: ...


class UserCaps(Protocol):
    def check_user_room(
        self, uid: str, now: datetime, *, anonymous: bool, reserved: int
    ) -> None: ...

    def check_project_room(self, now: datetime, *, reserved: int) -> None: ...


class UploadSessions(Protocol):
    def use_upload(self, uid: str, upload_id: str) -> PdfRef: ...
