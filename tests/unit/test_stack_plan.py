"""The pure planning half of ``dev/stack/`` (SPEC §7): ports, Gemini, environments.

Nothing here starts a process, except the kill-part / start-part test, which runs
a tiny ``http.server`` as a stand-in part; the port checks bind sockets on loopback only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev import stack
from dev.stack import PLACEHOLDER_GEMINI_KEY, PlanError, commands, plan

DEV_PORTS = {
    "firestore": 8080,
    "pubsub": 8085,
    "auth": 9099,
    "auth_hub": 4400,
    "auth_logging": 4500,
    "storage": 9199,
    "gemini": 8090,
    "submit": 8001,
    "process": 8002,
    "status": 8003,
    "deadletter": 8012,
    "web": 5000,
}
EMULATOR_VARIABLES = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
)


def part(stack_plan: stack.StackPlan, name: str) -> stack.PartSpec:
    return next(p for p in stack_plan.all_parts if p.name == name)


# ------------------------------------------------------------------ ports


def test_dev_stack_uses_the_conventional_ports() -> None:
    assert plan({}, "dev").ports == DEV_PORTS


def test_test_stack_shifts_every_port_by_10000() -> None:
    ports = plan({}, "test").ports
    assert ports == {name: port + 10_000 for name, port in DEV_PORTS.items()}
    assert [ports[n] for n in ("firestore", "pubsub", "auth", "storage", "gemini")] == [
        18080,
        18085,
        19099,
        19199,
        18090,
    ]
    assert [ports[n] for n in ("submit", "process", "status", "web")] == [
        18001,
        18002,
        18003,
        15000,
    ]


def test_each_port_is_overridable_by_its_variable() -> None:
    env = {
        "FIRESTORE_PORT": "28080",
        "PUBSUB_PORT": "28085",
        "AUTH_PORT": "29099",
        "STORAGE_PORT": "29199",
        "GEMINI_PORT": "28090",
        "SUBMIT_PORT": "28001",
        "PROCESS_PORT": "28002",
        "STATUS_PORT": "28003",
        "WEB_PORT": "25000",
    }
    ports = plan(env, "test").ports
    assert ports["firestore"] == 28080
    assert ports["pubsub"] == 28085
    assert ports["auth"] == 29099
    assert ports["storage"] == 29199
    assert ports["gemini"] == 28090
    assert (ports["submit"], ports["process"], ports["status"], ports["web"]) == (
        28001,
        28002,
        28003,
        25000,
    )
    assert ports["auth_hub"] == 14400  # not overridden: still the test stack's


def test_overridden_ports_reach_commands_and_environments() -> None:
    stack_plan = plan({"FIRESTORE_PORT": "28080", "PROCESS_PORT": "28002"}, "dev")
    assert "--host-port=127.0.0.1:28080" in part(stack_plan, "firestore").argv
    assert "--port=28002" in part(stack_plan, "process").argv
    assert stack_plan.functions_env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:28080"
    assert stack_plan.client_env["PROCESS_URL"] == "http://127.0.0.1:28002"
    assert "http://127.0.0.1:28002/" in stack_plan.bridge.argv


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_bad_port_is_refused(value: str) -> None:
    with pytest.raises(PlanError, match="PUBSUB_PORT"):
        plan({"PUBSUB_PORT": value}, "dev")


def test_two_parts_on_one_port_are_refused() -> None:
    with pytest.raises(PlanError, match="8085"):
        plan({"FIRESTORE_PORT": "8085"}, "dev")


def test_an_unknown_stack_name_is_refused() -> None:
    with pytest.raises(PlanError, match="stack name"):
        plan({}, "prod")


def test_everything_binds_loopback_only() -> None:
    stack_plan = plan({}, "dev")
    for spec in stack_plan.all_parts:
        joined = " ".join(spec.argv)
        assert "0.0.0.0" not in joined
        if spec.ports:
            assert "127.0.0.1" in joined or spec.name == "auth", spec.name
    config = json.loads(stack_plan.files[stack_plan.stack_dir / "firebase.json"])
    hosts = {config["emulators"][key]["host"] for key in ("auth", "hub", "logging")}
    assert hosts == {"127.0.0.1"}
    assert config["emulators"]["auth"]["port"] == 9099


# ------------------------------------------------------------------ project


def test_project_defaults_to_demo_tinkerbell_and_is_overridable() -> None:
    assert plan({}, "dev").project == "demo-tinkerbell"
    other = plan({"GOOGLE_CLOUD_PROJECT": "demo-other"}, "dev")
    assert other.project == "demo-other"
    assert other.functions_env["GOOGLE_CLOUD_PROJECT"] == "demo-other"
    assert "--project=demo-other" in part(other, "pubsub").argv
    assert other.resources.bucket == "demo-other-uploads"


def test_a_real_project_is_refused() -> None:
    # The settings refuse emulator variables for a real project; so does the stack.
    with pytest.raises(PlanError, match="demo-"):
        plan({"GOOGLE_CLOUD_PROJECT": "my-prod-project"}, "dev")


# ------------------------------------------------------------------ Gemini


def test_standin_starts_when_neither_base_url_nor_key_is_set() -> None:
    stack_plan = plan({}, "dev")
    assert stack_plan.gemini.start_standin
    assert any(p.name == "gemini" for p in stack_plan.parts)
    assert stack_plan.functions_env["GEMINI_BASE_URL"] == "http://127.0.0.1:8090"
    assert stack_plan.functions_env["GEMINI_API_KEY"] == PLACEHOLDER_GEMINI_KEY
    assert stack_plan.client_env["GEMINI_STANDIN_URL"] == "http://127.0.0.1:8090"
    assert "gemini" in stack_plan.needed_ports()


def test_standin_listens_on_the_gemini_port_of_the_stack() -> None:
    standin = part(plan({}, "test"), "gemini")
    assert standin.argv[-4:] == ("--host", "127.0.0.1", "--port", "18090")
    assert standin.probe.expect_pid  # the health answer must come from our process


def test_a_given_base_url_is_used_without_standin() -> None:
    stack_plan = plan({"GEMINI_BASE_URL": "http://127.0.0.1:9999"}, "dev")
    assert not stack_plan.gemini.start_standin
    assert all(p.name != "gemini" for p in stack_plan.parts)
    assert stack_plan.functions_env["GEMINI_BASE_URL"] == "http://127.0.0.1:9999"
    assert stack_plan.functions_env["GEMINI_API_KEY"] == PLACEHOLDER_GEMINI_KEY
    assert "GEMINI_STANDIN_URL" not in stack_plan.client_env
    assert "gemini" not in stack_plan.needed_ports()


def test_an_api_key_alone_means_the_real_api() -> None:
    stack_plan = plan({"GEMINI_API_KEY": "real-key"}, "dev")
    assert not stack_plan.gemini.start_standin
    assert all(p.name != "gemini" for p in stack_plan.parts)
    assert "GEMINI_BASE_URL" not in stack_plan.functions_env
    assert stack_plan.functions_env["GEMINI_API_KEY"] == "real-key"


def test_base_url_and_key_are_both_kept() -> None:
    env = {"GEMINI_BASE_URL": "http://127.0.0.1:9999", "GEMINI_API_KEY": "k"}
    stack_plan = plan(env, "dev")
    assert not stack_plan.gemini.start_standin
    assert stack_plan.functions_env["GEMINI_BASE_URL"] == "http://127.0.0.1:9999"
    assert stack_plan.functions_env["GEMINI_API_KEY"] == "k"


def test_an_empty_base_url_counts_as_unset() -> None:
    stack_plan = plan({"GEMINI_BASE_URL": "", "GEMINI_API_KEY": ""}, "dev")
    assert stack_plan.gemini.start_standin


def test_the_api_key_never_reaches_the_state_env() -> None:
    stack_plan = plan({"GEMINI_API_KEY": "real-key"}, "dev")
    assert "real-key" not in json.dumps(dict(stack_plan.client_env))
    assert "real-key" not in repr(stack_plan)


# ------------------------------------------------------------------ environments


def test_functions_env_points_every_client_library_at_the_stack() -> None:
    env = plan({}, "dev").functions_env
    assert env["GOOGLE_CLOUD_PROJECT"] == "demo-tinkerbell"
    assert env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:8080"
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:8085"
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9199"
    assert env["FIREBASE_AUTH_EMULATOR_HOST"] == "127.0.0.1:9099"
    assert env["STATUS_BASE_URL"] == "http://127.0.0.1:8003"
    assert env["UPLOADS_BUCKET"] == "demo-tinkerbell-uploads"


def test_functions_env_inherits_the_callers_settings_and_overrides_emulators() -> None:
    caller = {
        "GEMINI_STRATEGY_TIMEOUT_S": "5",
        "RETRY_MIN_BACKOFF_S": "1",
        "PATH": "/usr/bin",
        # a shell that evaluated another stack's env must not leak into this one
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
    }
    env = plan(caller, "test").functions_env
    assert env["GEMINI_STRATEGY_TIMEOUT_S"] == "5"
    assert env["RETRY_MIN_BACKOFF_S"] == "1"
    assert env["PATH"] == "/usr/bin"
    assert env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:18080"


def test_each_function_runs_its_own_target_with_its_own_gunicorn_socket() -> None:
    stack_plan = plan({}, "dev")
    runtime_dirs = set()
    for name, target, signature in (
        ("submit", "submit_strategy", "http"),
        ("process", "process_task", "cloudevent"),
        ("status", "task_status", "http"),
        ("deadletter", "dead_letter_task", "cloudevent"),
    ):
        spec = part(stack_plan, name)
        assert f"--target={target}" in spec.argv
        assert f"--signature-type={signature}" in spec.argv
        assert "--host=127.0.0.1" in spec.argv
        runtime_dirs.add(spec.env["XDG_RUNTIME_DIR"])
    assert len(runtime_dirs) == 4
    assert int(part(stack_plan, "process").env["THREADS"]) >= 32


def test_client_env_has_what_tests_need() -> None:
    env = plan({}, "test").client_env
    for key in EMULATOR_VARIABLES:
        assert key in env
    assert env["SUBMIT_URL"] == "http://127.0.0.1:18001"
    assert env["STATUS_URL"] == "http://127.0.0.1:18003"
    assert env["PROCESS_URL"] == "http://127.0.0.1:18002"
    assert env["DEADLETTER_URL"] == "http://127.0.0.1:18012"
    assert env["AUTH_EMULATOR_URL"] == "http://127.0.0.1:19099"
    assert env["GEMINI_STANDIN_URL"] == "http://127.0.0.1:18090"
    assert env["TB_STACK_STATE"].endswith(".stack/test/state.json")


def test_gcloud_gets_its_own_config_dir_without_network_features() -> None:
    stack_plan = plan({}, "dev")
    env = part(stack_plan, "firestore").env
    assert env["CLOUDSDK_CONFIG"] == str(stack_plan.stack_dir / "gcloud")
    assert env["CLOUDSDK_CORE_DISABLE_USAGE_REPORTING"] == "true"
    assert env["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] == "true"


# ------------------------------------------------------------------ resources


def test_resources_follow_the_settings() -> None:
    env = {
        "ACK_DEADLINE_SECONDS": "60",
        "LEASE_SECONDS": "40",
        "OUTCOME_WRITE_TIMEOUT_S": "1",
        "GEMINI_STRATEGY_TIMEOUT_S": "4",
        "GEMINI_IMAGE_TIMEOUT_S": "4",
        "GEMINI_UPLOAD_TIMEOUT_S": "1.5",
        "FILE_ACTIVE_TIMEOUT_S": "3",
        "GEMINI_RETRY_INITIAL_DELAY_S": "0.05",
        "GEMINI_RETRY_MAX_DELAY_S": "0.2",
        "GEMINI_RETRY_JITTER_S": "0.05",
        "RETRY_MIN_BACKOFF_S": "1",
        "RETRY_MAX_BACKOFF_S": "5",
        "MAX_DELIVERY_ATTEMPTS": "22",
    }
    resources = plan(env, "test").resources
    assert resources.topic == "tinkerbell-tasks"
    assert resources.subscription == "tinkerbell-tasks-process"
    assert resources.inspect_subscription == f"{resources.dead_letter_topic}-inspect"
    assert (resources.ack_deadline_s, resources.min_backoff_s, resources.max_backoff_s) == (
        60,
        1,
        5,
    )
    assert resources.max_delivery_attempts == 22
    assert "--timeout" in plan(env, "test").bridge.argv
    assert resources.deadletter_subscription == f"{resources.dead_letter_topic}-handler"


def test_dead_letters_reach_the_handler_through_a_bridge_of_their_own() -> None:
    stack_plan = plan({}, "test")
    res = stack_plan.resources
    by_name = {spec.name: spec for spec in stack_plan.bridges}
    assert set(by_name) == {"bridge", "bridge-deadletter"}

    def arg(spec: stack.PartSpec, flag: str) -> str:
        return spec.argv[spec.argv.index(flag) + 1]

    process, dead = by_name["bridge"], by_name["bridge-deadletter"]
    assert arg(process, "--subscription") == res.subscription_path(res.subscription)
    assert arg(process, "--endpoint") == "http://127.0.0.1:18002/"
    assert arg(dead, "--subscription") == res.subscription_path(res.deadletter_subscription)
    assert arg(dead, "--endpoint") == "http://127.0.0.1:18012/"
    assert stack_plan.ports["deadletter"] == stack_plan.ports["process"] + 10
    # Both wait for their function, and stop before everything else.
    assert {"process", "deadletter"} <= stack.BRIDGE_NEEDS
    assert all(stack.is_bridge(spec.name) for spec in stack_plan.bridges)
    assert not any(stack.is_bridge(spec.name) for spec in stack_plan.parts)


def test_only_function_like_parts_may_be_killed_alone() -> None:
    assert "process" in stack.RESTARTABLE_PARTS
    assert "deadletter" in stack.RESTARTABLE_PARTS
    for name in ("bridge", "bridge-deadletter", "pubsub", "firestore", "auth", "storage"):
        assert name not in stack.RESTARTABLE_PARTS
    state = {"parts": {"bridge": {"pid": 1}}}
    with pytest.raises(stack.PartError, match="cannot be killed"):
        stack._record_of(state, "test", "bridge")
    with pytest.raises(stack.PartError, match="not running"):
        stack._record_of(None, "test", "process")


def test_settings_that_break_the_timing_rules_are_refused_before_starting() -> None:
    with pytest.raises(PlanError, match="LEASE_SECONDS"):
        plan({"LEASE_SECONDS": "30", "ACK_DEADLINE_SECONDS": "60"}, "dev")


def test_settings_are_read_from_the_given_env_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_TOPIC", "from-os-environ")
    assert plan({}, "dev").resources.topic == "tinkerbell-tasks"


def test_bridge_ready_message_matches_the_bridge() -> None:
    from dev import pubsub_push

    assert stack.BRIDGE_READY_MESSAGE == pubsub_push.READY_MESSAGE


# ------------------------------------------------------------------ port checks


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that a listening socket of this test holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_ports_env(count: int) -> dict[str, str]:
    """Port variables set to ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    variables = [variable for variable, _default in stack.PORT_DEFAULTS.values()]
    return dict(zip(variables, map(str, ports), strict=False))


