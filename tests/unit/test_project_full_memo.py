"""Refusals from memory (shared/quotas.py, issue 18): an instance that saw a project-wide
count refuse a task refuses its like with no write, for as long as the count stays full."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared import quotas
from shared.errors import BudgetExhausted, RateLimited
from shared.settings import get_settings

NOW = datetime(2026, 12, 4, 10, 15, 20, tzinfo=UTC)  # 40 s before the minute ends


@pytest.fixture(autouse=True)
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROJECT_FULL_MEMO_S", "1.5")
    monkeypatch.setenv("DAILY_BUDGET_EUR", "10")
    get_settings.cache_clear()
    quotas.forget_full()
    yield
    quotas.forget_full()
    get_settings.cache_clear()


def minute_count(now: datetime) -> quotas.ShardedCounter:
    return quotas.project_counters(now)[0]


def test_nothing_is_refused_from_memory_before_a_refusal() -> None:
    quotas.check_project_room(NOW, reserved=10**9)


def test_a_full_minute_is_refused_until_its_minute_ends() -> None:
    quotas.remember_full(minute_count(NOW), NOW)
    for later in (1, 20, 39.9):
        with pytest.raises(RateLimited, match="tasks a minute") as refused:
            quotas.check_project_room(NOW + timedelta(seconds=later), reserved=1)
        assert 0 < refused.value.retry_after_s <= 40
    quotas.check_project_room(NOW + timedelta(seconds=40), reserved=1)  # a new minute


def test_a_full_in_flight_count_is_refused_only_for_the_memo() -> None:
    quotas.remember_full(quotas.project_in_flight(), NOW)
    with pytest.raises(RateLimited, match=r"at most .* tasks at once"):
        quotas.check_project_room(NOW + timedelta(seconds=1.4), reserved=1)
    quotas.check_project_room(NOW + timedelta(seconds=1.5), reserved=1)  # tasks may have ended


def test_a_spent_budget_refuses_as_much_but_not_a_smaller_task() -> None:
    day = quotas.day_of(NOW)
    quotas.remember_full(quotas.project_budget(day, NOW, reserved=500_000), NOW)
    with pytest.raises(BudgetExhausted) as refused:
        quotas.check_project_room(NOW, reserved=500_000)
    assert refused.value.resets_at == datetime(2026, 12, 5, tzinfo=UTC)
    quotas.check_project_room(NOW, reserved=120_000)  # may still fit: the commit decides


def test_a_memo_of_zero_remembers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT_FULL_MEMO_S", "0")
    get_settings.cache_clear()
    quotas.remember_full(minute_count(NOW), NOW)
    quotas.remember_full(quotas.project_in_flight(), NOW)
    quotas.check_project_room(NOW, reserved=1)
