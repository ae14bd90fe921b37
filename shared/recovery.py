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

from shared import queue, tasks
from shared.log import get_logger
from shared.models import TaskError, TaskRecord
from shared.queue import Delivery
from shared.settings import get_settings
from shared.tasks import ClaimOutcome

log = get_logger("recovery")


class LeaseStillLive(Exception):
    """The task may still finish under its lease: try the dead letter again later."""


def handle_dead_letter(delivery: Delivery) -> None:
    task_id = delivery.message.task_id
    error = TaskError(
        code="delivery_failed",
        message="The task could not be processed after repeated deliveries; submit it again.",
        retryable=True,
    )
    outcome = tasks.fail_if_abandoned(task_id, now=datetime.now(UTC), error=error)
    if outcome is ClaimOutcome.LEASED:
        raise LeaseStillLive(f"task {task_id} is still leased")
    log.warning(f"dead letter handled: {outcome.value}", extra={"task_id": task_id})


@dataclass
class SweepReport:
    republished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def sweep(now: datetime | None = None) -> SweepReport:
    settings = get_settings()
    now = now or datetime.now(UTC)
    pending_before = now - timedelta(seconds=settings.pending_timeout_s)
    report = SweepReport()
    for task_id in tasks.stale_task_ids(now=now, pending_before=pending_before, limit=500):
        task = tasks.get_task(task_id)
        if task is None:
            continue
        if _out_of_attempts(task):
            error = tasks.attempts_exhausted(task.attempts)
            if tasks.fail_if_abandoned(task_id, now=now, error=error) is ClaimOutcome.EXHAUSTED:
                report.failed.append(task_id)
            continue
        queue.publish_task(task_id)
        report.republished.append(task_id)
    log.info(
        f"sweep: {len(report.republished)} republished, {len(report.failed)} failed",
        extra={"outcome": "swept"},
    )
    return report


def _out_of_attempts(task: TaskRecord) -> bool:
    return task.attempts >= get_settings().max_task_attempts
