"""The deploy rehearsal (issue 9): infra/deploy.sh from a new project, twice, then
infra/teardown.sh --yes, against the gcloud, firebase and node stand-ins of
tests/infra/standin/, every gcloud call parsed by the installed gcloud itself.

The sequence, as an operator meets it: a first run stops at the missing Gemini key
and prints the command that creates it; that command (run through the stand-in)
creates the secret; run 1 builds everything; run 2 creates nothing; teardown
removes what deploy made and keeps the secret.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import deploy_env
from infra.hosting import Backends, content_security_policy
from shared.settings import Settings
from tests.infra.conftest import (
    PROJECT,
    REGION,
    REPO,
    Rehearsal,
    make_rehearsal,
    settings_as_deployed,
)
from tests.infra.fixtures import PROJECT_NUMBER

FUNCTIONS = {
    "submit_strategy": "api",
    "task_status": "api",
    "process_task": "worker",
    "dead_letter_task": "recovery",
    "sweep_tasks": "recovery",
    "deliver_webhook": "webhooks",
}
RUNTIME_ACCOUNTS = ("api", "worker", "recovery", "webhooks", "trigger", "scheduler", "builder")
APIS = {
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firebase.googleapis.com",
    "firebasehosting.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "identitytoolkit.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    # Firebase Auth refreshes ID tokens there (issue 15, defect 9).
    "securetoken.googleapis.com",
    "storage.googleapis.com",
}
# An operator's override: it must reach every function, and nothing else of the shell.
OVERRIDES = {"LOG_LEVEL": "DEBUG", "MAX_TASKS_IN_FLIGHT_PER_USER": "4"}
PUBSUB_AGENT = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"


def sa(role: str) -> str:
    return f"tinkerbell-{role}@{PROJECT}.iam.gserviceaccount.com"


def member(role: str) -> str:
    return f"serviceAccount:{sa(role)}"


def machine_lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@dataclass
class Rehearsed:
    rehearsal: Rehearsal
    after_first: dict[str, Any]
    after_second: dict[str, Any]
    after_teardown: dict[str, Any]

    def result(self, name: str) -> Any:
        return self.rehearsal.results[name]

    def calls(self, run: str | None = None) -> list[dict[str, Any]]:
        calls = self.rehearsal.records("calls.jsonl")
        return [c for c in calls if run is None or c["run"] == run]

    def events(self, run: str) -> list[dict[str, Any]]:
        return [e for e in self.rehearsal.records("events.jsonl") if e["run"] == run]


def explain(result: Any) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr[-6000:]}"
    )


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory, gcloud_parser: str) -> Rehearsed:
    rehearsal = make_rehearsal(tmp_path_factory.mktemp("rehearsal"), gcloud_parser)
    rehearsal.env.update(OVERRIDES)

    first = rehearsal.run("run0", ["bash", "infra/deploy.sh"])
    assert first.returncode != 0, explain(first)
    command = re.search(
        r"^\s*(printf %s \"\$KEY\" \| gcloud secrets create .*)$", first.stderr, re.MULTILINE
    )
    assert command, explain(first)
    created = rehearsal.run("secret", ["bash", "-c", command[1]], KEY="AIza-rehearsal-key")
    assert created.returncode == 0, explain(created)

    return deploy_twice_and_tear_down(rehearsal)


def deploy_twice_and_tear_down(rehearsal: Rehearsal) -> Rehearsed:
    """deploy.sh, deploy.sh again, teardown.sh --yes: the project's state after each."""
    run1 = rehearsal.run("run1", ["bash", "infra/deploy.sh"])
    assert run1.returncode == 0, explain(run1)
    after_first = copy.deepcopy(rehearsal.state())
    run2 = rehearsal.run("run2", ["bash", "infra/deploy.sh"])
    assert run2.returncode == 0, explain(run2)
    after_second = copy.deepcopy(rehearsal.state())
    teardown = rehearsal.run("teardown", ["bash", "infra/teardown.sh", "--yes"])
    assert teardown.returncode == 0, explain(teardown)
    return Rehearsed(rehearsal, after_first, after_second, rehearsal.state())