def test_a_held_port_is_reported_busy(held_port: int) -> None:
    assert not stack.port_is_free(held_port)


def test_the_planner_refuses_a_port_in_use(held_port: int) -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS)) | {"PUBSUB_PORT": str(held_port)}
    problems = stack.busy_ports(plan(env, "test"))
    assert len(problems) == 1
    assert str(held_port) in problems[0]
    assert "pubsub" in problems[0] and "PUBSUB_PORT" in problems[0]


def test_free_ports_raise_no_problem() -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS))
    assert stack.busy_ports(plan(env, "test")) == []


def test_up_refuses_and_starts_nothing_when_a_port_is_taken(
    held_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS)) | {"STORAGE_PORT": str(held_port)}
    stack_plan = plan(env, "test", root=tmp_path, python=Path(sys.executable))
    started: list[str] = []
    monkeypatch.setattr(commands, "start_part", lambda spec, log_dir: started.append(spec.name))
    monkeypatch.setattr(commands, "missing_tools", lambda _plan: [])
    assert stack.cmd_up(stack_plan, timeout=1) == 2
    assert started == []
    assert not stack_plan.state_path.exists()
    assert f"port {held_port} (storage) is already in use" in capsys.readouterr().err


# ------------------------------------------------------------------ kill-part / start-part


