"""The pure planning half of ``dev/stack/`` (SPEC §7): ports, project, Gemini,
environments, resources. Nothing here starts a process.

Its other halves: the processes (port checks, kill-part / start-part, readiness) in
test_stack_plan_processes.py; ``up`` on a partly running stack in
test_stack_plan_recovery.py.
"""

from __future__ import annotations

import json

import pytest

from dev import stack
from dev.stack import PLACEHOLDER_GEMINI_KEY, PlanError, plan
from dev.stack.config import STACK_PORT_OFFSET

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
    "webhooks": 8013,
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


def test_every_stack_has_ports_of_its_own_below_the_ephemeral_range() -> None:
    # Stacks run side by side (dev beside `make test`'s test and test2...): no port
    # of one may be a port of another, and none may be one Linux hands out itself.
    seen: dict[int, str] = {}
    for name in STACK_PORT_OFFSET:
        for part_name, port in plan({}, name).ports.items():
            assert port < 32_768, (name, part_name, port)
            assert port not in seen, f"{name}/{part_name} and {seen[port]} share port {port}"
            seen[port] = f"{name}/{part_name}"


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
        "WEBHOOKS_PORT": "28013",
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
    assert ports["webhooks"] == 28013
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
        ("webhooks", "deliver_webhook", "cloudevent"),
    ):
        spec = part(stack_plan, name)
        assert f"--target={target}" in spec.argv
        assert f"--signature-type={signature}" in spec.argv
        assert "--host=127.0.0.1" in spec.argv
        runtime_dirs.add(spec.env["XDG_RUNTIME_DIR"])
    assert len(runtime_dirs) == 5
    assert int(part(stack_plan, "process").env["THREADS"]) >= 32


def test_client_env_has_what_tests_need() -> None:
    env = plan({}, "test").client_env
    for key in EMULATOR_VARIABLES:
        assert key in env
    assert env["SUBMIT_URL"] == "http://127.0.0.1:18001"
    assert env["STATUS_URL"] == "http://127.0.0.1:18003"
    assert env["PROCESS_URL"] == "http://127.0.0.1:18002"
    assert env["DEADLETTER_URL"] == "http://127.0.0.1:18012"
    assert env["WEBHOOKS_URL"] == "http://127.0.0.1:18013"
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
    assert resources.webhooks_topic == "tinkerbell-webhooks"
    assert resources.webhook_dead_letter_topic == "tinkerbell-webhooks-dead"
    assert resources.webhooks_subscription == "tinkerbell-webhooks-deliver"
    assert resources.webhook_inspect_subscription == "tinkerbell-webhooks-dead-inspect"
    renamed = plan(
        {"WEBHOOKS_TOPIC": "hooks", "WEBHOOK_DEAD_LETTER_TOPIC": "hooks-given-up"}, "test"
    ).resources
    assert (renamed.webhooks_subscription, renamed.webhook_inspect_subscription) == (
        "hooks-deliver",
        "hooks-given-up-inspect",
    )


def test_dead_letters_reach_the_handler_through_a_bridge_of_their_own() -> None:
    stack_plan = plan({}, "test")
    res = stack_plan.resources
    by_name = {spec.name: spec for spec in stack_plan.bridges}
    assert set(by_name) == {"bridge", "bridge-deadletter", "bridge-webhooks"}

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


def test_webhook_deliveries_reach_deliver_webhook_through_a_bridge_of_their_own() -> None:
    stack_plan = plan({}, "test")
    res = stack_plan.resources
    bridge = part(stack_plan, "bridge-webhooks")

    def arg(flag: str) -> str:
        return bridge.argv[bridge.argv.index(flag) + 1]

    assert arg("--subscription") == res.subscription_path("tinkerbell-webhooks-deliver")
    assert arg("--endpoint") == "http://127.0.0.1:18013/"
    assert arg("--max-in-flight") == "16"
    assert arg("--timeout") == str(res.ack_deadline_s)
    assert stack_plan.ports["webhooks"] == stack_plan.ports["process"] + 11
    assert "webhooks" in stack.BRIDGE_NEEDS  # the bridge waits for its function
    feed = stack.bridge_feeds(res)["bridge-webhooks"]
    assert (feed.base, feed.topic) == (res.webhooks_subscription, res.webhooks_topic)
    # deliver_webhook gives up by itself after about a day; a Pub/Sub dead-letter
    # policy (at most 100 attempts) would cut that short.
    assert feed.dead_letter_topic is None
    assert feed.state_key == "webhooks_subscription"
    assert stack.build_state(stack_plan, [], "up")["resources"][feed.state_key] == arg(
        "--subscription"
    )


