"""`make up` on a stack with a part down brings back that part alone (issue 10, item 7).

The worker dies during 10 Gemini calls: ``python -m dev.stack up`` starts it
again, every other part keeps running (same processes, so the emulators keep
their data), and the 10 tasks end COMPLETED once their lease lets the new worker
take over. A bridge that dies comes back on a fresh subscription, and no task is
lost or paid twice. The figures each test measures are printed (``-s``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Api, StandIn, TaskWatcher, User
from tests.integration.test_delivery_faults import (
    STRATEGY_CALL,
    ThreadApis,
    settings,
    stack_state,
    wait_for,
)

# Exclusive: it kills and restarts function processes; heavy: it counts the attempts of
# tasks whose Gemini calls must not time out, which a loaded machine broke (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive, pytest.mark.heavy]

ROOT = Path(__file__).resolve().parents[2]
EMULATORS = ("firestore", "pubsub", "auth", "storage")


def report(title: str, **figures: Any) -> None:
    shown = ", ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n[stack-recovery] {title}: {shown}")


def dev_stack(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m dev.stack ARGS`` as a developer runs it (what `make up` runs)."""
    return subprocess.run(
        [sys.executable, "-m", "dev.stack", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def identity(record: dict[str, Any]) -> tuple[int, int | None]:
    """A part's process: its pid and the kernel's start time (tells a reused pid apart)."""
    return int(record["pid"]), record.get("start_time")


def assert_kept_running(before: dict[str, Any], after: dict[str, Any], restarted: str) -> None:
    from dev import stack as dev_stack_module

    assert set(after) == set(before)
    assert identity(after[restarted]) != identity(before[restarted])
    for part in EMULATORS:
        assert identity(after[part]) == identity(before[part]), f"the {part} emulator restarted"
    for part, record in before.items():
        if part != restarted:
            assert identity(after[part]) == identity(record), f"{part} restarted"
            assert dev_stack_module.part_alive(after[part]), f"{part} is not running"


def submit_in_parallel(apis: ThreadApis, users: list[User], brief: str, count: int) -> list[str]:
    with ThreadPoolExecutor(count) as pool:
        return list(
            pool.map(
                lambda i: apis().submit_ok(users[i % len(users)], brief=f"{brief} {i}"),
                range(count),
            )
        )


def test_up_after_the_worker_died_restarts_it_alone_and_the_10_tasks_complete(
    stack: dict[str, str],
    api: Api,
    new_user: Callable[[], User],
    standin: StandIn,
    watcher: TaskWatcher,
    tasks_collection: Any,
    marker: str,
) -> None:
    name = stack_state()["name"]
    # A task finished before the crash: data the emulators must keep.
    owner = new_user()
    earlier = api.submit_ok(owner, brief=f"Cobbler before the crash {marker}")
    assert watcher.wait(earlier, timeout=60)["status"] == "COMPLETED"
    before = stack_state()["parts"]

    slow = f"{marker}-slow"
    standin.fault(slow, endpoint=STRATEGY_CALL, latency_s=3)
    apis = ThreadApis(stack)
    try:
        task_ids = submit_in_parallel(apis, [new_user(), new_user()], f"Tailor {slow}", 10)
    finally:
        apis.close()
    wait_for(
        lambda: len(standin.requests(slow, endpoint=STRATEGY_CALL)) >= 10,
        timeout=30,
        what="10 strategy calls in flight",
        every=0.05,
    )
    in_flight = [c for c in standin.requests(slow, endpoint=STRATEGY_CALL) if not c["ended_at"]]

    killed = dev_stack("kill-part", "process", "--name", name)
    assert killed.returncode == 0, killed.stderr
    killed_at = time.monotonic()
    up = dev_stack("up", "--name", name)
    back_after = time.monotonic() - killed_at
    assert up.returncode == 0, up.stdout + up.stderr
    after = stack_state()["parts"]

    # `up` says what it started again, and that the rest kept running with its data.
    assert "is only partly running: process (exited) down" in up.stdout
    assert "starting again: process\n" in up.stdout
    assert "the emulators keep their data" in up.stdout
    assert "restarted process;" in up.stdout
    assert "kept running (same processes, same data)" in up.stdout
    assert "Restarting the whole stack" not in up.stdout
    # The same processes: emulators, the other functions, the stand-in, the bridges.
    assert_kept_running(before, after, "process")
    assert after["process"]["restarts"] == before["process"].get("restarts", 0) + 1
    # The data too: the earlier task is still there, through the API and in Firestore.
    answer = api.status(owner, earlier)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "COMPLETED"
    assert tasks_collection.document(earlier).get().get("status") == "COMPLETED"

    tasks = watcher.wait_all(task_ids, timeout=settings().lease_seconds + 120)
    recovered_after = time.monotonic() - killed_at
    calls = standin.requests(slow, endpoint=STRATEGY_CALL)
    statuses = Counter(t["status"] for t in tasks.values())
    report(
        "worker SIGKILLed during 10 Gemini calls, then `dev.stack up`",
        in_flight_at_kill=len(in_flight),
        up_s=round(back_after, 1),
        statuses=dict(statuses),
        attempts=dict(Counter(t["attempts"] for t in tasks.values())),
        strategy_calls=len(calls),
        all_completed_s=round(recovered_after, 1),
        lease_seconds=settings().lease_seconds,
    )
    assert len(in_flight) == 10
    assert statuses == {"COMPLETED": 10}
    # The killed attempt's call died with the worker; the takeover made one more.
    assert {t["attempts"] for t in tasks.values()} == {2}
    assert len(calls) == 20
    # The stack is whole again, and `up` now leaves it alone.
    assert dev_stack("status", "--name", name).returncode == 0
    again = dev_stack("up", "--name", name)
    assert again.returncode == 0 and "is already up" in again.stdout
    assert identity(stack_state()["parts"]["process"]) == identity(after["process"])


def test_up_after_the_bridge_died_gives_it_a_fresh_subscription_and_loses_no_task(
    stack: dict[str, str],
    new_user: Callable[[], User],
    standin: StandIn,
    watcher: TaskWatcher,
    marker: str,
) -> None:
    from dev import stack as dev_stack_module

    name = stack_state()["name"]
    state = stack_state()
    before = state["parts"]
    old_subscription = state["resources"]["subscription"]
    users = [new_user(), new_user()]
    slow = f"{marker}-slow"
    standin.fault(slow, endpoint=STRATEGY_CALL, latency_s=3)
    apis = ThreadApis(stack)
    try:
        # Three tasks in the worker when the bridge dies, three more while it is down.
        in_work = submit_in_parallel(apis, users, f"Baker {slow}", 3)
        wait_for(
            lambda: len(standin.requests(slow, endpoint=STRATEGY_CALL)) >= 3,
            timeout=30,
            what="3 strategy calls in flight",
            every=0.05,
        )
        bridge = before["bridge"]
        assert dev_stack_module.recorded_group_is_ours(bridge)
        os.killpg(int(bridge["pgid"]), signal.SIGKILL)
        wait_for(
            lambda: not dev_stack_module.group_members(int(bridge["pgid"])),
            timeout=10,
            what="the bridge gone",
        )
        while_down = submit_in_parallel(apis, users, f"Potter {marker}", 3)
    finally:
        apis.close()

    up = dev_stack("up", "--name", name)
    assert up.returncode == 0, up.stdout + up.stderr
    state = stack_state()
    assert "starting again: bridge\n" in up.stdout
    assert "bridge starts over on a fresh subscription" in up.stdout
    assert "published again:" in up.stdout
    assert_kept_running(before, state["parts"], "bridge")
    new_subscription = state["resources"]["subscription"]
    assert new_subscription != old_subscription
    assert new_subscription.endswith("-process")  # what the dead-letter attributes name

    tasks = watcher.wait_all(in_work + while_down, timeout=60)
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    statuses = Counter(t["status"] for t in tasks.values())
    report(
        "bridge SIGKILLed with 3 tasks in the worker, 3 submitted while it was down",
        statuses=dict(statuses),
        attempts=dict(Counter(t["attempts"] for t in tasks.values())),
        strategy_calls=len(calls),
        subscription=new_subscription.rsplit("/", 1)[-1],
    )
    assert statuses == {"COMPLETED": 6}
    # Nothing paid twice: the copies published again met a lease or a finished task.
    assert {t["attempts"] for t in tasks.values()} == {1}
    assert len(calls) == 6
