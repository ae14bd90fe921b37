"""IAM coverage (issue 15, part 2): every Google call a function's code can make is
allowed by the roles the deploy rehearsal grants its identity, and every role granted
is used by some function of that identity.

The emulators check no IAM; this test does. The operations come from the source
(tests/infra/google_calls.py), the grants from the rehearsal's final state (project
and resource level, IAM conditions included), the roles' permissions from
tests/infra/iam_permissions.py.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import pytest

from tests.infra import google_calls
from tests.infra.conftest import PROJECT, Rehearsal, make_rehearsal, settings_as_deployed
from tests.infra.iam_permissions import (
    BUILDER_NEEDS,
    GEMINI_BY_BACKEND,
    PLATFORM_NEEDS,
    ROLE_PERMISSIONS,
    SECRET_MOUNT,
)
from tests.infra.test_deploy_first_run import create_secret
from tests.infra.test_deploy_rehearsal import explain

Need = tuple[
    str, str
]  # (permission, resource key in the rehearsal's iam: "project", "bucket:X"...)


def role_of(email: str) -> str:
    return email.split("@")[0].removeprefix("tinkerbell-")


def runtime_needs(
    state: dict[str, Any], operations: dict[str, set[tuple[str, str]]]
) -> dict[str, set[Need]]:
    """What each identity must be allowed, from its functions' code and deploy flags."""
    settings = settings_as_deployed({})
    needs: dict[str, set[Need]] = defaultdict(set)
    for name, function in state["functions"].items():
        config = function["serviceConfig"]
        identity = config["serviceAccountEmail"]
        backend = config["environmentVariables"].get("GEMINI_BACKEND", "developer")
        for permission, resource in operations[name]:
            if (permission, resource) == google_calls.GEMINI:
                gemini = GEMINI_BY_BACKEND[backend]
                if gemini:
                    needs[identity].add(gemini)
            elif resource == "bucket":
                needs[identity].add((permission, f"bucket:{settings.bucket_name}"))
            elif resource.startswith("topic:"):
                field = resource.removeprefix("topic:")
                assert field != "?", f"{name} publishes to a topic no caller names"
                needs[identity].add((permission, f"topic:{getattr(settings, field)}"))
            else:
                needs[identity].add((permission, resource))
        for secret in config.get("secretEnvironmentVariables", []):
            needs[identity].add((SECRET_MOUNT, f"secret:{secret['secret']}"))
        run = f"run:{google_calls_service(function)}"
        if "eventTrigger" in function:
            trigger = function["eventTrigger"]["serviceAccountEmail"]
            needs[trigger].add((PLATFORM_NEEDS["trigger"], run))
    for job in state["jobs"].values():
        scheduler = job["httpTarget"]["oidcToken"]["serviceAccountEmail"]
        target = job["httpTarget"]["uri"]
        service = next(
            google_calls_service(f)
            for f in state["functions"].values()
            if target in (f["url"], f["serviceConfig"]["uri"])
        )
        needs[scheduler].add((PLATFORM_NEEDS["scheduler"], f"run:{service}"))
    builder = f"tinkerbell-builder@{PROJECT}.iam.gserviceaccount.com"
    needs[builder] |= set(BUILDER_NEEDS)
    return needs


def google_calls_service(function: dict[str, Any]) -> str:
    return str(function["serviceConfig"]["service"]).rsplit("/", 1)[-1]


