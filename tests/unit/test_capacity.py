"""infra/capacity.py: the worker's size from the task profile and the Gemini tier."""

from __future__ import annotations

import math

import pytest

from infra import capacity
from infra.capacity import TaskProfile

PROFILE = TaskProfile(seconds=20.0, requests=1.0, tokens=20_000, base_mib=100, mib_per_task=10)


def test_the_tier_s_tighter_limit_decides_the_tasks_a_minute() -> None:
    # 2,000 requests a minute would serve 2,000 tasks; 4 M tokens serve only 200.
    assert capacity.sustained_tasks_per_minute(2000, 4_000_000, PROFILE) == 200
    assert capacity.sustained_tasks_per_minute(100, 4_000_000, PROFILE) == 100
    assert math.isinf(capacity.sustained_tasks_per_minute(0, 0, PROFILE))


def test_the_worker_keeps_the_tier_busy_and_no_busier() -> None:
    # 600 tasks a minute of 20 s each: 200 in flight, 25 instances of 8.
    size = capacity.worker_size(600, 0, 8, 100, PROFILE)
    assert (size.slots, size.max_instances, size.concurrency) == (200, 25, 8)
    # (100 + 8 x 10) x 1.5 = 270 MiB: the smallest size that holds it.
    assert size.memory_mib == 512


def test_without_a_tier_the_default_instances_stand() -> None:
    size = capacity.worker_size(0, 0, 8, 100, PROFILE)
    assert (size.max_instances, size.slots) == (100, 800)
    assert capacity.problems(300, size) == []


def test_memory_grows_with_concurrency_to_the_largest_size_then_refuses() -> None:
    assert capacity.memory_mib(40, PROFILE) == 1024  # (100 + 400) x 1.5 = 750
    assert capacity.memory_mib(100, PROFILE) == 2048  # 1650
    with pytest.raises(ValueError, match="lower the concurrency"):
        capacity.memory_mib(400, PROFILE)


@pytest.mark.parametrize(("cap", "refused"), [(150, False), (200, False), (201, True), (0, True)])
def test_a_minute_cap_above_what_the_tier_serves_is_refused(cap: int, refused: bool) -> None:
    size = capacity.worker_size(0, 4_000_000, 8, 100, PROFILE)  # 200 tasks a minute
    found = capacity.problems(cap, size)
    assert bool(found) is refused
    if refused:
        assert "at most 200" in found[0]
