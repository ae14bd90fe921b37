"""Day budgets in EUR and the kill switch (issue 18, ADR 0010), against the emulators.

A submit function of its own runs with small budgets, counters in a collection of its
own and a service config of its own, so that the stack's other traffic neither counts
nor pauses; fresh users come from the Auth emulator, as a script would mint them. The
settling of a hold (the worker's end of a task) runs in this process on the real store.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import costs, quotas, tasks
from shared.errors import BudgetExhausted
from shared.models import TaskError, TaskRecord, TaskRequest, TaskStatus
from shared.settings import get_settings
from tests.integration.conftest import STATE_FILE, User
from tests.local_servers import stack_submit

pytestmark = pytest.mark.integration

BRIEF = "A bakery in Cluj wants more weekday customers."
PROJECT_BUDGET_EUR = 1.0
ANONYMOUS_BUDGET_EUR = 2.0
USER_BUDGET_EUR = 5.0
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FAILED = TaskError(code="gemini_unavailable", message="Gemini answered 503", retryable=True)


@pytest.fixture(scope="module")
def collections() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:12]
    return {"quota": f"budget_test_{suffix}", "config": f"config_test_{suffix}"}


@pytest.fixture(scope="module")
def submit_url(
    stack: dict[str, str], collections: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A submit function with small day budgets of its own."""
    overrides = {
        "DAILY_BUDGET_EUR": str(PROJECT_BUDGET_EUR),
        "DAILY_BUDGET_PER_USER_EUR": str(USER_BUDGET_EUR),
        "DAILY_BUDGET_PER_ANONYMOUS_USER_EUR": str(ANONYMOUS_BUDGET_EUR),
        "QUOTA_COLLECTION": collections["quota"],
        "QUOTA_SHARDS": "16",
    }
    with stack_submit(STATE_FILE, tmp_path_factory.mktemp("budgets"), overrides) as url:
        yield url


@pytest.fixture(scope="module")
def switchable_url(
    stack: dict[str, str], collections: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A submit function reading a service config of its own, at every request."""
    overrides = {
        "SERVICE_CONFIG_COLLECTION": collections["config"],
        "SERVICE_CONFIG_CACHE_S": "0",
    }
    with stack_submit(STATE_FILE, tmp_path_factory.mktemp("switch"), overrides) as url:
        yield url


@pytest.fixture(scope="module")
def minute_capped_url(
    stack: dict[str, str], collections: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A submit function whose whole project takes two tasks a minute."""
    overrides = {
        "MAX_TASKS_PER_MINUTE": "2",
        "QUOTA_COLLECTION": f"{collections['quota']}_minute",
        "QUOTA_SHARDS": "4",
    }
    with stack_submit(STATE_FILE, tmp_path_factory.mktemp("minute"), overrides) as url:
        yield url


def _post(http: httpx.Client, url: str, user: User, brief: str = BRIEF) -> httpx.Response:
    return http.post(f"{url}/v1/strategies", json={"brief": brief}, headers=user.headers)


def _tasks_of(firestore_client: Any, uid: str) -> list[str]:
    collection = firestore_client.collection(get_settings().tasks_collection)
    query = collection.where(filter=FieldFilter("uid", "==", uid))
    return [snapshot.id for snapshot in query.stream()]


def _next_midnight() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)


def test_twenty_fresh_anonymous_users_cannot_spend_past_the_project_day_budget(
    submit_url: str,
    http: httpx.Client,
    new_user: Callable[[], User],
    firestore_client: Any,
) -> None:
    """Per-user caps are no defence against free uids: the project's day budget is. Each
    task holds its worst case, so exactly as many get in as the budget holds."""
    worst = costs.worst_case_micros(TaskRequest(brief=BRIEF))
    fits = math.floor(PROJECT_BUDGET_EUR * 1_000_000 / worst)
    assert 1 <= fits < 20 and worst * 2 <= ANONYMOUS_BUDGET_EUR * 1_000_000
    users = [new_user() for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda user: _post(http, submit_url, user), users))
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) == fits, [a.text for a in answers]
    assert len(refused) == 20 - fits
    midnight = _next_midnight()
    for answer in refused:
        error = answer.json()["error"]
        assert error["code"] == "budget_exhausted"
        assert "budget for today" in error["message"]
        assert datetime.fromisoformat(error["resets_at"]) == midnight
        retry_after = int(answer.headers["Retry-After"])
        left = (midnight - datetime.now(UTC)).total_seconds()
        assert left - 60 <= retry_after <= left + 60
    # A refused request leaves nothing behind.
    for user, answer in zip(users, answers, strict=True):
        kept = _tasks_of(firestore_client, user.uid)
        assert len(kept) == (1 if answer.status_code == 202 else 0)