def test_the_state_names_the_webhook_topics_and_subscriptions() -> None:
    stack_plan = plan({}, "test")
    resources = stack.build_state(stack_plan, [], "up")["resources"]
    project = "projects/demo-tinkerbell"
    assert resources["webhooks_topic"] == f"{project}/topics/tinkerbell-webhooks"
    assert resources["webhook_dead_letter_topic"] == f"{project}/topics/tinkerbell-webhooks-dead"
    assert resources["webhooks_subscription"] == (
        f"{project}/subscriptions/tinkerbell-webhooks-deliver"
    )
    assert resources["webhook_inspect_subscription"] == (
        f"{project}/subscriptions/tinkerbell-webhooks-dead-inspect"
    )
    # What was there before stays where the tests read it.
    assert resources["inspect_subscription"].endswith("-dead-inspect")
    assert resources["deadletter_subscription"].endswith("-dead-handler")


def test_the_functions_may_call_webhook_receivers_on_loopback() -> None:
    stack_plan = plan({}, "test")
    assert stack_plan.functions_env["WEBHOOK_ALLOW_LOOPBACK"] == "true"
    assert part(stack_plan, "webhooks").env["WEBHOOK_ALLOW_LOOPBACK"] == "true"
    assert part(stack_plan, "submit").env["WEBHOOK_ALLOW_LOOPBACK"] == "true"  # validation
    assert stack_plan.settings["WEBHOOK_ALLOW_LOOPBACK"] is True  # the settings accept it
    # The stack's own setting wins over a caller's (its receivers are on loopback).
    assert plan({"WEBHOOK_ALLOW_LOOPBACK": "false"}, "test").settings["WEBHOOK_ALLOW_LOOPBACK"]
    assert "WEBHOOK_ALLOW_LOOPBACK" not in stack_plan.client_env


def test_only_function_like_parts_may_be_killed_alone() -> None:
    assert "process" in stack.RESTARTABLE_PARTS
    assert "deadletter" in stack.RESTARTABLE_PARTS
    assert "webhooks" in stack.RESTARTABLE_PARTS
    bridges = ("bridge", "bridge-deadletter", "bridge-webhooks")
    for name in (*bridges, "pubsub", "firestore", "auth", "storage"):
        assert name not in stack.RESTARTABLE_PARTS
    state = {"parts": {"bridge": {"pid": 1}}}
    with pytest.raises(stack.PartError, match="cannot be killed"):
        stack._record_of(state, "test", "bridge")
    with pytest.raises(stack.PartError, match="not running"):
        stack._record_of(None, "test", "process")


def test_settings_that_break_the_timing_rules_are_refused_before_starting() -> None:
    with pytest.raises(PlanError, match="LEASE_SECONDS"):
        plan({"LEASE_SECONDS": "30", "ACK_DEADLINE_SECONDS": "60"}, "dev")


def test_list_settings_are_read_as_json_as_the_functions_read_them() -> None:
    # make test's TEST_SETTINGS give WEBHOOK_RETRY_SCHEDULE_S=[1,1]: a plain init value
    # would be the string, which the settings refuse.
    stack_plan = plan({"WEBHOOK_RETRY_SCHEDULE_S": "[1,1]", "WEBHOOK_TIMEOUT_S": "2"}, "test")
    assert stack_plan.settings["WEBHOOK_RETRY_SCHEDULE_S"] == [1.0, 1.0]
    assert stack_plan.settings["WEBHOOK_TIMEOUT_S"] == 2.0
    assert stack_plan.functions_env["WEBHOOK_RETRY_SCHEDULE_S"] == "[1,1]"  # passed on as is
    with pytest.raises(PlanError, match="webhook_retry_schedule_s"):
        plan({"WEBHOOK_RETRY_SCHEDULE_S": "[1,"}, "test")
    with pytest.raises(PlanError, match="WEBHOOK_RETRY_SCHEDULE_S"):
        plan({"WEBHOOK_RETRY_SCHEDULE_S": "[-1]"}, "test")


def test_settings_are_read_from_the_given_env_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_TOPIC", "from-os-environ")
    assert plan({}, "dev").resources.topic == "tinkerbell-tasks"


def test_bridge_ready_message_matches_the_bridge() -> None:
    from dev import pubsub_push

    assert stack.BRIDGE_READY_MESSAGE == pubsub_push.READY_MESSAGE
