"""The deploy rehearsal with Gemini through Vertex AI (issue 12): GEMINI_BACKEND=vertex.

infra/deploy.sh from a new project, twice, then infra/teardown.sh --yes, against the
stand-ins of tests/infra/standin/ (every gcloud call parsed by the installed gcloud).
No secret is asked for or made; the script enables Vertex AI, lets the worker call its
models and lets the Vertex AI service agent read the uploads bucket. A last test
switches a Developer API deployment to Vertex AI: the worker loses its secret.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.infra.conftest import PROJECT, Rehearsal, make_rehearsal, settings_as_deployed
from tests.infra.fixtures import PROJECT_NUMBER
from tests.infra.test_deploy_rehearsal import (
    FUNCTIONS,
    Rehearsed,
    deploy_twice_and_tear_down,
    explain,
    machine_lines,
    member,
    sa,
)

VERTEX = {"GEMINI_BACKEND": "vertex"}
VERTEX_AGENT = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
VERTEX_API = "aiplatform.googleapis.com"


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory, gcloud_parser: str) -> Rehearsed:
    rehearsal = make_rehearsal(tmp_path_factory.mktemp("rehearsal-vertex"), gcloud_parser)
    rehearsal.env.update(VERTEX)
    return deploy_twice_and_tear_down(rehearsal)


def test_every_call_passed_the_parsers(rehearsed: Rehearsed) -> None:
    assert rehearsed.rehearsal.records("rejects.jsonl") == []


def test_no_secret_is_needed_read_or_made(rehearsed: Rehearsed) -> None:
    assert "GEMINI_API_KEY" not in rehearsed.result("run1").stderr.replace("no secret", "")
    assert rehearsed.after_first["secrets"] == {}
    deploys = rehearsed.calls("run1") + rehearsed.calls("run2")
    assert not [c for c in deploys if c["command"].startswith("gcloud.secrets.")]
    assert "secretmanager.googleapis.com" not in rehearsed.after_first["services"]
    assert not any("secret:" in resource for resource in rehearsed.after_first["iam"])


def test_vertex_ai_is_enabled_before_its_agent_is_made(rehearsed: Rehearsed) -> None:
    assert VERTEX_API in rehearsed.after_first["services"]
    calls = rehearsed.calls("run1")
    enable = next(
        i
        for i, c in enumerate(calls)
        if c["command"] == "gcloud.services.enable" and VERTEX_API in c["argv"]
    )
    identity = next(
        i
        for i, c in enumerate(calls)
        if c["command"] == "gcloud.beta.services.identity.create"
        and f"--service={VERTEX_API}" in c["argv"]
    )
    assert enable < identity
    identities = rehearsed.after_first["service_identities"]
    assert identities[VERTEX_API] == VERTEX_AGENT.split(":")[1]


def test_least_privilege_bindings_for_vertex_ai(rehearsed: Rehearsed) -> None:
    iam = rehearsed.after_first["iam"]
    ours = {k: {role: sorted(m) for role, m in v.items() if m} for k, v in iam.items()}
    assert ours["project"] == {
        "roles/datastore.user": sorted(
            member(r) for r in ("api", "worker", "recovery", "webhooks")
        ),
        "roles/firebaseauth.admin": [member("api")],
        "roles/logging.logWriter": [member("builder")],
        "roles/artifactregistry.writer": [member("builder")],
        "roles/storage.objectAdmin": [member("builder")],
        # Only the worker calls Gemini.
        "roles/aiplatform.user": [member("worker")],
    }
    # The service agent reads the PDFs Vertex AI is given as gs:// URIs; nothing more.
    assert ours[f"bucket:{PROJECT}-uploads"] == {
        "roles/storage.objectUser": sorted(member(r) for r in ("api", "worker", "recovery")),
        "roles/storage.objectViewer": [VERTEX_AGENT],
    }


def test_functions_run_without_the_secret_and_know_the_backend(rehearsed: Rehearsed) -> None:
    functions = rehearsed.after_first["functions"]
    assert set(functions) == set(FUNCTIONS)
    settings = settings_as_deployed(VERTEX)
    for name, role in FUNCTIONS.items():
        config = functions[name]["serviceConfig"]
        assert config["serviceAccountEmail"] == sa(role)
        assert config["secretEnvironmentVariables"] == [], name
        env = config["environmentVariables"]
        assert env["GEMINI_BACKEND"] == "vertex"
        assert "GEMINI_API_KEY" not in env
        assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    worker = functions["process_task"]["serviceConfig"]
    assert worker["timeoutSeconds"] == settings.lease_seconds
    assert settings.uses_vertex and settings.vertex_project == PROJECT


def test_the_second_run_creates_nothing(rehearsed: Rehearsed) -> None:
    events = rehearsed.events("run2")
    assert [e for e in events if e["op"] != "update"] == []

    def inventory(state: dict[str, Any]) -> dict[str, Any]:
        state = copy.deepcopy(state)
        for function in state["functions"].values():
            function.pop("updateTime")
        state["firebase"].pop("releases")
        return state

    assert inventory(rehearsed.after_second) == inventory(rehearsed.after_first)
    lines = machine_lines(rehearsed.result("run2").stdout)
    assert lines == machine_lines(rehearsed.result("run1").stdout)


def test_teardown_leaves_no_binding_of_ours(rehearsed: Rehearsed) -> None:
    state = rehearsed.after_teardown
    for kind in ("functions", "buckets", "service_accounts", "topics"):
        assert state[kind] == {}, kind
    leftover = {
        resource: policy
        for resource, policy in state["iam"].items()
        if any("tinkerbell-" in m or "gcp-sa-aiplatform" in m for ms in policy.values() for m in ms)
    }
    assert leftover == {}


def test_a_vertex_project_other_than_the_deployed_one_is_refused_first(
    rehearsal: Rehearsal,
) -> None:
    result = rehearsal.run(
        "other", ["bash", "infra/deploy.sh"], **VERTEX, GEMINI_VERTEX_PROJECT="someone-else"
    )
    assert result.returncode != 0
    assert "GEMINI_VERTEX_PROJECT=someone-else" in result.stderr
    assert rehearsal.records("calls.jsonl") == []


def test_switching_a_developer_deployment_to_vertex_drops_the_secret(
    rehearsal: Rehearsal,
) -> None:
    # A Developer API deployment first: its API, its secret, then deploy.sh.
    enable = [
        "gcloud",
        f"--project={PROJECT}",
        "services",
        "enable",
        "secretmanager.googleapis.com",
    ]
    assert rehearsal.run("enable", enable).returncode == 0
    create = (
        "printf %s x | gcloud secrets create GEMINI_API_KEY --data-file=- "
        f"--replication-policy=automatic --project={PROJECT}"
    )
    # The operator, by hand, some minutes after enabling the API (no first-run answer).
    created = rehearsal.run("secret", ["bash", "-c", create], REHEARSAL_FRESH_FAULTS="0")
    assert created.returncode == 0, explain(created)
    developer = rehearsal.run("developer", ["bash", "infra/deploy.sh"])
    assert developer.returncode == 0, explain(developer)
    worker = rehearsal.state()["functions"]["process_task"]["serviceConfig"]
    assert [s["secret"] for s in worker["secretEnvironmentVariables"]] == ["GEMINI_API_KEY"]

    switched = rehearsal.run("vertex", ["bash", "infra/deploy.sh"], **VERTEX)
    assert switched.returncode == 0, explain(switched)
    functions = rehearsal.state()["functions"]
    for name in FUNCTIONS:
        assert functions[name]["serviceConfig"]["secretEnvironmentVariables"] == [], name
    env = functions["process_task"]["serviceConfig"]["environmentVariables"]
    assert env["GEMINI_BACKEND"] == "vertex"
    assert rehearsal.records("rejects.jsonl") == []
