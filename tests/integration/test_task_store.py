"""The task store's writes under contention (issue 17), against the Firestore emulator.

The real adapter (``shared.tasks``) runs in this process on collections of its own, so
that the stack's worker and sweeper never see these tasks.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared import quotas, tasks
from shared.models import (
    MarketingStrategy,
    Progress,
    StrategyStep,
    TaskRecord,
    TaskRequest,
    TaskResult,
    TaskStatus,
    Usage,
)
from shared.settings import get_settings
from shared.tasks import ClaimOutcome

pytestmark = [pytest.mark.integration]

RESULT = TaskResult(
    strategy=MarketingStrategy(
        strategy_name="Store test",
        target_audience="testers",
        required_budget=1.0,
        steps=[StrategyStep(step_number=1, description="The only step.")],
    ),
    model="test-model",
    usage=Usage(),
)


@pytest.fixture(autouse=True)
def own_collections(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    suffix = uuid.uuid4().hex[:12]
    monkeypatch.setenv("TASKS_COLLECTION", f"tasks_store_test_{suffix}")
    monkeypatch.setenv("QUOTA_COLLECTION", f"quota_store_test_{suffix}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def new_task() -> TaskRecord:
    now = datetime.now(UTC)
    task = TaskRecord(
        task_id=uuid.uuid4().hex,
        uid=f"user-{uuid.uuid4().hex[:8]}",
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        request=TaskRequest(brief="store test"),
    )
    tasks.create_task(task)
    return task


def test_twelve_claims_at_once_one_wins_the_rest_find_it_leased() -> None:
    task = new_task()
    start = threading.Barrier(12)

    def claim(_: int) -> tuple[ClaimOutcome, str]:
        owner = uuid.uuid4().hex
        start.wait()
        return tasks.claim_task(
            task.task_id, lease_owner=owner, now=datetime.now(UTC)
        ).outcome, owner

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(claim, range(12)))

    outcomes = Counter(outcome for outcome, _ in results)
    assert outcomes == {ClaimOutcome.CLAIMED: 1, ClaimOutcome.LEASED: 11}
    stored = tasks.get_task(task.task_id)
    assert stored is not None and stored.status is TaskStatus.PROCESSING
    assert stored.attempts == 1  # one claim was written, not twelve
    winner = next(owner for outcome, owner in results if outcome is ClaimOutcome.CLAIMED)
    assert stored.lease_owner == winner


def test_a_claim_after_a_cancel_finds_the_task_finished() -> None:
    task = new_task()
    tasks.cancel_task(task.task_id, uid=task.uid)
    claim = tasks.claim_task(task.task_id, lease_owner="late", now=datetime.now(UTC))
    assert claim.outcome is ClaimOutcome.FINISHED
    stored = tasks.get_task(task.task_id)
    assert stored is not None and stored.status is TaskStatus.CANCELLED and stored.attempts == 0


def test_a_claim_of_a_missing_task_writes_nothing() -> None:
    task_id = uuid.uuid4().hex
    claim = tasks.claim_task(task_id, lease_owner="x", now=datetime.now(UTC))
    assert claim.outcome is ClaimOutcome.MISSING
    assert tasks.get_task(task_id) is None


def test_an_attempt_writes_without_a_transaction_until_the_task_is_cancelled() -> None:
    task = new_task()
    owner = uuid.uuid4().hex
    now = datetime.now(UTC)
    assert tasks.claim_task(task.task_id, lease_owner=owner, now=now).outcome is (
        ClaimOutcome.CLAIMED
    )
    progress = Progress(stage="writing_strategy", message="Writing", percent=20)
    assert tasks.record_progress(
        task.task_id, lease_owner=owner, progress=progress, draft=None, now=now
    )
    tasks.cancel_task(task.task_id, uid=task.uid)
    # The attempt's next writes fail their precondition, read, and find it cancelled.
    assert not tasks.record_progress(
        task.task_id, lease_owner=owner, progress=progress, draft=None, now=now
    )
    assert not tasks.finish_task(task.task_id, lease_owner=owner, now=now, result=RESULT)
    stored = tasks.get_task(task.task_id)
    assert stored is not None and stored.status is TaskStatus.CANCELLED
    assert stored.result is None and stored.progress is not None
    assert stored.progress.stage == "done"


def test_an_attempt_that_ends_leaves_the_in_flight_counts_once() -> None:
    task = new_task()
    owner = uuid.uuid4().hex
    now = datetime.now(UTC)
    tasks.claim_task(task.task_id, lease_owner=owner, now=now)
    user = quotas.user_in_flight(task.uid)
    project = quotas.project_in_flight()
    shard = quotas.shard_of(task.task_id)

    def counts() -> tuple[int, int]:
        return (
            int(user.ref.get().get("count")),
            int(project.shard_ref(shard).get().get("count")),
        )

    assert counts() == (1, 1)
    assert tasks.finish_task(task.task_id, lease_owner=owner, now=now, result=RESULT)
    assert counts() == (0, 0)
    # A late duplicate outcome of the same attempt writes nothing, counts nothing.
    assert not tasks.finish_task(task.task_id, lease_owner=owner, now=now, result=RESULT)
    assert counts() == (0, 0)
    stored = tasks.get_task(task.task_id)
    assert stored is not None and stored.status is TaskStatus.COMPLETED


def test_the_attempt_hears_of_a_cancel_from_its_watch_and_not_of_its_own_writes() -> None:
    """The worker stops its Gemini call when its task is no longer its own: the watch
    (a realtime listener, no polling) says so once, for a cancel; its own progress
    writes say nothing."""
    task = new_task()
    now = datetime.now(UTC)
    assert tasks.claim_task(task.task_id, lease_owner="watcher", now=now).outcome is (
        ClaimOutcome.CLAIMED
    )
    lost = threading.Event()
    calls: list[int] = []

    def on_lost() -> None:
        calls.append(1)
        lost.set()

    stop = tasks.watch_task(task.task_id, "watcher", on_lost)
    try:
        progress = Progress(stage="writing_strategy", message="Writing", percent=40)
        tasks.record_progress(
            task.task_id, lease_owner="watcher", progress=progress, draft=None, now=now
        )
        assert not lost.wait(1.0), "its own progress write was taken for a loss"
        tasks.cancel_task(task.task_id, uid=task.uid)
        assert lost.wait(10), "the cancel never reached the watch"
    finally:
        stop()
    assert calls == [1]


def _user_in_flight(uid: str) -> int:
    return int((quotas.user_in_flight(uid).ref.get().to_dict() or {}).get("count", 0))


def test_a_cancel_frees_the_slot_when_the_attempt_has_stopped_not_before() -> None:
    """Cancel and resubmit must not run more Gemini streams than the in-flight cap: the
    attempt that streams keeps its places until it stops (issue 18)."""
    task = new_task()
    assert _user_in_flight(task.uid) == 1
    now = datetime.now(UTC)
    tasks.claim_task(task.task_id, lease_owner="streaming", now=now)
    cancelled = tasks.cancel_task(task.task_id, uid=task.uid)
    assert cancelled.status is TaskStatus.CANCELLED
    assert _user_in_flight(task.uid) == 1  # the attempt still streams
    assert not tasks.release_stopped(task.task_id, lease_owner="another attempt")
    assert tasks.release_stopped(task.task_id, lease_owner="streaming")
    assert _user_in_flight(task.uid) == 0
    assert not tasks.release_stopped(task.task_id, lease_owner="streaming")  # once
    assert _user_in_flight(task.uid) == 0
    # A task cancelled while PENDING frees its place at once.
    pending = new_task()
    tasks.cancel_task(pending.task_id, uid=pending.uid)
    assert _user_in_flight(pending.uid) == 0


def test_the_sweeper_finds_a_cancelled_task_whose_attempt_died(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In the real tasks collection: the query must be one its indexes serve
    # (tests/infra/test_index_coverage.py checks every query the suite ran).
    monkeypatch.setenv("TASKS_COLLECTION", "tasks")
    get_settings.cache_clear()
    task = new_task()
    now = datetime.now(UTC)
    tasks.claim_task(task.task_id, lease_owner="died", now=now)
    tasks.cancel_task(task.task_id, uid=task.uid)
    later = now + timedelta(seconds=get_settings().lease_seconds + 1)
    stale = tasks.stale_task_ids(now=later, pending_before=now, limit=50)
    assert task.task_id in stale


@pytest.mark.parametrize("landed", [True, False], ids=["commit-landed", "commit-lost"])
def test_a_delete_whose_answer_is_lost_still_answers_deleted(
    monkeypatch: pytest.MonkeyPatch, landed: bool
) -> None:
    """The emulator has answered 499 CANCELLED to a commit (CI, c6eb769): whether that
    commit landed or not, the delete reads again and ends with the task gone."""
    from google.api_core.exceptions import Cancelled
    from google.cloud.firestore_v1.batch import WriteBatch

    task = new_task()
    ending = tasks.terminal_fields(TaskStatus.COMPLETED, datetime.now(UTC), result=RESULT)
    tasks._ref(task.task_id).update(ending)
    real_commit = WriteBatch.commit
    answers: list[str] = []

    def commit_once_lost(self: WriteBatch, *args: object, **kwargs: object) -> object:
        if answers:
            return real_commit(self, *args, **kwargs)
        answers.append("lost")
        if landed:
            real_commit(self, *args, **kwargs)
        raise Cancelled("call already cancelled")

    monkeypatch.setattr(WriteBatch, "commit", commit_once_lost)
    deleted = tasks.delete_finished(task.task_id, uid=task.uid)
    assert deleted.task_id == task.task_id and answers == ["lost"]
    assert not tasks._ref(task.task_id).get().exists


ENDINGS = ["finished", "cancelled", "abandoned", "attempts_exhausted"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_end_records_its_webhook_delivery_and_announces_it(ending: str) -> None:
    """Whoever ends a task with a webhook_url (the worker, a cancel, the dead letter or
    the sweeper, a claim past the last attempt) writes its pending delivery in the same
    write and publishes it for deliver_webhook; a task without one publishes nothing."""
    from shared.models import TaskError, WebhookDelivery, WebhookState
    from tests.integration.conftest import _probe

    hook = "https://hooks.example.com/store-test"
    with _probe(get_settings().webhooks_topic) as published:
        with_hook, without = new_task(), new_task()
        for task, url in ((with_hook, hook), (without, None)):
            tasks._ref(task.task_id).update({"request.webhook_url": url})
            now = datetime.now(UTC)
            error = TaskError(code="x", message="y")
            if ending == "finished":
                owner = uuid.uuid4().hex
                tasks.claim_task(task.task_id, lease_owner=owner, now=now)
                assert tasks.finish_task(
                    task.task_id, lease_owner=owner, now=now, result=RESULT, webhook_url=url
                )
            elif ending == "cancelled":
                tasks.cancel_task(task.task_id, uid=task.uid)
            elif ending == "abandoned":
                outcome = tasks.fail_if_abandoned(task.task_id, now=now, error=error)
                assert outcome is ClaimOutcome.EXHAUSTED
            else:
                attempts = get_settings().max_task_attempts
                tasks._ref(task.task_id).update({"attempts": attempts})
                claim = tasks.claim_task(task.task_id, lease_owner="late", now=now)
                assert claim.outcome is ClaimOutcome.EXHAUSTED
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        announced: list[str] = []
        while with_hook.task_id not in announced and datetime.now(UTC) < deadline:
            announced += [a.get("task_id", "") for a in published()]
    assert with_hook.task_id in announced and without.task_id not in announced
    stored = tasks.get_task(with_hook.task_id)
    assert stored is not None and stored.webhook is not None
    assert isinstance(stored.webhook, WebhookDelivery)
    assert stored.webhook.state is WebhookState.PENDING
    assert stored.webhook.event_type == f"task.{stored.status.value.lower()}"
    plain = tasks.get_task(without.task_id)
    assert plain is not None and plain.status.is_terminal and plain.webhook is None
