"""The strategy appears as Gemini writes it (issue 11, item 5).

The stand-in streams the strategy slowly; a listener on the task document must see
drafts growing while the task is PROCESSING, each a valid prefix of the final
strategy, written at most about once a second, and gone once it is COMPLETED.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shared.settings import Settings
from tests.integration.conftest import Api, StandIn, User

pytestmark = pytest.mark.integration

PIECES = 12
PAUSE_S = 0.35


@pytest.fixture
def slow_stream(standin: StandIn) -> Iterator[StandIn]:
    previous = standin.config(stream_pieces=PIECES, stream_pause_s=PAUSE_S)
    try:
        yield standin
    finally:
        standin.config(**previous)


def follow(tasks_collection: Any, task_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every snapshot of the task until it is finished."""
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snapshot in snapshots:
            if snapshot.exists:
                data = snapshot.to_dict()
                seen.append(data)
                if data["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    done.set()

    watch = tasks_collection.document(task_id).on_snapshot(on_change)
    try:
        assert done.wait(timeout), f"task {task_id} did not finish: {seen[-1:]}"
    finally:
        watch.unsubscribe()
    return seen


def test_drafts_grow_while_the_strategy_is_written(
    api: Api,
    user: User,
    slow_stream: StandIn,
    tasks_collection: Any,
    marker: str,
) -> None:
    # The stream takes seconds: a listener attached right after the submit sees it all.
    task_id = api.submit_ok(user, brief=f"Climbing gym in Oradea {marker}", image=False)
    snapshots = follow(tasks_collection, task_id)

    final = snapshots[-1]
    assert final["status"] == "COMPLETED"
    assert final.get("draft") is None  # the finished strategy replaces the draft
    strategy = final["result"]["strategy"]
    drafts = [s["draft"] for s in snapshots if s["status"] == "PROCESSING" and s.get("draft")]
    assert len(drafts) >= 2, "no growing draft was seen before COMPLETED"
    # Each draft is a prefix of the strategy as it ended up.
    for draft in drafts:
        name = draft.get("strategy_name")
        if name is not None:
            assert strategy["strategy_name"].startswith(name)
        steps = draft.get("steps") or []
        for step in steps[:-1]:  # the last one may still be growing
            assert step in strategy["steps"]
    sizes = [len(str(d)) for d in drafts]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    # Within the progress budget: about one write a second while streaming.
    streaming_s = PIECES * PAUSE_S
    interval = Settings().progress_min_interval_s
    assert len(drafts) <= math.ceil(streaming_s / interval) + 2


def test_a_draft_is_not_left_on_a_failed_task(
    api: Api, user: User, slow_stream: StandIn, tasks_collection: Any, marker: str
) -> None:
    # The stream breaks off at its end (MAX_TOKENS): drafts were shown, the task fails.
    slow_stream.fault(
        marker, endpoint="streamGenerateContent", finish_reason="MAX_TOKENS", times=None
    )
    task_id = api.submit_ok(user, brief=f"Sailing school {marker}", image=False)
    snapshots = follow(tasks_collection, task_id)
    assert snapshots[-1]["status"] == "FAILED"
    assert snapshots[-1]["error"]["code"] == "answer_truncated"
    assert snapshots[-1].get("draft") is None