def test_every_call_passed_gcloud_and_firebase_parsers(rehearsed: Rehearsed) -> None:
    assert rehearsed.rehearsal.records("rejects.jsonl") == []
    tools = {c["tool"] for c in rehearsed.calls()}
    assert tools == {"gcloud", "firebase", "node"}


def test_a_missing_key_stops_the_first_run_with_the_command(rehearsed: Rehearsed) -> None:
    stderr = rehearsed.result("run0").stderr
    assert "gcloud secrets create GEMINI_API_KEY --data-file=-" in stderr
    assert f"--project={PROJECT}" in stderr
    # Nothing but the APIs and their service agents before it stopped.
    made = {(e["op"], e["kind"]) for e in rehearsed.events("run0")}
    assert made == {("enable", "service"), ("create", "service_identity")}
    assert rehearsed.after_first["secrets"]["GEMINI_API_KEY"]["versions"] == 1


def test_apis_database_rules_and_indexes_come_before_any_function(rehearsed: Rehearsed) -> None:
    state = rehearsed.after_first
    assert set(state["services"]) >= APIS
    database = state["databases"]["(default)"]
    assert (database["locationId"], database["type"]) == ("eur3", "FIRESTORE_NATIVE")
    assert state["rules"] == (REPO / "firestore.rules").read_text()
    indexes = json.loads((REPO / "firestore.indexes.json").read_text())["indexes"]
    assert state["indexes"]["(default)"] == indexes

    calls = rehearsed.calls("run1")
    first_function = min(
        i for i, c in enumerate(calls) if c["command"] == "gcloud.functions.deploy"
    )
    created_db = next(
        i for i, c in enumerate(calls) if c["command"] == "gcloud.firestore.databases.create"
    )
    firestore_deploy = next(
        i
        for i, c in enumerate(calls)
        if c["command"] == "deploy" and "firestore:rules" in " ".join(c["argv"])
    )
    ttl = [i for i, c in enumerate(calls) if c["command"] == "gcloud.firestore.fields.ttls.update"]
    index_wait = max(
        i for i, c in enumerate(calls) if c["command"] == "gcloud.firestore.indexes.composite.list"
    )
    assert created_db < firestore_deploy < index_wait < first_function
    # TTL policies the indexes file does not declare are turned on with gcloud, between.
    assert all(firestore_deploy < i < index_wait for i in ttl)


def test_ttl_policies_cover_every_collection_with_an_expiry(rehearsed: Rehearsed) -> None:
    settings = settings_as_deployed(OVERRIDES)
    expected = {
        f"{getattr(settings, field)}/{expiry}" for field, expiry in deploy_env.TTL_FIELDS.items()
    }
    assert set(rehearsed.after_first["fields"]["(default)"]) == expected
    assert set(rehearsed.after_first["fields"]["(default)"].values()) == {"ACTIVE"}


