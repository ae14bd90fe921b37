"""The worker (``shared.processing.Worker``) against in-memory fakes of its ports.

Every failure after the strategy call must leave the strategy paid for once: the
work is checkpointed and a takeover resumes at the first step not done.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core.exceptions import Aborted, RetryError, ServiceUnavailable

from shared import abortable, costs, gemini
from shared.models import PdfRef, TaskMessage, TaskRecord, TaskRequest, TaskStatus, Usage
from shared.processing import RedeliverLater, Worker
from shared.queue import Delivery
from shared.settings import get_settings
from tests.unit.fakes import (
    FakeDeadLetters,
    FakeGemini,
    FakePreviewStore,
    FakeTaskStore,
    gemini_error,
)

TASK_ID = "task-0001"


class World:
    def __init__(self, *, image: bool = True, pdf: bool = False) -> None:
        self.store = FakeTaskStore()
        self.previews = FakePreviewStore()
        self.dead_letters = FakeDeadLetters()
        self.gemini = FakeGemini()
        self.worker = Worker(
            store=self.store,
            previews=self.previews,
            dead_letters=self.dead_letters,
            gemini=self.gemini,
        )
        now = datetime.now(UTC)
        request = TaskRequest(brief="Test brief", image=image)
        if pdf:
            request.pdf = PdfRef(
                gcs_uri="gs://b/uploads/x/source.pdf", size_bytes=10, sha256="ab" * 32
            )
        self.store.put(
            TaskRecord(
                task_id=TASK_ID,
                uid="user-1",
                status=TaskStatus.PENDING,
                created_at=now,
                updated_at=now,
                request=request,
            )
        )

    def deliver(self) -> None:
        delivery = Delivery(
            message=TaskMessage(task_id=TASK_ID),
            message_id="m1",
            publish_time=datetime.now(UTC),
            delivery_attempt=None,
        )
        self.worker.handle_delivery(delivery)

    def deliver_until_done(self, limit: int = 10) -> int:
        """Deliver as Pub/Sub would: again after every refusal. Returns the deliveries."""
        for count in range(1, limit + 1):
            try:
                self.deliver()
            except (RedeliverLater, Exception):
                self.expire_lease()
                continue
            if self.task.status.is_terminal:
                return count
        raise AssertionError(f"not finished after {limit} deliveries: {self.task.status}")

    def expire_lease(self) -> None:
        data = self.store.docs[TASK_ID]
        if data.get("lease_expires_at"):
            data["lease_expires_at"] = datetime.now(UTC) - timedelta(seconds=1)

    @property
    def task(self) -> TaskRecord:
        return self.store.get(TASK_ID)


def test_a_task_is_completed_with_one_call_of_each_kind() -> None:
    world = World()
    world.deliver()
    task = world.task
    assert task.status is TaskStatus.COMPLETED
    assert task.result is not None and task.result.image is not None
    assert (world.gemini.strategy_calls, world.gemini.image_calls) == (1, 1)
    assert task.result.usage.total_tokens == 40 + 12
    assert task.checkpoint is None and task.draft is None


def test_storage_failing_on_the_preview_completes_with_an_image_error() -> None:
    world = World()
    world.previews.failures.add("store_preview", ServiceUnavailable("storage down"))
    world.deliver()
    task = world.task
    assert task.status is TaskStatus.COMPLETED
    assert task.result is not None and task.result.image is None
    assert task.result.image_error is not None
    assert task.result.image_error.code == "preview_not_stored"
    assert (world.gemini.strategy_calls, world.gemini.image_calls) == (1, 1)
    assert task.result.usage.total_tokens == 40 + 12  # the image was paid all the same


@pytest.mark.parametrize(
    "failure",
    [
        RetryError("deadline", cause=TimeoutError()),
        Aborted("transaction lock timeout"),
        ServiceUnavailable("firestore down"),
    ],
    ids=["retry-error", "aborted", "unavailable"],
)
def test_an_outcome_write_failing_once_is_resumed_without_paying_again(
    failure: Exception,
) -> None:
    world = World()
    world.store.failures.add("finish_task", failure)
    with pytest.raises(RedeliverLater):
        world.deliver()
    assert world.task.status is TaskStatus.PROCESSING
    assert world.task.checkpoint is not None and world.task.checkpoint.image is not None
    world.expire_lease()  # released already; the redelivery takes over
    world.deliver()
    task = world.task
    assert task.status is TaskStatus.COMPLETED
    assert (world.gemini.strategy_calls, world.gemini.image_calls) == (1, 1)
    assert task.attempts == 2


def test_the_writes_of_a_task_are_the_ones_that_earn_their_cost() -> None:
    """Issue 17: without an image the outcome is the write after the strategy (no
    checkpoint, no "saving" stage); with one, the strategy is checkpointed before the
    image call, and its write proves the lease (no extra read)."""
    plain = World(image=False)
    plain.deliver()
    assert plain.task.status is TaskStatus.COMPLETED
    assert "save_checkpoint" not in plain.store.calls
    assert "holds_lease" not in plain.store.calls
    stages = [p.stage for p in plain.store.progress_written]
    assert "saving" not in stages
    with_image = World(image=True)
    with_image.deliver()
    assert with_image.store.calls.count("save_checkpoint") == 1
    assert "holds_lease" not in with_image.store.calls
    assert with_image.task.status is TaskStatus.COMPLETED


@pytest.mark.parametrize("image", [False, True], ids=["strategy-only", "with-image"])
def test_a_failed_outcome_write_gives_the_result_back_with_the_lease(image: bool) -> None:
    world = World(image=image)
    world.store.failures.add("finish_task", ServiceUnavailable("firestore down"))
    with pytest.raises(RedeliverLater):
        world.deliver()
    checkpoint = world.task.checkpoint
    assert checkpoint is not None and (checkpoint.image is not None) is image
    world.expire_lease()
    world.deliver()
    assert world.task.status is TaskStatus.COMPLETED
    assert (world.gemini.strategy_calls, world.gemini.image_calls) == (1, int(image))


def test_a_crash_while_drawing_resumes_at_the_image() -> None:
    world = World()
    world.gemini.failures.add("generate_image", RuntimeError("worker bug"))
    with pytest.raises(RuntimeError):
        world.deliver()
    assert world.task.status is TaskStatus.PROCESSING
    assert world.task.lease_expires_at is not None
    assert world.task.lease_expires_at <= datetime.now(UTC)  # given back at once
    world.deliver()
    assert world.task.status is TaskStatus.COMPLETED
    assert (world.gemini.strategy_calls, world.gemini.image_calls) == (1, 2)


def test_a_lost_checkpoint_does_not_stop_the_attempt() -> None:
    world = World()
    world.store.failures.add("save_checkpoint", ServiceUnavailable("down"), times=2)
    world.deliver()
    assert world.task.status is TaskStatus.COMPLETED
    assert world.gemini.strategy_calls == 1


def test_progress_writes_failing_never_cost_the_call() -> None:
    world = World()
    world.store.failures.add(
        "record_progress", RetryError("slow write", cause=TimeoutError()), times=50
    )
    world.deliver()
    assert world.task.status is TaskStatus.COMPLETED
    assert world.gemini.strategy_calls == 1


def test_a_task_cancelled_while_written_gets_no_image_and_no_late_progress() -> None:
    world = World()
    original = world.gemini.generate_strategy

    def cancel_midway(*args: object, **kwargs: object) -> object:
        world.store.cancel(TASK_ID, datetime.now(UTC))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    world.gemini.generate_strategy = cancel_midway  # type: ignore[method-assign]
    world.deliver()
    task = world.task
    assert task.status is TaskStatus.CANCELLED
    assert world.gemini.image_calls == 0
    # Nothing the attempt wrote after the cancel: the cancel's own progress stands.
    assert task.progress is not None and task.progress.stage == "done"
    assert task.draft is None and task.result is None


def test_the_strategy_is_asked_again_once_when_unusable_then_fails() -> None:
    world = World(image=False)
    unusable = gemini_error("gemini_schema_mismatch")
    unusable.once = True
    world.gemini.failures.add("generate_strategy", unusable, times=5)
    deliveries = world.deliver_until_done()
    task = world.task
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.code == "gemini_schema_mismatch"
    assert task.error.retryable is False
    assert (deliveries, world.gemini.strategy_calls) == (2, 2)
    assert world.dead_letters.letters == []  # nothing for operators to retry


def test_gemini_failing_forever_fails_retryable_after_the_attempts_and_dead_letters() -> None:
    world = World(image=False)
    world.gemini.failures.add("generate_strategy", gemini_error(), times=50)
    world.deliver_until_done()
    task = world.task
    attempts = get_settings().max_task_attempts
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.retryable is True
    assert task.attempts == attempts == world.gemini.strategy_calls
    assert world.dead_letters.letters == [(TASK_ID, "gemini_unavailable")]


def test_the_attempt_has_one_deadline_inside_its_lease() -> None:
    world = World(pdf=True)
    before = time.monotonic()
    world.deliver()
    (deadline,) = world.gemini.deadlines
    assert deadline is not None
    settings = get_settings()
    assert before < deadline <= before + settings.lease_seconds + 1
    assert deadline >= before + settings.attempt_worst_case_s() - 1


def test_a_busy_shared_pdf_ends_the_attempt_without_a_call() -> None:
    world = World(pdf=True)
    world.gemini.failures.add("pdf_for_gemini", gemini_error("pdf_busy"))
    with pytest.raises(RedeliverLater):
        world.deliver()
    assert world.gemini.strategy_calls == 0
    assert world.task.attempt_errors == ["pdf_busy"]
    world.deliver()
    assert world.task.status is TaskStatus.COMPLETED
    assert world.gemini.uploads == 1 and world.gemini.strategy_calls == 1


def test_a_duplicate_delivery_during_the_attempt_is_refused() -> None:
    world = World()
    original = world.gemini.generate_strategy
    answers: list[str] = []

    def duplicate_arrives(*args: object, **kwargs: object) -> object:
        try:
            world.deliver()
            answers.append("acknowledged")
        except RedeliverLater:
            answers.append("redeliver")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    world.gemini.generate_strategy = duplicate_arrives  # type: ignore[method-assign]
    world.deliver()
    assert answers == ["redeliver"]
    assert world.task.status is TaskStatus.COMPLETED
    world.deliver()  # after the end: acknowledged without work
    assert world.gemini.strategy_calls == 1


# -- what a task cost, and what its budget hold is settled at (ADR 0010) ----------------


def test_a_completed_task_records_its_cost_and_settles_its_hold_at_it() -> None:
    world = World()
    world.deliver()
    task = world.task
    assert task.result is not None and task.result.cost is not None
    strategy = Usage(prompt_tokens=10, output_tokens=30, thoughts_tokens=20, total_tokens=40)
    image = Usage(prompt_tokens=5, output_tokens=7, thoughts_tokens=2, total_tokens=12)
    expected = costs.strategy_micros(strategy, grounded=False) + costs.image_micros(image, images=1)
    assert costs.micros_of(task.result.cost) == expected > 0
    assert world.store.settled[TASK_ID] == expected


def test_an_unusable_paid_answer_is_counted_in_what_the_task_spent() -> None:
    world = World(image=False)
    unusable = gemini_error("gemini_schema_mismatch")
    unusable.once = True
    unusable.usage = Usage(prompt_tokens=1_000, output_tokens=2_000)
    world.gemini.failures.add("generate_strategy", unusable)
    world.deliver_until_done()
    task = world.task
    assert task.status is TaskStatus.COMPLETED and task.result is not None
    paid_twice = costs.strategy_micros(unusable.usage, grounded=False) + costs.micros_of(
        task.result.cost
    )
    assert world.store.settled[TASK_ID] == paid_twice


def test_a_task_failing_before_any_answer_gives_its_whole_hold_back() -> None:
    world = World(image=False)
    world.gemini.failures.add("generate_strategy", gemini_error(), times=50)
    world.deliver_until_done()
    assert world.task.status is TaskStatus.FAILED
    assert world.store.settled[TASK_ID] == 0


def test_the_attempt_watches_its_task_and_a_stopped_call_writes_nothing() -> None:
    """A cancel while the strategy streams: the watch stops the call (shared/abortable.py),
    and the attempt neither retries nor writes over the cancel."""
    world = World(image=False)
    stopped = gemini_error(gemini.STOPPED, retryable=False)

    def cancel_while_streaming() -> None:
        world.store.watchers[TASK_ID]()  # the task's watch: no longer ours
        stopper = abortable.current.get()
        assert stopper is not None and stopper.stopped.is_set()
        raise stopped

    world.gemini.before_strategy = cancel_while_streaming
    world.deliver()
    assert world.store.calls.count("release_lease") == 0
    assert "finish_task" not in world.store.calls
    assert world.store.watchers == {}  # the watch ended with the attempt
    assert world.dead_letters.letters == []
    # Stopped: the cancel's held places are given back by the attempt itself.
    assert world.store.calls.count("release_stopped") == 1


def test_a_task_cancelled_while_it_streams_keeps_its_places_until_the_attempt_stops() -> None:
    world = World(image=False)

    def cancelled_by_the_user() -> None:
        world.store.cancel(TASK_ID, datetime.now(UTC))
        assert world.task.lease_expires_at is not None  # still held by this attempt

    world.gemini.before_strategy = cancelled_by_the_user
    world.deliver()
    task = world.task
    assert task.status is TaskStatus.CANCELLED
    assert task.lease_expires_at is None  # released once the attempt ended
    assert "finish_task" in world.store.calls  # its outcome was refused, not written
    assert task.result is None