def test_a_killed_part_starts_again_with_its_env_and_state_follows(tmp_path: Path) -> None:
    port = int(free_ports_env(1)["FIRESTORE_PORT"])
    stack_dir = tmp_path / ".stack" / "test"
    (stack_dir / "logs").mkdir(parents=True)
    url = f"http://127.0.0.1:{port}"
    spec = stack.PartSpec(
        name="web",
        argv=(sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)),
        env={**os.environ, "TB_RESTART_MARK": "kept"},
        cwd=tmp_path,
        ports={"web": port},
        probe=stack.Probe(url=f"{url}/"),
        url=url,
    )
    first = stack.start_part(spec, stack_dir / "logs")
    state_path = stack_dir / "state.json"
    try:
        stack.wait_all_ready([first], 20, time.monotonic())
        stack.write_state(
            state_path, {"name": "test", "status": "up", "parts": {"web": first.record()}}
        )

        killed = stack.kill_part("test", "web", root=tmp_path)
        assert first.proc.wait(timeout=5) == -9  # SIGKILL, no grace
        assert "killed_at" in killed and not stack.part_alive(killed)
        assert stack.healthy_parts(stack.read_state(state_path) or {}) == {"web": (False, False)}
        with pytest.raises(stack.PartError, match="not running"):
            stack.kill_part("test", "web", root=tmp_path)

        again = stack.start_part_again("test", "web", root=tmp_path, timeout=20)
        assert again["pid"] != first.pid and stack.part_alive(again)
        assert again["restarts"] == 1
        environ = Path(f"/proc/{again['pid']}/environ").read_bytes()
        assert b"TB_RESTART_MARK=kept" in environ
        assert stack.read_state(state_path)["parts"]["web"]["pid"] == again["pid"]  # type: ignore[index]
        assert stack.http_get(f"{url}/") is not None
        assert not (stack_dir / "run" / "web.launch.json").exists()
        with pytest.raises(stack.PartError, match="is running"):
            stack.start_part_again("test", "web", root=tmp_path)
    finally:
        state = stack.read_state(state_path)
        if state:
            stack.stop_recorded(state, timeout=5)  # what `down` does
    assert state is not None and not stack.part_alive(state["parts"]["web"])