def test_the_kill_switch_stops_new_tasks_at_once_and_lets_them_in_again(
    switchable_url: str,
    http: httpx.Client,
    new_user: Callable[[], User],
    collections: dict[str, str],
    firestore_client: Any,
) -> None:
    """The operator's Firestore switch: 503 paused while it is on, nothing written."""
    switch = firestore_client.collection(collections["config"]).document("service")
    user = new_user()
    switch.set({"paused": True})
    try:
        answer = _post(http, switchable_url, user)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "paused"
        assert _tasks_of(firestore_client, user.uid) == []
    finally:
        switch.set({"paused": False})
    answer = _post(http, switchable_url, user)
    assert answer.status_code == 202, answer.text
    assert len(_tasks_of(firestore_client, user.uid)) == 1


def test_a_full_minute_refuses_the_rest_of_its_minute_without_a_write(
    minute_capped_url: str,
    http: httpx.Client,
    new_user: Callable[[], User],
    collections: dict[str, str],
    firestore_client: Any,
) -> None:
    """Cheap refusals (issue 18): once the project's minute count has refused a task, the
    instance refuses the rest of that minute from memory: no +1/-1 on a counter shard,
    no PDF upload, for JSON and multipart requests alike."""
    if datetime.now(UTC).second >= 55:  # all of it (~2 s) within one minute
        time.sleep(61 - datetime.now(UTC).second)
    minute = int(datetime.now(UTC).timestamp()) // 60
    users = [new_user() for _ in range(3)]
    assert [_post(http, minute_capped_url, user).status_code for user in users] == [202, 202, 429]
    shards = (
        firestore_client.collection(f"{collections['quota']}_minute")
        .document(f"project-m{minute}")
        .collection(get_settings().quota_shards_collection)
    )
    before = {snap.id: (snap.update_time, snap.get("count")) for snap in shards.stream()}
    assert sum(count for _, count in before.values()) == 2  # the refused one's undo committed

    later = [new_user() for _ in range(3)]
    answers = [_post(http, minute_capped_url, user) for user in later]
    answers.append(
        http.post(
            f"{minute_capped_url}/v1/strategies",
            data={"brief": BRIEF},
            files={"pdf": ("brief.pdf", PDF, "application/pdf")},
            headers=later[0].headers,
        )
    )
    for answer in answers:
        assert answer.status_code == 429, answer.text
        assert "tasks a minute" in answer.json()["error"]["message"]
        assert 0 < int(answer.headers["Retry-After"]) <= 60
    after = {snap.id: (snap.update_time, snap.get("count")) for snap in shards.stream()}
    assert after == before  # not one write on any shard
    for user in later:
        assert _tasks_of(firestore_client, user.uid) == []
        for counter in quotas.user_counters(user.uid, datetime.now(UTC)):
            ref = firestore_client.collection(f"{collections['quota']}_minute").document(
                counter.key
            )
            assert not ref.get().exists  # nor on the user's counters


# ---------------------------------------------------------------- in this process