def test_six_functions_with_their_entry_points_and_identities(rehearsed: Rehearsed) -> None:
    functions = rehearsed.after_first["functions"]
    assert set(functions) == set(FUNCTIONS)
    settings = settings_as_deployed(OVERRIDES)
    envs = []
    for name, role in FUNCTIONS.items():
        function = functions[name]
        assert function["buildConfig"]["entryPoint"] == name
        assert function["buildConfig"]["runtime"] == "python311"
        assert function["buildConfig"]["serviceAccount"] == (
            f"projects/{PROJECT}/serviceAccounts/{sa('builder')}"
        )
        assert function["serviceConfig"]["serviceAccountEmail"] == sa(role)
        # Only what the functions run is uploaded (.gcloudignore).
        tops = {path.split("/")[0] for path in function["sourceFiles"]}
        assert tops == {"main.py", "requirements.txt", "functions", "shared"}
        envs.append(function["serviceConfig"]["environmentVariables"])
    env = envs[0]
    assert all(other == env for other in envs), "every function gets the same env file"
    assert "GEMINI_API_KEY" not in env
    for key, value in OVERRIDES.items():
        assert env[key] == value
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    assert env["STATUS_BASE_URL"] == functions["task_status"]["url"]
    assert env["CORS_ORIGINS"] == f"https://{PROJECT}.web.app,https://{PROJECT}.firebaseapp.com"
    assert env["LEASE_SECONDS"] == str(settings.lease_seconds)
    assert env["UPLOADS_BUCKET"] == f"{PROJECT}-uploads"

    worker = functions["process_task"]
    assert worker["serviceConfig"]["timeoutSeconds"] == settings.lease_seconds
    assert [s["secret"] for s in worker["serviceConfig"]["secretEnvironmentVariables"]] == [
        "GEMINI_API_KEY"
    ]
    for name in set(FUNCTIONS) - {"process_task"}:
        assert functions[name]["serviceConfig"]["secretEnvironmentVariables"] == [], name
    for name, topic in (
        ("process_task", settings.tasks_topic),
        ("dead_letter_task", settings.dead_letter_topic),
        ("deliver_webhook", settings.webhooks_topic),
    ):
        trigger = functions[name]["eventTrigger"]
        assert trigger["pubsubTopic"] == f"projects/{PROJECT}/topics/{topic}"
        assert trigger["serviceAccountEmail"] == sa("trigger")
        assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"


def trigger_subscription(state: dict[str, Any], function: str) -> dict[str, Any]:
    """The Pub/Sub subscription of a function's Eventarc trigger."""
    trigger = state["functions"][function]["eventTrigger"]["trigger"]
    path = state["triggers"][trigger.rsplit("/", 1)[-1]]["transport"]["pubsub"]["subscription"]
    subscription: dict[str, Any] = state["subscriptions"][path.rsplit("/", 1)[-1]]
    return subscription


def test_the_worker_subscription_has_the_delivery_policy(rehearsed: Rehearsed) -> None:
    state = rehearsed.after_first
    settings = settings_as_deployed(OVERRIDES)
    subscription = trigger_subscription(state, "process_task")
    subscription_path = subscription["name"]
    assert subscription["ackDeadlineSeconds"] == settings.ack_deadline_seconds
    assert subscription["retryPolicy"] == {
        "minimumBackoff": f"{settings.retry_min_backoff_s}s",
        "maximumBackoff": f"{settings.retry_max_backoff_s}s",
    }
    assert subscription["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{PROJECT}/topics/{settings.dead_letter_topic}",
        "maxDeliveryAttempts": settings.max_delivery_attempts,
    }
    iam = state["iam"]
    assert iam[f"subscription:{subscription_path.rsplit('/', 1)[-1]}"] == {
        "roles/pubsub.subscriber": [PUBSUB_AGENT]
    }


def test_the_webhook_subscription_retries_for_the_whole_schedule(rehearsed: Rehearsed) -> None:
    """deliver_webhook gives up by itself after WEBHOOK_RETRY_SCHEDULE_S (about a day):
    its subscription has the tasks' backoff, no dead-letter policy (Pub/Sub's would cut
    the schedule at 100 deliveries), keeps a message beyond the schedule and waits for an
    attempt as long as the function may run."""
    state = rehearsed.after_first
    settings = settings_as_deployed(OVERRIDES)
    subscription = trigger_subscription(state, "deliver_webhook")
    assert "deadLetterPolicy" not in subscription
    assert subscription["retryPolicy"] == {
        "minimumBackoff": f"{settings.retry_min_backoff_s}s",
        "maximumBackoff": f"{settings.retry_max_backoff_s}s",
    }
    retention = int(subscription["messageRetentionDuration"].removesuffix("s"))
    # Two days: more than Eventarc's one, and than the schedule with every attempt and
    # Pub/Sub's redelivery delays.
    assert retention == 2 * 86400
    assert retention > deploy_env.webhook_span_s(settings) > 86400
    function = state["functions"]["deliver_webhook"]["serviceConfig"]
    assert function["timeoutSeconds"] == subscription["ackDeadlineSeconds"] == 60
    assert function["timeoutSeconds"] > settings.webhook_timeout_s + settings.publish_timeout_s
    assert function["availableMemory"] == "256Mi"
    # Nobody binds the Pub/Sub agent on it: it forwards no dead letters from here.
    assert f"subscription:{subscription['name'].rsplit('/', 1)[-1]}" not in state["iam"]


