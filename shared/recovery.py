"""What keeps a task from staying unfinished forever (SPEC §4).

- ``handle_dead_letter``: a message Pub/Sub gave up on fails its task, unless a
  live lease may still finish it.
- ``sweep``: run on a schedule; republishes tasks whose lease expired or that
  waited too long in PENDING (their message may be gone), and fails those that
  used up their attempts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared.log import get_logger
from shared.models import TaskError, TaskRecord, TaskStatus
from shared.queue import Delivery
from shared.settings import get_settings
from shared.tasks import WAITING_TO_RETRY, ClaimOutcome, attempts_exhausted

log = get_logger("recovery")


class LeaseStillLive(Exception):
    """The task may still finish under its lease: try the dead letter again later."""


class RecoveryStore(Protocol):
    def fail_if_abandoned(
        self, task_id: str, *, now: datetime, error: TaskError
    ) -> ClaimOutcome: ...

    def stale_task_ids(
        self, *, now: datetime, pending_before: datetime, limit: int
    ) -> list[str]: ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...

    def release_stopped(self, task_id: str, *, lease_owner: str | None) -> bool: ...


class TaskQueue(Protocol):
    def publish_task(self, task_id: str) -> str: ...


def handle_dead_letter(delivery: Delivery, *, store: RecoveryStore | None = None) -> None:
    store = store or _tasks()
    task_id = delivery.message.task_id
    error = TaskError(
        code="delivery_failed",
        message="The task could not be processed after repeated deliveries; submit it again.",
        retryable=True,
    )
    outcome = store.fail_if_abandoned(task_id, now=datetime.now(UTC), error=error)
    if outcome is ClaimOutcome.LEASED:
        raise LeaseStillLive(f"task {task_id} is still leased")
    log.warning(f"dead letter handled: {outcome.value}", extra={"task_id": task_id})


@dataclass
class SweepReport:
    republished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    # Cancelled tasks whose dead attempt's in-flight places came back.
    released: list[str] = field(default_factory=list)


def sweep(
    now: datetime | None = None,
    *,
    store: RecoveryStore | None = None,
    task_queue: TaskQueue | None = None,
) -> SweepReport:
    settings = get_settings()
    store = store or _tasks()
    task_queue = task_queue or _queue()
    now = now or datetime.now(UTC)
    pending_before = now - timedelta(seconds=settings.pending_timeout_s)
    report = SweepReport()
    for task_id in store.stale_task_ids(now=now, pending_before=pending_before, limit=500):
        task = store.get_task(task_id)
        if task is None:
            continue
        if task.status is TaskStatus.CANCELLED:
            if store.release_stopped(task_id, lease_owner=task.lease_owner):
                report.released.append(task_id)
            continue
        if _out_of_attempts(task):
            error = attempts_exhausted(task.attempts)
            if store.fail_if_abandoned(task_id, now=now, error=error) is ClaimOutcome.EXHAUSTED:
                report.failed.append(task_id)
            continue
        if _waiting_for_redelivery(task, now):
            report.waiting.append(task_id)
            continue
        task_queue.publish_task(task_id)
        report.republished.append(task_id)
    log.info(
        f"sweep: {len(report.republished)} republished, {len(report.failed)} failed, "
        f"{len(report.waiting)} waiting for Pub/Sub's backoff",
        extra={"outcome": "swept"},
    )
    return report


def _out_of_attempts(task: TaskRecord) -> bool:
    return task.attempts >= get_settings().max_task_attempts


def _waiting_for_redelivery(task: TaskRecord, now: datetime) -> bool:
    """A task an attempt gave back on purpose (``waiting_to_retry``) has its message
    coming back after Pub/Sub's backoff: republishing would skip that backoff. Only
    when the longest backoff has passed twice over is the message taken for lost."""
    if task.progress is None or task.progress.stage != WAITING_TO_RETRY:
        return False
    patience = timedelta(seconds=2 * get_settings().retry_max_backoff_s)
    return task.updated_at > now - patience


def _tasks() -> RecoveryStore:
    from shared import tasks

    return tasks


def _queue() -> TaskQueue:
    from shared import queue

    return queue
