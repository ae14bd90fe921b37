"""The dead-letter handler and the sweeper (``shared.recovery``) against fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.models import Progress, TaskMessage, TaskRecord, TaskRequest, TaskStatus
from shared.queue import Delivery
from shared.recovery import LeaseStillLive, handle_dead_letter, sweep
from shared.settings import get_settings
from shared.tasks import WAITING_TO_RETRY
from tests.unit.fakes import FakeQueue, FakeTaskStore

NOW = datetime.now(UTC)  # the dead-letter handler reads the clock itself


def task(
    task_id: str,
    status: TaskStatus,
    *,
    age_s: float = 0,
    lease_in_s: float | None = None,
    attempts: int = 1,
    stage: str = "writing_strategy",
    updated_s_ago: float = 0,
) -> TaskRecord:
    return TaskRecord(
        task_id=task_id,
        uid="u",
        status=status,
        created_at=NOW - timedelta(seconds=age_s),
        updated_at=NOW - timedelta(seconds=updated_s_ago),
        request=TaskRequest(brief="b"),
        attempts=attempts,
        progress=Progress(stage=stage),
        lease_expires_at=None if lease_in_s is None else NOW + timedelta(seconds=lease_in_s),
    )


@pytest.fixture
def store() -> FakeTaskStore:
    return FakeTaskStore()


def test_the_sweeper_leaves_a_task_waiting_for_pubsub_backoff_alone(store: FakeTaskStore) -> None:
    # Given back by its attempt a moment ago: its message comes back after the backoff.
    store.put(task("waiting", TaskStatus.PROCESSING, lease_in_s=-1, stage=WAITING_TO_RETRY))
    queue = FakeQueue()
    report = sweep(NOW, store=store, task_queue=queue)
    assert queue.published == [] and report.waiting == ["waiting"]


def test_a_waiting_task_whose_message_is_overdue_is_republished(store: FakeTaskStore) -> None:
    overdue = 2 * get_settings().retry_max_backoff_s + 1
    store.put(
        task(
            "lost",
            TaskStatus.PROCESSING,
            lease_in_s=-overdue,
            stage=WAITING_TO_RETRY,
            updated_s_ago=overdue,
        )
    )
    queue = FakeQueue()
    assert sweep(NOW, store=store, task_queue=queue).republished == ["lost"]
    assert queue.published == ["lost"]


def test_the_sweeper_republishes_lost_work_and_fails_exhausted_tasks(
    store: FakeTaskStore,
) -> None:
    settings = get_settings()
    store.put(task("crashed", TaskStatus.PROCESSING, lease_in_s=-5))
    store.put(task("forgotten", TaskStatus.PENDING, age_s=settings.pending_timeout_s + 1))
    store.put(task("young", TaskStatus.PENDING, age_s=1))
    store.put(task("working", TaskStatus.PROCESSING, lease_in_s=30))
    store.put(
        task(
            "worn-out",
            TaskStatus.PROCESSING,
            lease_in_s=-5,
            attempts=settings.max_task_attempts,
        )
    )
    queue = FakeQueue()
    report = sweep(NOW, store=store, task_queue=queue)
    assert sorted(report.republished) == ["crashed", "forgotten"]
    assert report.failed == ["worn-out"]
    failed = store.get("worn-out")
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "attempts_exhausted"
    assert sorted(queue.published) == ["crashed", "forgotten"]


def delivery(task_id: str) -> Delivery:
    return Delivery(
        message=TaskMessage(task_id=task_id), message_id="m", publish_time=None, delivery_attempt=5
    )


def test_a_dead_letter_fails_an_abandoned_task(store: FakeTaskStore) -> None:
    store.put(task("t", TaskStatus.PROCESSING, lease_in_s=-60))
    handle_dead_letter(delivery("t"), store=store)
    failed = store.get("t")
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "delivery_failed"
    assert failed.error.retryable is True


def test_a_dead_letter_leaves_a_live_lease_and_a_finished_task(store: FakeTaskStore) -> None:
    store.put(task("live", TaskStatus.PROCESSING, lease_in_s=3600))
    with pytest.raises(LeaseStillLive):
        handle_dead_letter(delivery("live"), store=store)
    assert store.get("live").status is TaskStatus.PROCESSING
    store.put(task("done", TaskStatus.COMPLETED))
    handle_dead_letter(delivery("done"), store=store)
    assert store.get("done").status is TaskStatus.COMPLETED


def test_a_cancelled_task_whose_attempt_died_gets_its_places_back_when_its_lease_ends(
    store: FakeTaskStore,
) -> None:
    dead = task("dead", TaskStatus.CANCELLED, lease_in_s=-5)
    dead.lease_owner = "gone"
    alive = task("alive", TaskStatus.CANCELLED, lease_in_s=30)
    alive.lease_owner = "streaming"
    store.put(dead)
    store.put(alive)
    report = sweep(NOW, store=store, task_queue=FakeQueue())
    assert report.released == ["dead"]
    assert store.get("dead").lease_expires_at is None
    assert store.get("alive").lease_expires_at is not None  # its attempt stops it