def test_given_up_webhooks_are_kept_for_an_operator(rehearsed: Rehearsed) -> None:
    settings = settings_as_deployed(OVERRIDES)
    dead = settings.webhook_dead_letter_topic
    inspect = rehearsed.after_first["subscriptions"][f"{dead}-inspect"]
    assert inspect["topic"] == f"projects/{PROJECT}/topics/{dead}"
    assert inspect["pushConfig"] == {}  # pull: read with gcloud pubsub subscriptions pull
    assert inspect["messageRetentionDuration"] == f"{7 * 86400}s"
    assert inspect["expirationPolicy"] == {}  # never deleted for want of use
    assert inspect["labels"] == {"app": "tinkerbell"}
    topics = rehearsed.after_first["topics"]
    assert {settings.webhooks_topic, dead} <= set(topics)
    assert f"{dead}-inspect" in rehearsed.result("run1").stderr


def test_least_privilege_bindings(rehearsed: Rehearsed) -> None:
    iam = rehearsed.after_first["iam"]
    settings = settings_as_deployed(OVERRIDES)
    ours = {k: {role: sorted(m) for role, m in v.items() if m} for k, v in iam.items()}
    assert ours == {
        "project": {
            "roles/datastore.user": sorted(
                member(r) for r in ("api", "worker", "recovery", "webhooks")
            ),
            "roles/firebaseauth.admin": [member("api")],
            "roles/logging.logWriter": [member("builder")],
            "roles/artifactregistry.writer": [member("builder")],
            "roles/storage.objectAdmin": [member("builder")],
        },
        # The sweeper (recovery) deletes expired upload objects.
        f"bucket:{PROJECT}-uploads": {
            "roles/storage.objectUser": sorted(member(r) for r in ("api", "worker", "recovery"))
        },
        f"topic:{settings.tasks_topic}": {
            "roles/pubsub.publisher": sorted(member(r) for r in ("api", "recovery"))
        },
        f"topic:{settings.dead_letter_topic}": {
            "roles/pubsub.publisher": sorted([member("worker"), PUBSUB_AGENT])
        },
        # Whoever ends a task announces it; deliver_webhook alone gives up deliveries.
        f"topic:{settings.webhooks_topic}": {
            "roles/pubsub.publisher": sorted(member(r) for r in ("api", "worker", "recovery"))
        },
        f"topic:{settings.webhook_dead_letter_topic}": {
            "roles/pubsub.publisher": [member("webhooks")]
        },
        "secret:GEMINI_API_KEY": {"roles/secretmanager.secretAccessor": [member("worker")]},
        "run:submit-strategy": {"roles/run.invoker": ["allUsers"]},
        "run:task-status": {"roles/run.invoker": ["allUsers"]},
        "run:process-task": {"roles/run.invoker": [member("trigger")]},
        "run:dead-letter-task": {"roles/run.invoker": [member("trigger")]},
        "run:sweep-tasks": {"roles/run.invoker": [member("scheduler")]},
        "run:deliver-webhook": {"roles/run.invoker": [member("trigger")]},
        next(k for k in ours if k.startswith("subscription:")): {
            "roles/pubsub.subscriber": [PUBSUB_AGENT]
        },
    }
    assert set(rehearsed.after_first["service_accounts"]) == {sa(r) for r in RUNTIME_ACCOUNTS}
    # The builder writes objects only in Cloud Functions' source buckets, never users' PDFs.
    assert rehearsed.after_first["iam_conditions"]["project"] == {
        f"roles/storage.objectAdmin {member('builder')}": (
            'resource.name.startsWith("projects/_/buckets/gcf-v2-")'
        )
    }