def grants(state: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """(member, role, resource key, condition expression or None) for every binding."""
    conditions = state.get("iam_conditions", {}).get("project", {})
    found = []
    for resource, policy in state["iam"].items():
        for role, members in policy.items():
            for member in members:
                condition = conditions.get(f"{role} {member}") if resource == "project" else None
                found.append((member.removeprefix("serviceAccount:"), role, resource, condition))
    return found


def covers(resource: str, condition: str | None, needed_resource: str) -> bool:
    """Whether a binding on `resource` (with its condition) applies to `needed_resource`."""
    if needed_resource == "gcf-v2-buckets":
        return resource == "project"
    if resource == needed_resource:
        return True
    if resource != "project":
        return False
    if condition is None:
        return True
    # The only conditions deploy.sh sets: objects in gcf-v2-* buckets.
    prefix = 'resource.name.startsWith("projects/_/buckets/'
    if condition.startswith(prefix) and needed_resource.startswith("bucket:"):
        bucket = needed_resource.removeprefix("bucket:")
        return bucket.startswith(condition.removeprefix(prefix).rstrip('")'))
    return False


def audit(state: dict[str, Any], operations: dict[str, set[tuple[str, str]]]) -> list[str]:
    """Every missing permission and every unused role, as sentences."""
    needs = runtime_needs(state, operations)
    bindings = [b for b in grants(state) if b[0] in needs]
    problems = []
    for identity, wanted in sorted(needs.items()):
        for permission, resource in sorted(wanted):
            if not any(
                member == identity
                and permission in ROLE_PERMISSIONS.get(role, frozenset())
                and covers(where, condition, resource)
                for member, role, where, condition in bindings
            ):
                problems.append(f"{role_of(identity)} lacks {permission} on {resource}")
    for member, role, where, condition in bindings:
        if role not in ROLE_PERMISSIONS:
            problems.append(f"{role} (held by {role_of(member)}) is not in iam_permissions.py")
            continue
        used = any(
            permission in ROLE_PERMISSIONS[role] and covers(where, condition, resource)
            for permission, resource in needs[member]
        )
        if not used:
            problems.append(
                f"{role_of(member)} holds {role} on {where}, which none of its uses needs"
            )
    # What users gave us (their PDFs, the Gemini key): a role used for something else
    # must not reach it either (a project-wide storage role reaches every bucket).
    settings = settings_as_deployed({})
    sensitive = {f"bucket:{settings.bucket_name}": "storage.", "secret:GEMINI_API_KEY": "secret"}
    for member, role, where, condition in bindings:
        for resource, family in sensitive.items():
            reaches = any(p.startswith(family) for p in ROLE_PERMISSIONS.get(role, ()))
            if (
                reaches
                and covers(where, condition, resource)
                and not any(need == resource for _, need in needs[member])
            ):
                problems.append(
                    f"{role_of(member)} reaches {resource} through {role} on {where}, "
                    "which none of its uses needs"
                )
    return problems


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
    assert audit(deployed, google_calls.function_operations()) == []


def test_the_functions_code_reaches_the_calls_we_know_of() -> None:
    """The analysis itself: calls we know each function makes are found."""
    operations = google_calls.function_operations()
    assert ("storage.objects.delete", "bucket") in operations["sweep_tasks"]
    assert ("pubsub.topics.publish", "topic:tasks_topic") in operations["sweep_tasks"]
    assert ("pubsub.topics.publish", "topic:tasks_topic") in operations["submit_strategy"]
    assert ("storage.objects.create", "bucket") in operations["submit_strategy"]
    assert ("firebaseauth.users.get", "project") in operations["task_status"]
    assert google_calls.GEMINI in operations["process_task"]
    assert ("pubsub.topics.publish", "topic:dead_letter_topic") in operations["process_task"]
    assert google_calls.GEMINI not in operations["submit_strategy"]
    assert ("datastore.entities.update", "project") in operations["dead_letter_task"]


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
    problems = audit(state, google_calls.function_operations())
    assert (
        f"builder reaches bucket:{settings.bucket_name} through roles/storage.objectAdmin "
        "on project, which none of its uses needs"
    ) in problems
    assert f"recovery lacks storage.objects.delete on bucket:{settings.bucket_name}" in problems
    assert (
        f"api holds roles/pubsub.publisher on topic:{settings.dead_letter_topic}, "
        "which none of its uses needs"
    ) in problems
