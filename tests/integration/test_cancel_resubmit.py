"""A cancel stops the bill (issue 18, item 4), through the stack.

A cancel used to free the user's in-flight place at once while the worker's Gemini stream
ran on to its end (paid): cancel-and-resubmit in a loop ran more Gemini calls at once than
the cap. Now the place comes back when the worker has stopped the call. The stand-in
streams this test's strategies slowly (a fault rule of its own) and logs a stream as
ended the moment its client closes it, so its count of calls open at once is the bill's.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.conftest import STATE_FILE, StandIn, User
from tests.local_servers import stack_submit

pytestmark = pytest.mark.integration

CAP = 2
ROUNDS = 6
STRATEGY_CALL = "generateContent"


@pytest.fixture(scope="module")
def capped_submit(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stack's submit function with a per-user in-flight cap of CAP (same counters)."""
    overrides = {"MAX_TASKS_IN_FLIGHT_PER_USER": str(CAP)}
    with stack_submit(STATE_FILE, tmp_path_factory.mktemp("capped"), overrides) as url:
        yield url


def _wait_for_draft(tasks_collection: Any, task_id: str, timeout: float = 30) -> None:
    """Until a listener sees the task's first draft: its stream is open, the worker reads."""
    drafted = threading.Event()

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snap in snapshots:
            if snap.exists and (snap.to_dict() or {}).get("draft"):
                drafted.set()

    watch = tasks_collection.document(task_id).on_snapshot(on_change)
    try:
        assert drafted.wait(timeout), f"task {task_id}: no draft in {timeout} s"
    finally:
        watch.unsubscribe()


def _submit_when_room(
    http: httpx.Client, url: str, user: User, brief: str, begun: threading.Event | None = None
) -> tuple[str, float]:
    """POST until 202, at once again after each 429 (the cap is full): the new task's id
    and when its 202 came (wall clock, as the stand-in logs)."""
    deadline = time.monotonic() + 30
    while True:
        answer = http.post(
            f"{url}/v1/strategies", json={"brief": brief, "image": False}, headers=user.headers
        )
        if answer.status_code == 202:
            return answer.json()["task_id"], time.time()
        assert answer.status_code == 429, answer.text
        assert time.monotonic() < deadline, "the cancelled task's place never came back"
        if begun is not None:
            begun.set()


def test_cancel_and_resubmit_never_runs_more_gemini_calls_than_the_cap(
    capped_submit: str,
    stack: dict[str, str],
    http: httpx.Client,
    user: User,
    standin: StandIn,
    tasks_collection: Any,
    marker: str,
) -> None:
    """Each round a client already knocking at the full cap cancels its oldest task: its
    next request gets in only once the cancelled task's Gemini call has ended."""
    # Each strategy streams in 3 events 2.5 s apart: open ~5 s unless its client cuts it.
    standin.fault(marker, endpoint=STRATEGY_CALL, stream_pieces=3, stream_pause_s=2.5)

    def brief(n: int) -> str:
        return f"A bakery in Cluj wants more weekday customers {marker}-t{n:02d}."

    running = [_submit_when_room(http, capped_submit, user, brief(n))[0] for n in range(CAP)]
    for task_id in running:
        _wait_for_draft(tasks_collection, task_id)
    briefs = {task_id: brief(n) for n, task_id in enumerate(running)}

    late: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        for n in range(CAP, CAP + ROUNDS):
            knocking = threading.Event()
            resubmit = pool.submit(_submit_when_room, http, capped_submit, user, brief(n), knocking)
            assert knocking.wait(10), "the cap was not full before the cancel"
            oldest = running.pop(0)
            http.delete(f"{stack['STATUS_URL']}/v1/tasks/{oldest}", headers=user.headers)
            task_id, accepted_at = resubmit.result(timeout=30)
            (old_call,) = standin.requests(briefs[oldest], endpoint=STRATEGY_CALL)
            if old_call["ended_at"] is None or old_call["ended_at"] > accepted_at:
                late.append(f"{oldest}: call ended {old_call['ended_at']}, 202 at {accepted_at}")
            running.append(task_id)
            briefs[task_id] = brief(n)
            _wait_for_draft(tasks_collection, task_id)
    for task_id in running:
        http.delete(f"{stack['STATUS_URL']}/v1/tasks/{task_id}", headers=user.headers)

    assert late == [], "a place came back before its task's Gemini call had ended"
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert len(calls) == CAP + ROUNDS  # one call a task: a cancel is not retried
    deadline = time.monotonic() + 10
    while any(call["ended_at"] is None for call in standin.requests(marker, STRATEGY_CALL)):
        assert time.monotonic() < deadline, "a cancelled task's Gemini call was never stopped"
        time.sleep(0.05)
    # Every call of a cancelled task was cut short: none ran on to its ~5 s end.
    for call in standin.requests(marker, endpoint=STRATEGY_CALL):
        assert call["ended_at"] - call["started_at"] < 4.5, call
    assert standin.max_concurrency(marker) <= CAP


@pytest.mark.exclusive  # it freezes the stack's worker
def test_a_cancelled_tasks_place_waits_until_its_worker_has_stopped_the_call(
    capped_submit: str,
    stack: dict[str, str],
    http: httpx.Client,
    user: User,
    standin: StandIn,
    tasks_collection: Any,
    marker: str,
) -> None:
    """A worker slow to hear the cancel (frozen here: SIGSTOP) streams on and is billed:
    meanwhile the cancelled task keeps its place, and the cap refuses the next task."""
    standin.fault(marker, endpoint=STRATEGY_CALL, stream_pieces=3, stream_pause_s=2.5)
    brief = f"A bakery in Cluj wants more weekday customers {marker}"
    running = [
        _submit_when_room(http, capped_submit, user, f"{brief}-t{n}.")[0] for n in range(CAP)
    ]
    for task_id in running:
        _wait_for_draft(tasks_collection, task_id)
    worker_group = int(json.loads(STATE_FILE.read_text())["parts"]["process"]["pgid"])

    os.killpg(worker_group, signal.SIGSTOP)
    try:
        cancel = http.delete(f"{stack['STATUS_URL']}/v1/tasks/{running[0]}", headers=user.headers)
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["status"] == "CANCELLED"  # at once, for the user
        knocks = []
        frozen_until = time.monotonic() + 1.5
        while time.monotonic() < frozen_until:
            knocks.append(
                http.post(
                    f"{capped_submit}/v1/strategies",
                    json={"brief": brief, "image": False},
                    headers=user.headers,
                ).status_code
            )
    finally:
        os.killpg(worker_group, signal.SIGCONT)
    assert knocks and set(knocks) == {429}, knocks  # the call still runs: no place yet

    task_id, accepted_at = _submit_when_room(http, capped_submit, user, brief)
    running.append(task_id)
    for task_id in running[1:]:
        http.delete(f"{stack['STATUS_URL']}/v1/tasks/{task_id}", headers=user.headers)
    (first_call,) = standin.requests(f"{marker}-t0.", endpoint=STRATEGY_CALL)
    assert first_call["ended_at"] is not None and first_call["ended_at"] <= accepted_at
    # Stopped by the worker once it ran again, not at the stream's end (~5 s).
    assert first_call["ended_at"] - first_call["started_at"] < 4.5, first_call
