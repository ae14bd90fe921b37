"""``up`` on a partly running stack (``dev/stack/recovery.py``, SPEC §7): what it starts
again, what it keeps, when it starts over or refuses, and what it says. Nothing here
starts a process: ``cmd_up`` runs on fake processes and a fake health.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dev import stack
from dev.stack import commands, plan
from tests.unit.stack_helpers import FakeProc, free_ports_env

PLANNED = tuple(p.name for p in plan({}, "test").all_parts)
EMULATORS = ("firestore", "pubsub", "auth", "storage")


def health_with(
    planned: tuple[str, ...] = PLANNED, /, **down: tuple[bool, bool]
) -> dict[str, tuple[bool, bool]]:
    """Every planned part alive and answering, except those given."""
    return {name: down.get(name, (True, True)) for name in planned}


DEAD = (False, False)
STUCK = (True, False)  # its process lives, its port does not answer


def test_a_stack_with_nothing_down_is_already_up() -> None:
    recovery = stack.plan_recovery("up", health_with(), PLANNED)
    assert recovery.action == "already_up"
    assert recovery.restart == ()
    # An environment that changed since does not matter while nothing needs starting.
    assert stack.plan_recovery("up", health_with(), PLANNED, ["X: 1 -> 2"]).action == "already_up"


def test_a_dead_worker_alone_is_started_again_and_everything_else_kept() -> None:
    recovery = stack.plan_recovery("up", health_with(process=DEAD), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("process",)
    assert recovery.down == {"process": "exited"}
    assert set(recovery.keep) == set(PLANNED) - {"process"}
    assert set(EMULATORS) <= set(recovery.keep)
    assert {"bridge", "bridge-deadletter", "bridge-webhooks"} <= set(recovery.keep)
    assert recovery.resubscribe == () and not recovery.requeue
    assert recovery.stop_first == () and recovery.lost == ()


def test_a_part_that_lives_but_does_not_answer_is_stopped_then_started() -> None:
    recovery = stack.plan_recovery("up", health_with(process=STUCK, web=DEAD), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("process", "web")
    assert recovery.stop_first == ("process",)
    assert recovery.down == {"process": "not answering", "web": "exited"}


def test_dead_functions_stand_in_and_web_start_again_in_plan_order() -> None:
    down = {name: DEAD for name in ("web", "status", "gemini", "submit", "deadletter", "webhooks")}
    recovery = stack.plan_recovery("up", health_with(**down), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("gemini", "submit", "status", "deadletter", "webhooks", "web")
    assert recovery.resubscribe == ()  # their bridges keep their subscriptions
    assert set(EMULATORS) <= set(recovery.keep)


def test_a_dead_bridge_starts_over_on_a_fresh_subscription_after_its_function() -> None:
    recovery = stack.plan_recovery("up", health_with(bridge=DEAD, process=DEAD), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("process", "bridge")  # the function first: the bridge needs it
    assert recovery.resubscribe == ("bridge",)
    assert recovery.requeue  # what only the old subscription held is published again
    assert "bridge-deadletter" in recovery.keep and "pubsub" in recovery.keep
    assert not recovery.requeue_webhooks  # the webhooks bridge keeps its subscription
    dead_letters = stack.plan_recovery("up", health_with(**{"bridge-deadletter": DEAD}), PLANNED)
    assert dead_letters.resubscribe == ("bridge-deadletter",) and dead_letters.requeue


def test_a_dead_webhooks_bridge_starts_over_and_its_deliveries_are_published_again() -> None:
    down = {"bridge-webhooks": DEAD, "webhooks": DEAD}
    recovery = stack.plan_recovery("up", health_with(**down), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("webhooks", "bridge-webhooks")  # the function first
    assert recovery.resubscribe == ("bridge-webhooks",)
    # What only its old subscription held were webhook deliveries, not tasks to run.
    assert recovery.requeue_webhooks and not recovery.requeue
    text = "\n".join(stack.describe_recovery("test", recovery, 52))
    assert "bridge-webhooks starts over on a fresh subscription" in text
    assert "the pending webhook deliveries are published again" in text
    both = stack.plan_recovery(
        "up", health_with(**{"bridge": DEAD, "bridge-webhooks": DEAD}), PLANNED
    )
    assert both.requeue and both.requeue_webhooks


@pytest.mark.parametrize("emulator", ["firestore", "pubsub"])
@pytest.mark.parametrize("how", [DEAD, STUCK])
def test_a_dead_firestore_or_pubsub_emulator_means_starting_over(
    emulator: str, how: tuple[bool, bool]
) -> None:
    recovery = stack.plan_recovery("up", health_with(**{emulator: how}, process=DEAD), PLANNED)
    assert recovery.action == "start_over"
    title = stack.EMULATOR_TITLES[emulator]
    assert f"the {title} emulator" in recovery.reason
    assert stack.EMULATOR_DATA[emulator] in recovery.reason  # says what went with it


@pytest.mark.parametrize("emulator", ["auth", "storage"])
def test_a_dead_auth_or_storage_emulator_starts_again_alone(emulator: str) -> None:
    recovery = stack.plan_recovery("up", health_with(**{emulator: DEAD}), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == (emulator,)
    assert recovery.lost == (emulator,)
    assert {"firestore", "pubsub"} <= set(recovery.keep)


def test_a_start_that_never_finished_is_started_over() -> None:
    recovery = stack.plan_recovery("starting", health_with(process=DEAD), PLANNED)
    assert recovery.action == "start_over"
    assert "did not finish" in recovery.reason
    assert stack.plan_recovery("starting", health_with(), PLANNED).action == "start_over"


def test_a_part_is_not_started_beside_others_planned_differently() -> None:
    recovery = stack.plan_recovery(
        "up", health_with(process=DEAD), PLANNED, ["LEASE_SECONDS: 52 -> 520"]
    )
    assert recovery.action == "refuse"
    assert recovery.restart == ()
    assert "LEASE_SECONDS: 52 -> 520" in recovery.reason
    # A part planned now but never started (or the reverse) is a different stack too.
    without_web = [name for name in PLANNED if name != "web"]
    other = stack.plan_recovery("up", health_with(process=DEAD), without_web)
    assert other.action == "refuse" and "web runs but is no longer planned" in other.reason


def running_state(stack_plan: stack.StackPlan) -> dict[str, object]:
    """state.json as `up` leaves it (no part recorded: the comparison needs none)."""
    return json.loads(json.dumps(stack.build_state(stack_plan, [], "up")))  # type: ignore[no-any-return]


def test_the_same_environment_plans_the_same_stack() -> None:
    env = {"MAX_TASK_ATTEMPTS": "4", "RETRY_MIN_BACKOFF_S": "5"}
    state = running_state(plan(env, "test"))
    assert state["settings"]["MAX_TASK_ATTEMPTS"] == 4  # type: ignore[index]
    assert "GEMINI_API_KEY" not in state["settings"]  # type: ignore[operator]
    assert stack.plan_differences(state, plan(env, "test")) == []
    # A variable the stack itself sets (a shell that evaluated `dev.stack env`) changes nothing.
    evaluated = env | {"UPLOADS_BUCKET": "demo-tinkerbell-uploads", "STATUS_BASE_URL": "x"}
    assert stack.plan_differences(state, plan(evaluated, "test")) == []


def test_settings_ports_and_gemini_that_changed_are_named() -> None:
    state = running_state(plan({}, "test"))
    changed = plan(
        {"MAX_TASK_ATTEMPTS": "4", "PROCESS_PORT": "28002", "GEMINI_API_KEY": "k"}, "test"
    )
    differences = stack.plan_differences(state, changed)
    assert "MAX_TASK_ATTEMPTS: 6 -> 4" in differences
    assert "PROCESS_PORT: 18002 -> 28002" in differences
    assert "Gemini: the stand-in -> the real API" in differences
    assert not any("GEMINI_API_KEY" in d for d in differences)  # never recorded


def test_settings_that_came_or_went_with_the_code_are_not_differences() -> None:
    state = running_state(plan({}, "test"))
    state["settings"] = {**state["settings"], "A_SETTING_REMOVED_SINCE": 1}  # type: ignore[dict-item]
    del state["settings"]["LOG_LEVEL"]  # type: ignore[attr-defined]
    assert stack.plan_differences(state, plan({}, "test")) == []
    del state["settings"]  # written before the settings were recorded: the rest is compared
    assert stack.plan_differences(state, plan({}, "test")) == []


def test_a_bridge_that_starts_over_reads_a_subscription_never_used_before() -> None:
    stack_plan = plan({}, "test")
    res = stack_plan.resources
    assert stack.subscription_name(res.subscription, 1) == "tinkerbell-tasks-process"
    assert stack.subscription_name(res.subscription, 2) == "tinkerbell-tasks-r2-process"
    second = stack.subscription_name(res.deadletter_subscription, 3)
    assert second == "tinkerbell-tasks-dead-r3-handler"
    webhooks = stack.subscription_name(res.webhooks_subscription, 2)
    assert webhooks == "tinkerbell-webhooks-r2-deliver"
    # The dead-letter attributes name the source subscription: its last word stays.
    assert stack.subscription_name(res.subscription, 7).endswith("-process")
    path = res.subscription_path("tinkerbell-tasks-r2-process")
    bridge = stack.with_subscription(stack_plan.bridge, path)
    assert bridge.argv[bridge.argv.index("--subscription") + 1] == path
    assert bridge.argv[bridge.argv.index("--endpoint") + 1] == "http://127.0.0.1:18002/"
    feeds = stack.bridge_feeds(res)
    assert feeds["bridge"].dead_letter_topic == res.dead_letter_topic
    assert feeds["bridge-deadletter"].dead_letter_topic is None
    assert feeds["bridge-webhooks"].dead_letter_topic is None
    assert stack.build_state(stack_plan, [], "up")["subscription_generations"] == {
        "bridge": 1,
        "bridge-deadletter": 1,
        "bridge-webhooks": 1,
    }


def test_up_says_what_it_starts_again_and_that_the_rest_keeps_its_data() -> None:
    recovery = stack.plan_recovery("up", health_with(process=DEAD), PLANNED)
    text = "\n".join(stack.describe_recovery("test", recovery, 52))
    assert "process (exited) down" in text
    assert "starting again: process\n" in text
    assert "left running as they are: firestore, pubsub, auth, storage," in text
    assert "the emulators keep their data (tasks;" in text
    assert "LEASE_SECONDS: 52 s" in text
    done = stack.describe_recovered("test", recovery, 1.5)
    assert "restarted process;" in done and "kept running (same processes, same data)" in done


def fake_stack(tmp_path: Path) -> tuple[stack.StackPlan, dict[str, object]]:
    """A plan on free ports under tmp_path, and the state.json of it running."""
    stack_plan = plan(free_ports_env(len(stack.PORT_DEFAULTS)), "test", root=tmp_path)
    stack_plan.log_dir.mkdir(parents=True)
    runnings = [
        stack.Running(spec, FakeProc(1000 + i), stack_plan.log_dir / f"{spec.name}.log", None)  # type: ignore[arg-type]
        for i, spec in enumerate(stack_plan.all_parts)
    ]
    state = stack.build_state(stack_plan, runnings, "up")
    stack.write_state(stack_plan.state_path, state)
    return stack_plan, state


def test_up_starts_only_the_dead_worker_and_stops_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plan, before = fake_stack(tmp_path)
    started: list[stack.PartSpec] = []

    def start(spec: stack.PartSpec, log_dir: Path, *, append: bool = False) -> stack.Running:
        assert append  # the log of a part started again continues the old one
        started.append(spec)
        return stack.Running(spec, FakeProc(9000 + len(started)), log_dir / "x.log", None)  # type: ignore[arg-type]

    def stopped(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("nothing may be stopped")

    parts = tuple(spec.name for spec in stack_plan.all_parts)
    monkeypatch.setattr(commands, "settled_health", lambda state: health_with(parts, process=DEAD))
    monkeypatch.setattr(commands, "start_part", start)
    monkeypatch.setattr(commands, "wait_all_ready", lambda *args, **kwargs: None)
    monkeypatch.setattr(commands, "stop_recorded", stopped)
    monkeypatch.setattr(commands, "stop_groups", stopped)
    monkeypatch.setattr(commands, "resubscribe", stopped)
    assert stack.cmd_up(stack_plan, timeout=1) == 0

    assert [spec.name for spec in started] == ["process"]
    after = stack.read_state(stack_plan.state_path)
    assert after is not None and after["status"] == "up"
    parts_before: dict[str, dict[str, object]] = before["parts"]  # type: ignore[assignment]
    assert after["parts"]["process"]["pid"] == 9001
    assert after["parts"]["process"]["restarts"] == 1
    for name, record in parts_before.items():
        if name != "process":
            assert after["parts"][name] == record, name
    out = capsys.readouterr().out
    assert "starting again: process\n" in out
    assert "is up again in" in out and "kept running (same processes, same data)" in out


# A resubscription: (bridge, its old subscription, the new one's generation).
Resubscribed = tuple[str, str | None, int]


def _up_with_a_dead_bridge(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bridge: str,
    requeued_tasks: list[str] | None,
    requeued_webhooks: list[str] | None,
) -> tuple[
    stack.StackPlan, dict[str, object], list[stack.PartSpec], list[tuple[str, str | None, int]]
]:
    """`up` on a stack whose `bridge` died: what it started again and resubscribed. A
    requeue given None must not be called."""
    stack_plan, before = fake_stack(tmp_path)
    started: list[stack.PartSpec] = []
    calls: list[Resubscribed] = []

    def start(spec: stack.PartSpec, log_dir: Path, *, append: bool = False) -> stack.Running:
        started.append(spec)
        return stack.Running(spec, FakeProc(9000 + len(started)), log_dir / "x.log", None)  # type: ignore[arg-type]

    def resubscribe(plan_: stack.StackPlan, name: str, old: str | None, generation: int) -> str:
        calls.append((name, old, generation))
        res = plan_.resources
        base = res.webhooks_subscription if name == "bridge-webhooks" else res.subscription
        return res.subscription_path(stack.subscription_name(base, generation))

    def requeue(done: list[str] | None, what: str) -> Callable[[stack.StackPlan], list[str]]:
        return lambda plan_: done if done is not None else pytest.fail(f"no {what} requeue")

    parts = tuple(spec.name for spec in stack_plan.all_parts)
    health = health_with(parts, **{bridge: DEAD})
    monkeypatch.setattr(commands, "settled_health", lambda state: health)
    monkeypatch.setattr(commands, "start_part", start)
    monkeypatch.setattr(commands, "wait_all_ready", lambda *args, **kwargs: None)
    monkeypatch.setattr(commands, "resubscribe", resubscribe)
    monkeypatch.setattr(commands, "requeue_unfinished", requeue(requeued_tasks, "task"))
    monkeypatch.setattr(commands, "requeue_webhooks", requeue(requeued_webhooks, "webhook"))
    assert stack.cmd_up(stack_plan, timeout=1) == 0
    return stack_plan, before, started, calls


def test_up_gives_a_dead_bridge_a_fresh_subscription_and_requeues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plan, before, started, calls = _up_with_a_dead_bridge(
        tmp_path, monkeypatch, "bridge", ["t1", "t2"], None
    )
    res = stack_plan.resources
    new_path = res.subscription_path("tinkerbell-tasks-r2-process")
    assert calls == [("bridge", res.subscription_path(res.subscription), 2)]
    assert [spec.name for spec in started] == ["bridge"]
    assert started[0].argv[started[0].argv.index("--subscription") + 1] == new_path
    after = stack.read_state(stack_plan.state_path)
    assert after is not None
    assert after["resources"]["subscription"] == new_path
    assert after["subscription_generations"] == {
        "bridge": 2,
        "bridge-deadletter": 1,
        "bridge-webhooks": 1,
    }
    assert after["parts"]["pubsub"] == before["parts"]["pubsub"]  # type: ignore[index]
    assert "published again: 2 unfinished task(s)" in capsys.readouterr().out


def test_up_gives_a_dead_webhooks_bridge_a_fresh_subscription_and_requeues_deliveries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plan, before, started, calls = _up_with_a_dead_bridge(
        tmp_path, monkeypatch, "bridge-webhooks", None, ["t1"]
    )
    res = stack_plan.resources
    new_path = res.subscription_path("tinkerbell-webhooks-r2-deliver")
    assert calls == [("bridge-webhooks", res.subscription_path(res.webhooks_subscription), 2)]
    assert [spec.name for spec in started] == ["bridge-webhooks"]
    assert started[0].argv[started[0].argv.index("--subscription") + 1] == new_path
    assert started[0].argv[started[0].argv.index("--endpoint") + 1] == (
        f"http://127.0.0.1:{stack_plan.ports['webhooks']}/"
    )
    after = stack.read_state(stack_plan.state_path)
    assert after is not None
    assert after["resources"]["webhooks_subscription"] == new_path
    assert after["resources"]["subscription"] == before["resources"]["subscription"]  # type: ignore[index]
    assert after["subscription_generations"]["bridge-webhooks"] == 2
    assert after["parts"]["webhooks"] == before["parts"]["webhooks"]  # type: ignore[index]
    out = capsys.readouterr().out
    assert "published again: 1 pending webhook delivery(ies)" in out
    assert "unfinished task(s)" not in out


def test_up_refuses_to_mix_settings_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plan, before = fake_stack(tmp_path)
    changed = dataclasses.replace(
        stack_plan, settings={**stack_plan.settings, "LEASE_SECONDS": 999}
    )
    parts = tuple(spec.name for spec in stack_plan.all_parts)
    monkeypatch.setattr(commands, "settled_health", lambda state: health_with(parts, process=DEAD))
    monkeypatch.setattr(commands, "start_part", lambda *a, **k: pytest.fail("nothing may start"))
    monkeypatch.setattr(commands, "stop_recorded", lambda *a, **k: pytest.fail("nothing may stop"))
    assert stack.cmd_up(changed, timeout=1) == 2
    assert stack.read_state(stack_plan.state_path) == before
    err = capsys.readouterr().err
    assert "nothing was started or stopped" in err and "LEASE_SECONDS:" in err
    assert "`make down` and then `make up`" in err