# ------------------------------------------------------------------ `up` on a partly running stack

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
    assert {"bridge", "bridge-deadletter"} <= set(recovery.keep)  # the subscription stays
    assert recovery.resubscribe == () and not recovery.requeue
    assert recovery.stop_first == () and recovery.lost == ()


def test_a_part_that_lives_but_does_not_answer_is_stopped_then_started() -> None:
    recovery = stack.plan_recovery("up", health_with(process=STUCK, web=DEAD), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("process", "web")
    assert recovery.stop_first == ("process",)
    assert recovery.down == {"process": "not answering", "web": "exited"}


def test_dead_functions_stand_in_and_web_start_again_in_plan_order() -> None:
    down = {name: DEAD for name in ("web", "status", "gemini", "submit", "deadletter")}
    recovery = stack.plan_recovery("up", health_with(**down), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("gemini", "submit", "status", "deadletter", "web")
    assert set(EMULATORS) <= set(recovery.keep)


def test_a_dead_bridge_starts_over_on_a_fresh_subscription_after_its_function() -> None:
    recovery = stack.plan_recovery("up", health_with(bridge=DEAD, process=DEAD), PLANNED)
    assert recovery.action == "restart_parts"
    assert recovery.restart == ("process", "bridge")  # the function first: the bridge needs it
    assert recovery.resubscribe == ("bridge",)
    assert recovery.requeue  # what only the old subscription held is published again
    assert "bridge-deadletter" in recovery.keep and "pubsub" in recovery.keep
    dead_letters = stack.plan_recovery("up", health_with(**{"bridge-deadletter": DEAD}), PLANNED)
    assert dead_letters.resubscribe == ("bridge-deadletter",) and dead_letters.requeue


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
    # The dead-letter attributes name the source subscription: its last word stays.
    assert stack.subscription_name(res.subscription, 7).endswith("-process")
    path = res.subscription_path("tinkerbell-tasks-r2-process")
    bridge = stack.with_subscription(stack_plan.bridge, path)
    assert bridge.argv[bridge.argv.index("--subscription") + 1] == path
    assert bridge.argv[bridge.argv.index("--endpoint") + 1] == "http://127.0.0.1:18002/"
    feeds = stack.bridge_feeds(res)
    assert feeds["bridge"].dead_letter_topic == res.dead_letter_topic
    assert feeds["bridge-deadletter"].dead_letter_topic is None
    assert stack.build_state(stack_plan, [], "up")["subscription_generations"] == {
        "bridge": 1,
        "bridge-deadletter": 1,
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


class FakeProc:
    """Stands for a Popen: alive, with a pid no real process of ours has."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode = None

    def poll(self) -> None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return 0


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


def test_up_gives_a_dead_bridge_a_fresh_subscription_and_requeues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plan, before = fake_stack(tmp_path)
    started: list[stack.PartSpec] = []
    calls: list[tuple[str, str | None, int]] = []

    def start(spec: stack.PartSpec, log_dir: Path, *, append: bool = False) -> stack.Running:
        started.append(spec)
        return stack.Running(spec, FakeProc(9000 + len(started)), log_dir / "x.log", None)  # type: ignore[arg-type]

    def resubscribe(plan_: stack.StackPlan, bridge: str, old: str | None, generation: int) -> str:
        calls.append((bridge, old, generation))
        res = plan_.resources
        return res.subscription_path(stack.subscription_name(res.subscription, generation))

    parts = tuple(spec.name for spec in stack_plan.all_parts)
    monkeypatch.setattr(commands, "settled_health", lambda state: health_with(parts, bridge=DEAD))
    monkeypatch.setattr(commands, "start_part", start)
    monkeypatch.setattr(commands, "wait_all_ready", lambda *args, **kwargs: None)
    monkeypatch.setattr(commands, "resubscribe", resubscribe)
    monkeypatch.setattr(commands, "requeue_unfinished", lambda plan_: ["t1", "t2"])
    assert stack.cmd_up(stack_plan, timeout=1) == 0

    res = stack_plan.resources
    new_path = res.subscription_path("tinkerbell-tasks-r2-process")
    assert calls == [("bridge", res.subscription_path(res.subscription), 2)]
    assert [spec.name for spec in started] == ["bridge"]
    assert started[0].argv[started[0].argv.index("--subscription") + 1] == new_path
    after = stack.read_state(stack_plan.state_path)
    assert after is not None
    assert after["resources"]["subscription"] == new_path
    assert after["subscription_generations"] == {"bridge": 2, "bridge-deadletter": 1}
    assert after["parts"]["pubsub"] == before["parts"]["pubsub"]  # type: ignore[index]
    assert "published again: 2 unfinished task(s)" in capsys.readouterr().out


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


def test_a_part_started_again_is_not_ready_on_its_predecessors_log_line(tmp_path: Path) -> None:
    log = tmp_path / "bridge.log"
    log.write_text(f'{{"message": "{stack.BRIDGE_READY_MESSAGE}"}}\nBindException\n')
    spec = stack.PartSpec(
        name="bridge",
        argv=("true",),
        env={},
        cwd=tmp_path,
        ports={},
        probe=stack.Probe(log_line=stack.BRIDGE_READY_MESSAGE, fail_lines=("BindException",)),
    )
    offset = log.stat().st_size
    again = stack.Running(spec, FakeProc(1), log, None, log_offset=offset)  # type: ignore[arg-type]
    assert not stack.check_ready(again)  # neither ready nor failed: the old lines don't count
    with log.open("a") as handle:
        handle.write(f"{stack.BRIDGE_READY_MESSAGE}\n")
    assert stack.check_ready(again)
    first = stack.Running(spec, FakeProc(1), log, None)  # type: ignore[arg-type]
    with pytest.raises(stack.PartFailed, match="BindException"):
        stack.check_ready(first)