@pytest.fixture
def budgets(monkeypatch: pytest.MonkeyPatch, stack: dict[str, str]) -> Iterator[None]:
    monkeypatch.setenv("DAILY_BUDGET_EUR", "1")
    monkeypatch.setenv("DAILY_BUDGET_PER_USER_EUR", "0.7")
    monkeypatch.setenv("DAILY_BUDGET_PER_ANONYMOUS_USER_EUR", "0.3")
    monkeypatch.setenv("QUOTA_COLLECTION", f"budget_test_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("QUOTA_SHARDS", "16")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _task(uid: str, *, anonymous: bool = False) -> TaskRecord:
    now = datetime.now(UTC)
    request = TaskRequest(brief=BRIEF)
    return TaskRecord(
        task_id=uuid.uuid4().hex,
        uid=uid,
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        request=request,
        budget_day=quotas.day_of(now),
        budget_reserved_micros=costs.worst_case_micros(request),
        anonymous_user=anonymous,
    )


def _reserved(uid: str) -> tuple[int, int]:
    """The user's day counter and the project's day total now."""
    now = datetime.now(UTC)
    day = quotas.day_of(now)
    user = quotas.user_budget(uid, day, now).ref.get().to_dict() or {}
    return int(user.get("count", 0)), quotas.project_budget(day, now).total(now)


def test_an_anonymous_user_gets_the_lower_budget(budgets: None) -> None:
    """0.3 EUR holds one worst case (~0.28) for an anonymous user; 0.7 holds two."""
    anonymous, signed_in = f"anon-{uuid.uuid4().hex}", f"user-{uuid.uuid4().hex}"
    tasks.create_task(_task(anonymous, anonymous=True))
    with pytest.raises(BudgetExhausted) as refused:
        tasks.create_task(_task(anonymous, anonymous=True))
    assert "anonymous user" in refused.value.message
    assert refused.value.resets_at == _next_midnight()
    tasks.create_task(_task(signed_in))
    tasks.create_task(_task(signed_in))
    with pytest.raises(BudgetExhausted):
        tasks.create_task(_task(signed_in))


def test_a_finished_task_settles_at_its_real_cost_and_frees_the_rest(budgets: None) -> None:
    uid = f"user-{uuid.uuid4().hex}"
    first, second = _task(uid), _task(uid)
    worst = first.budget_reserved_micros
    tasks.create_task(first)
    tasks.create_task(second)
    assert _reserved(uid) == (2 * worst, 2 * worst)
    with pytest.raises(BudgetExhausted):
        tasks.create_task(_task(uid))  # refused: and its hold is undone
    assert _reserved(uid) == (2 * worst, 2 * worst)

    # The worker's end of the first: it paid 0.012345 EUR.
    now = datetime.now(UTC)
    claim = tasks.claim_task(first.task_id, lease_owner="attempt-1", now=now)
    assert claim.outcome is tasks.ClaimOutcome.CLAIMED
    assert tasks.finish_task(
        first.task_id, lease_owner="attempt-1", now=now, error=FAILED, spent_micros=12_345
    )
    assert _reserved(uid) == (worst + 12_345, worst + 12_345)

    # The second fails before any Gemini call: its whole hold comes back.
    claim = tasks.claim_task(second.task_id, lease_owner="attempt-2", now=now)
    assert claim.outcome is tasks.ClaimOutcome.CLAIMED
    tasks.finish_task(
        second.task_id, lease_owner="attempt-2", now=now, error=FAILED, spent_micros=0
    )
    assert _reserved(uid) == (12_345, 12_345)
    tasks.create_task(_task(uid))  # room again


def test_a_cancelled_pending_task_gives_its_hold_back(budgets: None) -> None:
    uid = f"user-{uuid.uuid4().hex}"
    task = _task(uid)
    tasks.create_task(task)
    tasks.cancel_task(task.task_id, uid=uid)
    assert _reserved(uid) == (0, 0)


def test_the_operator_command_flips_the_switch_the_submit_function_reads(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import service
    from shared import pause

    monkeypatch.setenv("SERVICE_CONFIG_COLLECTION", f"config_test_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("SERVICE_CONFIG_CACHE_S", "0")
    get_settings.cache_clear()
    pause.forget()
    try:
        assert not pause.is_paused()
        assert service.main(["pause"]) == 0
        assert "paused" in capsys.readouterr().out
        assert pause.is_paused()
        assert service.main(["resume"]) == 0
        assert "accepting tasks" in capsys.readouterr().out
        assert not pause.is_paused()
    finally:
        pause.forget()
        get_settings.cache_clear()


def test_a_user_at_a_cap_is_refused_by_one_read_before_the_costly_work(budgets: None) -> None:
    """quotas.check_user_room: the user's own counts, read, no write (the accept path asks
    it before a PDF is read, hashed or uploaded)."""
    uid = f"user-{uuid.uuid4().hex}"
    first = _task(uid)
    now = datetime.now(UTC)
    quotas.check_user_room(uid, now, anonymous=False, reserved=first.budget_reserved_micros)
    tasks.create_task(first)
    tasks.create_task(_task(uid))  # 0.7 EUR holds two worst cases: now full
    with pytest.raises(BudgetExhausted):
        quotas.check_user_room(uid, now, anonymous=False, reserved=first.budget_reserved_micros)
    assert _reserved(uid)[0] == 2 * first.budget_reserved_micros  # nothing written
    # Another user is not refused by this one's counts.
    quotas.check_user_room(f"user-{uuid.uuid4().hex}", now, anonymous=False, reserved=1)
