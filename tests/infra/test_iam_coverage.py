"""IAM coverage (issue 15, part 2): every Google call a function's code can make is
allowed by the roles the deploy rehearsal grants its identity, and every role granted
is used by some function of that identity.

The emulators check no IAM; this test does, with infra/iam_audit.py: the operations
come from the source (infra/google_calls.py), the grants from the rehearsal's final
state (project and resource level, IAM conditions included), the roles' permissions
from infra/iam_permissions.py. `make check-deploy` runs the same audit on a real project.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra import google_calls
from infra.iam_audit import Names, audit
from tests.infra.conftest import PROJECT, Rehearsal, make_rehearsal, settings_as_deployed
from tests.infra.test_deploy_first_run import create_secret
from tests.infra.test_deploy_rehearsal import explain


def names() -> Names:
    settings = settings_as_deployed({})
    topics = {field: getattr(settings, field) for field in google_calls.TOPIC_FIELDS}
    return Names(project=PROJECT, bucket=settings.bucket_name, topics=topics)


@pytest.fixture(scope="module", params=["developer", "vertex"])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gcloud_parser: str
) -> dict[str, Any]:
    rehearsal: Rehearsal = make_rehearsal(tmp_path_factory.mktemp("iam"), gcloud_parser)
    env = {}
    if request.param == "vertex":
        env = {"GEMINI_BACKEND": "vertex", "GEMINI_VERTEX_PROJECT": PROJECT}
    else:
        create_secret(rehearsal)
    result = rehearsal.run("deploy", ["bash", "infra/deploy.sh"], **env)
    assert result.returncode == 0, explain(result)
    return rehearsal.state()


def test_every_identity_holds_exactly_what_its_functions_use(deployed: dict[str, Any]) -> None:
    assert audit(deployed, google_calls.function_operations(), names()) == []


def test_the_functions_code_reaches_the_calls_we_know_of() -> None:
    """The analysis itself: calls we know each function makes are found."""
    operations = google_calls.function_operations()
    assert ("storage.objects.delete", "bucket") in operations["sweep_tasks"]
    assert ("pubsub.topics.publish", "topic:tasks_topic") in operations["sweep_tasks"]
    assert ("pubsub.topics.publish", "topic:tasks_topic") in operations["submit_strategy"]
    assert ("storage.objects.create", "bucket") in operations["submit_strategy"]
    assert ("firebaseauth.users.get", "project") in operations["task_status"]
    # DELETE /v1/me: the Auth user, and objects found by listing (for blob in list_blobs)
    assert ("firebaseauth.users.delete", "project") in operations["task_status"]
    assert ("storage.objects.delete", "bucket") in operations["task_status"]
    assert ("firebaseauth.users.delete", "project") not in operations["submit_strategy"]
    assert google_calls.GEMINI in operations["process_task"]
    assert ("pubsub.topics.publish", "topic:dead_letter_topic") in operations["process_task"]
    assert google_calls.GEMINI not in operations["submit_strategy"]
    assert ("datastore.entities.update", "project") in operations["dead_letter_task"]
    # Signed webhooks: whoever ends a task announces it (the worker, a cancel, the
    # recovery functions; the sweeper republishes stalled deliveries) ...
    for name in ("process_task", "task_status", "dead_letter_task", "sweep_tasks"):
        assert ("pubsub.topics.publish", "topic:webhooks_topic") in operations[name], name
    # ... and deliver_webhook reads and writes the task and the user's secret, and gives
    # up to its dead-letter topic: no bucket, no Gemini.
    webhook = operations["deliver_webhook"]
    assert ("datastore.entities.update", "project") in webhook
    assert ("pubsub.topics.publish", "topic:webhook_dead_letter_topic") in webhook
    assert google_calls.GEMINI not in webhook
    assert not [op for op in webhook if op[1] == "bucket" or op[0].startswith("storage.")]


def test_the_audit_sees_a_missing_and_an_unused_role(deployed: dict[str, Any]) -> None:
    state = copy.deepcopy(deployed)
    settings = settings_as_deployed({})
    recovery = f"serviceAccount:tinkerbell-recovery@{PROJECT}.iam.gserviceaccount.com"
    api = f"serviceAccount:tinkerbell-api@{PROJECT}.iam.gserviceaccount.com"
    # As deploy.sh was before issue 15: the sweeper cannot delete upload objects.
    bucket = state["iam"][f"bucket:{settings.bucket_name}"]["roles/storage.objectUser"]
    bucket.remove(recovery)
    # And a role no function of the api identity needs.
    state["iam"][f"topic:{settings.dead_letter_topic}"]["roles/pubsub.publisher"].append(api)
    # As the builder was: storage.objectAdmin on the whole project (every bucket).
    builder = f"serviceAccount:tinkerbell-builder@{PROJECT}.iam.gserviceaccount.com"
    state["iam_conditions"]["project"].pop(f"roles/storage.objectAdmin {builder}")
    # The webhook deliveries' identity with the users' PDFs, and with the tasks topic.
    webhooks = f"serviceAccount:tinkerbell-webhooks@{PROJECT}.iam.gserviceaccount.com"
    state["iam"][f"bucket:{settings.bucket_name}"]["roles/storage.objectUser"].append(webhooks)
    state["iam"][f"topic:{settings.tasks_topic}"]["roles/pubsub.publisher"].append(webhooks)
    problems = audit(state, google_calls.function_operations(), names())
    assert (
        f"builder reaches bucket:{settings.bucket_name} through roles/storage.objectAdmin "
        "on project, which none of its uses needs"
    ) in problems
    assert (
        f"webhooks reaches bucket:{settings.bucket_name} through roles/storage.objectUser "
        f"on bucket:{settings.bucket_name}, which none of its uses needs"
    ) in problems
    assert (
        f"webhooks holds roles/pubsub.publisher on topic:{settings.tasks_topic}, "
        "which none of its uses needs"
    ) in problems
    assert f"recovery lacks storage.objects.delete on bucket:{settings.bucket_name}" in problems
    assert (
        f"api holds roles/pubsub.publisher on topic:{settings.dead_letter_topic}, "
        "which none of its uses needs"
    ) in problems


def test_check_deploy_audits_a_project_through_gcloud(
    tmp_path_factory: pytest.TempPathFactory, gcloud_parser: str
) -> None:
    """`make check-deploy` reads a project with gcloud (here the rehearsal's, every call
    parsed by the installed gcloud) and runs the same audit and the index check."""
    rehearsal = make_rehearsal(tmp_path_factory.mktemp("check"), gcloud_parser)
    create_secret(rehearsal)
    deployed = rehearsal.run("deploy", ["bash", "infra/deploy.sh"])
    assert deployed.returncode == 0, explain(deployed)
    check = ["python", "-m", "infra.check_deploy"]
    good = rehearsal.run("check", check)
    assert good.returncode == 0, explain(good)
    assert "OK" in good.stdout
    assert rehearsal.records("rejects.jsonl") == []

    # The project drifts: the sweeper loses its bucket role, an index override is gone,
    # and so is a composite index.
    path = rehearsal.directory / "state.json"
    state = json.loads(path.read_text())
    lost = state["indexes"]["(default)"].pop(0)
    bucket = state["iam"][f"bucket:{names().bucket}"]["roles/storage.objectUser"]
    bucket.remove(f"serviceAccount:tinkerbell-recovery@{PROJECT}.iam.gserviceaccount.com")
    state["field_indexes"]["(default)"]["upload_sessions/expires_at"] = []
    path.write_text(json.dumps(state))
    bad = rehearsal.run("check-again", check)
    assert bad.returncode == 1, explain(bad)
    assert f"PROBLEM recovery lacks storage.objects.delete on bucket:{names().bucket}" in bad.stdout
    assert "upload_sessions.expires_at lacks its single-field index ASCENDING" in bad.stdout
    lost_fields = ", ".join(f"{f['fieldPath']} {f['order']}" for f in lost["fields"])
    assert f"missing composite index: {lost['collectionGroup']} on {lost_fields}" in bad.stdout
