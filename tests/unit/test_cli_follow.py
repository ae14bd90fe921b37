"""Following a task: listener first, polling with backoff when it cannot connect, and the
progress shown on stderr (a bar on a terminal, lines otherwise)."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.follow import (
    POLL_MAX_S,
    POLL_MIN_S,
    Follower,
    ListenerTrouble,
    ProgressView,
    Push,
    public_task,
)


def task(status: str, stage: str, percent: int) -> dict[str, Any]:
    return {"task_id": "t1", "status": status, "progress": {"stage": stage, "percent": percent}}


RUN = [
    task("PENDING", "queued", 0),
    task("PROCESSING", "reading_sources", 5),
    task("PROCESSING", "writing_strategy", 40),
    task("COMPLETED", "done", 100),
]


class FakeWatch:
    def __init__(self) -> None:
        self.is_active = True
        self.unsubscribed = False

    def unsubscribe(self) -> None:
        self.unsubscribed = True


def quiet_view() -> ProgressView:
    return ProgressView(io.StringIO(), quiet=True)


def no_polls(task_id: str) -> dict[str, Any]:
    raise AssertionError("the listener should have been enough")


def test_the_listener_follows_every_change() -> None:
    watch = FakeWatch()

    def open_listener(push: Push) -> FakeWatch:
        def feed() -> None:
            push(None, None)  # connected
            push("other", task("PENDING", "queued", 0))  # another task of the user
            for state in RUN:
                push("t1", state | {"lease_owner": "x"})

        threading.Thread(target=feed).start()
        return watch

    follower = Follower(no_polls, quiet_view(), open_listener=open_listener)
    result = follower.follow("t1", timeout_s=10)
    assert result.task["status"] == "COMPLETED"
    assert "lease_owner" not in result.task  # internal fields are not shown
    assert result.via == "listener" and result.snapshots == 4 and result.polls == 0
    assert [e["stage"] for e in result.events] == [
        "queued",
        "reading_sources",
        "writing_strategy",
        "done",
    ]
    assert {e["via"] for e in result.events} == {"listener"}
    assert watch.unsubscribed


def test_no_first_snapshot_in_time_falls_back_to_polling() -> None:
    polled = iter(RUN)
    follower = Follower(
        lambda _id: next(polled),
        quiet_view(),
        open_listener=lambda push: FakeWatch(),  # connects to nothing
        listener_timeout_s=0.2,
        sleep=lambda _s: None,
    )
    result = follower.follow("t1", timeout_s=10)
    assert result.task["status"] == "COMPLETED"
    assert result.via == "polling" and result.snapshots == 0 and result.polls == 4
    assert result.fallback_reason == "no answer from Firestore within 0.2 s"


def test_a_listener_that_firestore_closes_falls_back_to_polling() -> None:
    watch = FakeWatch()
    trouble = ListenerTrouble()

    def open_listener(push: Push) -> FakeWatch:
        push("t1", RUN[1])
        trouble.problems.append("403 Error 7: evaluation error ... permission denied")
        watch.is_active = False
        return watch

    follower = Follower(
        lambda _id: RUN[-1],
        quiet_view(),
        open_listener=open_listener,
        trouble=trouble,
        sleep=lambda _s: None,
    )
    result = follower.follow("t1", timeout_s=10)
    assert result.via == "listener+polling"
    assert result.fallback_reason == "Firestore refused the listener (permission denied)"
    assert [e["via"] for e in result.events] == ["listener", "poll"]


def test_a_listener_that_cannot_start_falls_back_to_polling() -> None:
    def broken(push: Push) -> Any:
        raise ImportError("no module named google.cloud.firestore")

    follower = Follower(
        lambda _id: RUN[-1], quiet_view(), open_listener=broken, sleep=lambda _s: None
    )
    result = follower.follow("t1", timeout_s=10)
    assert result.via == "polling" and "ImportError" in (result.fallback_reason or "")


def test_a_task_the_listener_does_not_see_is_asked_for_directly() -> None:
    def open_listener(push: Push) -> FakeWatch:
        push("t1", None)
        return FakeWatch()

    follower = Follower(
        lambda _id: RUN[-1], quiet_view(), open_listener=open_listener, sleep=lambda _s: None
    )
    result = follower.follow("t1", timeout_s=10)
    assert result.fallback_reason == "the listener does not see the task"
    assert result.task["status"] == "COMPLETED"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_polling_backs_off_exponentially_and_resets_on_change() -> None:
    fake = FakeTime()
    answers = [RUN[1]] * 6 + [RUN[2]] * 3 + [RUN[3]]
    follower = Follower(
        lambda _id: answers.pop(0),
        quiet_view(),
        open_listener=None,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    result = follower.follow("t1", timeout_s=600)
    assert result.task["status"] == "COMPLETED"
    assert fake.slept == [POLL_MIN_S, 1.0, 2.0, 4.0, POLL_MAX_S, POLL_MAX_S, POLL_MIN_S, 1.0, 2.0]


def test_polling_stops_at_the_timeout() -> None:
    fake = FakeTime()
    follower = Follower(
        lambda _id: RUN[1], quiet_view(), open_listener=None, clock=fake.clock, sleep=fake.sleep
    )
    result = follower.follow("t1", timeout_s=5)
    assert result.task["status"] == "PROCESSING"
    assert sum(fake.slept) == pytest.approx(5)


def test_public_task_drops_internal_fields_and_formats_timestamps() -> None:
    data = {
        "task_id": "t1",
        "status": "PENDING",
        "created_at": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        "lease_owner": "attempt-1",
        "lease_expires_at": None,
        "attempt_errors": [],
        "request": {"brief": "b"},
    }
    shown = public_task(data)
    assert shown == {
        "task_id": "t1",
        "status": "PENDING",
        "created_at": "2026-03-01T12:30:00Z",
        "request": {"brief": "b"},
    }


def test_plain_lines_without_a_terminal() -> None:
    stream = io.StringIO()
    view = ProgressView(stream, tty=False)
    for state in [RUN[0], RUN[0], RUN[1], RUN[3]]:
        view.update(state)
    view.finish()
    assert stream.getvalue().splitlines() == [
        "PENDING queued 0%",
        "PROCESSING reading_sources 5%",
        "COMPLETED done 100%",
    ]


def test_a_bar_on_a_terminal_and_draft_steps_above_it() -> None:
    stream = io.StringIO()
    view = ProgressView(stream, tty=True)
    view.update(RUN[1])
    draft = {"strategy_name": "Plan", "steps": [{"step_number": 1, "description": "Open"}]}
    view.update(RUN[2] | {"draft": draft})
    view.update(RUN[2] | {"draft": draft})  # nothing new
    view.finish()
    out = stream.getvalue()
    assert "\r\033[K[" in out and "  5%  processing: reading sources" in out
    assert " 40%  processing: writing strategy" in out
    assert out.count("  writing: Plan\n") == 1 and out.count("  1. Open\n") == 1
    assert out.endswith("\n")


def test_a_draft_s_control_codes_never_reach_the_terminal() -> None:
    """Only the view's own codes (clear the line) are written; the draft's are dropped."""
    stream = io.StringIO()
    view = ProgressView(stream, tty=True)
    evil = "Plan\x1b]52;c;ZXZpbA==\x07\x9b2J"
    draft = {"strategy_name": evil, "steps": [{"step_number": 1, "description": "\x1b[2JOpen"}]}
    view.update(RUN[2] | {"draft": draft})
    view.finish()
    out = stream.getvalue().replace("\r\033[K", "")
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "  writing: Plan]52;c;ZXZpbA==2J\n" in out and "  1. [2JOpen\n" in out


def test_quiet_shows_nothing() -> None:
    stream = io.StringIO()
    view = ProgressView(stream, quiet=True, tty=True)
    view.update(RUN[1])
    view.note("hello")
    view.finish()
    assert stream.getvalue() == ""