def test_bucket_is_private_and_ages_out(rehearsed: Rehearsed) -> None:
    bucket = rehearsed.after_first["buckets"][f"{PROJECT}-uploads"]
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["location"] == REGION.upper()
    rules = {
        rule["condition"]["matchesPrefix"][0]: rule["condition"]["age"]
        for rule in bucket["lifecycle_config"]["rule"]
        if rule["action"]["type"] == "Delete"
    }
    defaults = Settings.model_fields
    assert rules == {
        "uploads/": defaults["upload_retention_days"].default,
        "results/": defaults["preview_retention_days"].default,
    }


def test_scheduler_job_calls_the_sweeper_as_its_own_identity(rehearsed: Rehearsed) -> None:
    state = rehearsed.after_first
    job = state["jobs"]["tinkerbell-sweep"]
    sweeper = state["functions"]["sweep_tasks"]
    target = job["httpTarget"]
    assert target["uri"] == sweeper["serviceConfig"]["uri"]
    assert target["httpMethod"] == "POST"
    assert target["oidcToken"] == {
        "serviceAccountEmail": sa("scheduler"),
        "audience": sweeper["serviceConfig"]["uri"],
    }
    deadline = int(job["attemptDeadline"].removesuffix("s"))
    assert deadline >= sweeper["serviceConfig"]["timeoutSeconds"]
    assert job["schedule"] == "*/5 * * * *"


def test_firebase_web_app_hosting_and_anonymous_sign_in(rehearsed: Rehearsed) -> None:
    firebase = rehearsed.after_first["firebase"]
    assert [app["displayName"] for app in firebase["apps"]] == ["Tinkerbell web"]
    assert firebase["auth"] == {"anonymous": True}
    assert firebase["releases"] == 1
    assert "index.html" in firebase["hosted_files"]
    assert not any(f.startswith("src/") or f == "build.mjs" for f in firebase["hosted_files"])
    # The bundle's source map stays local (4.5 MB, and the sources it reveals).
    assert any(f.endswith(".js") for f in firebase["hosted_files"])
    assert not any(f.endswith(".map") for f in firebase["hosted_files"])

    lines = machine_lines(rehearsed.result("run1").stdout)
    assert set(lines) >= {"SUBMIT_URL", "STATUS_URL", "WEB_URL", "FIREBASE_API_KEY"}
    assert lines["WEB_URL"] == f"https://{PROJECT}.web.app"
    functions = rehearsed.after_first["functions"]
    assert lines["SUBMIT_URL"] == functions["submit_strategy"]["url"]
    assert lines["STATUS_URL"] == functions["task_status"]["url"]
    # Hosting sends the Content-Security-Policy made for these very functions
    # (infra/hosting.py), beside firebase.json's other headers.
    deployed = {
        header["key"]: header["value"]
        for rule in firebase["hosting_headers"]
        if rule["source"] == "**"
        for header in rule["headers"]
    }
    assert deployed["X-Content-Type-Options"] == "nosniff"
    expected = Backends(submit_url=lines["SUBMIT_URL"], status_url=lines["STATUS_URL"])
    assert deployed["Content-Security-Policy"] == content_security_policy(expected)
    builds = rehearsed.rehearsal.records("web_builds.jsonl")
    assert builds[0]["SUBMIT_URL"] == lines["SUBMIT_URL"]
    assert builds[0]["FIREBASE_API_KEY"] == lines["FIREBASE_API_KEY"]
    calls = rehearsed.calls("run1")
    build = next(i for i, c in enumerate(calls) if c["tool"] == "node")
    hosting = next(i for i, c in enumerate(calls) if "--only=hosting" in c["argv"])
    last_function = max(i for i, c in enumerate(calls) if c["command"] == "gcloud.functions.deploy")
    assert last_function < build < hosting


def test_the_second_run_creates_nothing(rehearsed: Rehearsed) -> None:
    events = rehearsed.events("run2")
    assert [e for e in events if e["op"] not in ("update",)] == []
    assert {e["kind"] for e in events} <= {
        "function",
        "bucket",
        "subscription",
        "job",
        "rules",
        "hosting_release",
    }

    def inventory(state: dict[str, Any]) -> dict[str, Any]:
        state = copy.deepcopy(state)
        for function in state["functions"].values():
            function.pop("updateTime")
        state["firebase"].pop("releases")
        return state

    assert inventory(rehearsed.after_second) == inventory(rehearsed.after_first)
    assert rehearsed.result("run2").stdout == rehearsed.result("run1").stdout


