"""Caps that hold under concurrency (issue 10, item 3; issue 17), against the Firestore
emulator.

``shared.tasks.create_task`` counts a task in its caps in the same commit that creates
it: a user's counts are that commit's transform results; the project's are sharded and
summed after it (ADR 0009). Here the real adapter runs in this process with caps of its
own (and counters in a collection of its own, so the stack's other traffic does not
count), and parallel creates race for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import quotas, tasks
from shared.errors import RateLimited
from shared.models import TaskRecord, TaskRequest, TaskStatus
from shared.settings import get_settings
from tests.integration.conftest import Api, StandIn, User

# Exclusive: it races the project-wide caps (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive, pytest.mark.heavy]

STRATEGY_CALL = "streamGenerateContent"


@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set this process's caps (the functions keep the stack's)."""

    def set_caps(shards: int = 16, **values: int) -> None:
        names = {
            "max_tasks_per_user_per_minute": 0,
            "max_tasks_in_flight_per_user": 0,
            "max_tasks_per_minute": 0,
            "max_tasks_in_flight": 0,
        }
        for name, value in {**names, **values}.items():
            monkeypatch.setenv(name.upper(), str(value))
        monkeypatch.setenv("QUOTA_COLLECTION", f"quota_test_{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("QUOTA_SHARDS", str(shards))
        get_settings.cache_clear()

    yield set_caps
    get_settings.cache_clear()


def new_task(uid: str, now: datetime | None = None) -> TaskRecord:
    now = now or datetime.now(UTC)
    return TaskRecord(
        task_id=uuid.uuid4().hex,
        uid=uid,
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        request=TaskRequest(brief="quota test"),
    )


def race(task_list: list[TaskRecord]) -> tuple[list[TaskRecord], list[RateLimited]]:
    def create(task: TaskRecord) -> RateLimited | None:
        try:
            tasks.create_task(task)
        except RateLimited as refused:
            return refused
        return None

    with ThreadPoolExecutor(len(task_list)) as pool:
        outcomes = list(pool.map(create, task_list))
    made = [t for t, outcome in zip(task_list, outcomes, strict=True) if outcome is None]
    return made, [o for o in outcomes if o is not None]


def stored(tasks_collection: Any, uids: set[str]) -> set[str]:
    found = set()
    for uid in uids:
        query = tasks_collection.where(filter=FieldFilter("uid", "==", uid))
        found |= {snap.id for snap in query.stream()}
    return found


def count(counter_id: str) -> int:
    counter = quotas.Counter(counter_id, 0, "", 0)
    snapshot = counter.ref.get()
    return int(snapshot.get("count")) if snapshot.exists else 0


def project_count(name: str) -> tuple[int, int]:
    """A project-wide counter's total, and how many shards it is kept in."""
    shards = quotas.ShardedCounter(name, 0, "", 0).shards
    counts = [int(snap.get("count")) for snap in shards.stream()]
    return sum(counts), sum(1 for c in counts if c)


def test_40_parallel_creates_from_one_user_against_10_a_minute(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    caps(max_tasks_per_user_per_minute=10)
    uid = f"quota-{uuid.uuid4().hex[:8]}"
    made, refused = race([new_task(uid) for _ in range(40)])

    assert (len(made), len(refused)) == (10, 30)
    assert all("a minute per user" in r.message for r in refused)
    assert all(1 <= r.retry_after_s <= 60 for r in refused)
    # Exactly the accepted tasks exist, and the counters count them only.
    assert stored(tasks_collection, {uid}) == {t.task_id for t in made}
    assert count(f"user-{quotas.user_key(uid)}-in-flight") == 10


def test_a_project_wide_cap_holds_across_20_users(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    caps(max_tasks_per_minute=10)
    minute = datetime.now(UTC).replace(second=30, microsecond=0)  # one window for all
    uids = [f"quota-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    made, refused = race([new_task(uid, minute) for uid in uids for _ in range(2)])

    assert (len(made), len(refused)) == (10, 30)
    assert all("tasks a minute" in r.message for r in refused)
    assert stored(tasks_collection, set(uids)) == {t.task_id for t in made}
    assert project_count("project-in-flight")[0] == 10
    assert project_count(f"project-m{int(minute.timestamp()) // 60}")[0] == 10


def test_100_parallel_creates_never_pass_a_sharded_project_cap(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    """ADR 0009: the totals are read as of each request's commit, so a burst admits
    exactly the cap (its first commits); the refused leave nothing behind."""
    caps(max_tasks_in_flight=25, shards=16)
    uids = [f"quota-{uuid.uuid4().hex[:8]}" for _ in range(100)]
    made, refused = race([new_task(uid) for uid in uids])

    assert (len(made), len(refused)) == (25, 75)
    assert all("tasks at once" in r.message for r in refused)
    assert stored(tasks_collection, set(uids)) == {t.task_id for t in made}
    total, used = project_count("project-in-flight")
    assert total == 25
    assert used > 1  # the count is spread over shards, not one document
    # A finished task's place is free again, for exactly one more.
    tasks.cancel_task(made[0].task_id, uid=made[0].uid)
    again, refused_again = race([new_task(f"quota-{uuid.uuid4().hex[:8]}") for _ in range(10)])
    assert (len(again), len(refused_again)) == (1, 9)
    assert project_count("project-in-flight")[0] == 25


def test_a_minute_cap_over_shards_admits_exactly_the_cap_one_at_a_time(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    caps(max_tasks_per_minute=12, shards=8)
    minute = datetime.now(UTC).replace(second=30, microsecond=0)  # one window for all
    outcomes = []
    for _ in range(15):
        try:
            tasks.create_task(new_task(f"quota-{uuid.uuid4().hex[:8]}", minute))
            outcomes.append("accepted")
        except RateLimited as refused:
            outcomes.append(refused.message)
    assert outcomes[:12] == ["accepted"] * 12
    assert all("tasks a minute" in o for o in outcomes[12:]), outcomes
    assert project_count(f"project-m{int(minute.timestamp()) // 60}")[0] == 12


def test_a_finished_task_frees_its_place_in_flight(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    caps(max_tasks_in_flight_per_user=3)
    uid = f"quota-{uuid.uuid4().hex[:8]}"
    first = [new_task(uid) for _ in range(3)]
    for task in first:
        tasks.create_task(task)
    with pytest.raises(RateLimited, match="unfinished tasks per user"):
        tasks.create_task(new_task(uid))
    tasks.cancel_task(first[0].task_id, uid=uid)
    tasks.create_task(new_task(uid))  # the cancelled one's place
    assert count(f"user-{quotas.user_key(uid)}-in-flight") == 3
    assert len(stored(tasks_collection, {uid})) == 4  # the refused one left nothing


def test_discarding_a_new_task_takes_its_counts_back_once(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    caps()
    uid = f"quota-{uuid.uuid4().hex[:8]}"
    task = new_task(uid)
    tasks.create_task(task)
    user = quotas.user_key(uid)
    assert count(f"user-{user}-in-flight") == 1
    assert tasks.discard_new_task(task) is True
    assert tasks.discard_new_task(task) is False  # nothing left: counts untouched
    assert count(f"user-{user}-in-flight") == 0
    assert stored(tasks_collection, {uid}) == set()


def test_eight_discards_at_once_take_the_counts_back_once(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    """A create whose answer was lost is discarded by whoever retries: never twice."""
    caps(max_tasks_in_flight=100)
    uid = f"quota-{uuid.uuid4().hex[:8]}"
    task = new_task(uid)
    tasks.create_task(task)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: tasks.discard_new_task(task), range(8)))
    assert outcomes.count(True) == 1
    assert count(f"user-{quotas.user_key(uid)}-in-flight") == 0
    assert project_count("project-in-flight")[0] == 0
    assert stored(tasks_collection, {uid}) == set()


def test_a_task_cancelled_before_its_discard_gives_its_places_back_once(
    caps: Callable[..., None], tasks_collection: Any
) -> None:
    """Issue 18, item 4: a task refused by a cap is visible until discarded; a DELETE
    in between must not make the discard give its in-flight places back a second time."""
    caps(max_tasks_in_flight=100, max_tasks_per_minute=100)
    minute = datetime.now(UTC).replace(second=30, microsecond=0)
    uid = f"quota-{uuid.uuid4().hex[:8]}"
    task = new_task(uid, minute)
    tasks.create_task(task)
    tasks.cancel_task(task.task_id, uid=uid)  # the owner's DELETE, before the discard
    assert tasks.discard_new_task(task) is True
    user = quotas.user_key(uid)
    assert count(f"user-{user}-in-flight") == 0  # not -1
    assert project_count("project-in-flight")[0] == 0
    # The minute's counts are given back by the discard (the cancel leaves them).
    assert count(f"user-{user}-m{int(minute.timestamp()) // 60}") == 0
    assert project_count(f"project-m{int(minute.timestamp()) // 60}")[0] == 0
    assert stored(tasks_collection, {uid}) == set()


def test_40_parallel_submits_from_one_user_get_exactly_the_in_flight_cap(
    api: Api, user: User, standin: StandIn, tasks_collection: Any, marker: str
) -> None:
    """Through HTTP, with the stack's own caps: the slow stand-in keeps tasks in flight."""
    cap = get_settings().max_tasks_in_flight_per_user
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=5.0)
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda i: api.submit(user, brief=f"Race {i} {marker}"), range(40)))
    accepted = [a.json()["task_id"] for a in answers if a.status_code == 202]
    try:
        codes = sorted(a.status_code for a in answers)
        assert len(accepted) == cap, codes
        assert codes.count(429) == 40 - cap
        assert stored(tasks_collection, {user.uid}) == set(accepted)
    finally:
        for task_id in accepted:
            api.cancel(user, task_id)