def test_teardown_removes_what_deploy_made_and_keeps_the_secret(rehearsed: Rehearsed) -> None:
    state = rehearsed.after_teardown
    for kind in (
        "functions",
        "triggers",
        "subscriptions",
        "topics",
        "buckets",
        "jobs",
        "service_accounts",
        "databases",
    ):
        assert state[kind] == {}, kind
    assert state["secrets"]["GEMINI_API_KEY"]["versions"] == 1
    leftover = {
        resource: policy
        for resource, policy in state["iam"].items()
        if any("tinkerbell-" in m for members in policy.values() for m in members)
    }
    assert leftover == {}
    assert all(site.get("disabled") for site in state["firebase"]["sites"])
    stderr = rehearsed.result("teardown").stderr
    assert "keeps the secret GEMINI_API_KEY" in stderr


def test_a_configuration_the_settings_refuse_stops_before_any_call(rehearsal: Rehearsal) -> None:
    result = rehearsal.run("refused", ["bash", "infra/deploy.sh"], LEASE_SECONDS="600")
    assert result.returncode != 0
    assert "LEASE_SECONDS=600 exceeds 540 s" in result.stderr
    assert rehearsal.records("calls.jsonl") == []


def test_teardown_asks_first(rehearsal: Rehearsal) -> None:
    result = rehearsal.run("ask", ["bash", "infra/teardown.sh"], stdin="")
    assert result.returncode != 0
    assert "pass --yes" in result.stderr
    assert all(not c["command"].endswith("delete") for c in rehearsal.records("calls.jsonl"))


def test_upload_sets(gcloud_parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """.gcloudignore sends the functions only their code; the Cloud Build upload
    carries what cloudbuild.yaml's steps need, and none of the local state."""
    from tests.infra import standin

    monkeypatch.setenv("REHEARSAL_GCLOUD_PARSER", gcloud_parser)
    functions = standin.ask_parser(
        {"op": "upload_files", "directory": str(REPO), "kind": "functions"}
    )["files"]
    assert {path.split("/")[0] for path in functions} == {
        "main.py",
        "requirements.txt",
        "functions",
        "shared",
    }
    build = standin.ask_parser(
        {"op": "upload_files", "directory": str(REPO), "ignore_file": ".gcloudignore.cloudbuild"}
    )["files"]
    tops = {path.split("/")[0] for path in build}
    needed = {
        "Makefile",
        "pyproject.toml",
        "requirements.txt",
        "requirements-dev.txt",
        "main.py",
        "functions",
        "shared",
        "cli",
        "dev",
        "tests",
        "infra",
        "web",
        "firebase.json",
        "firestore.rules",
        "firestore.indexes.json",
        "package.json",
        "package-lock.json",
    }
    assert needed <= tops
    assert not tops & {".venv", "node_modules", ".git", ".stack"}
    assert not any(path.startswith("web/dist/") for path in build)
    assert Path(REPO / ".gcloudignore.cloudbuild").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["pubsub", "topics", "describe", "tinkerbell-tasks", "--bogus-flag"],
        ["pubsub", "subscriptions", "update", "some-sub", "--ack-deadline=soon"],
        ["functions", "deploy", "process_task", "--region=europe-west1", "--trigger-topic=t"],
        ["services", "list", "--format=value(config.name"],
    ],
)
def test_the_stand_in_refuses_what_gcloud_refuses(rehearsal: Rehearsal, argv: list[str]) -> None:
    """The check that guards the scripts: gcloud's own parser, not a copy of it."""
    result = rehearsal.run("bad", ["gcloud", f"--project={PROJECT}", *argv])
    assert result.returncode == 2
    rejects = rehearsal.records("rejects.jsonl")
    assert [r["argv"][1:] for r in rejects] == [argv]
    assert rejects[0]["error"]
