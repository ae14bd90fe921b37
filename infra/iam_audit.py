"""IAM audit: every Google call a function's code can reach against the roles its
identity holds, and every role held against the calls that use it.

The operations come from the source (infra/google_calls.py), the roles' permissions
from infra/iam_permissions.py, the grants from a project's state: the deploy
rehearsal's (tests/infra/test_iam_coverage.py) or a real project's, read with gcloud
(infra/check_deploy.py). The state is a dict: ``functions`` (name -> Cloud Functions v2
resource), ``jobs`` (Cloud Scheduler jobs), ``iam`` (``"project"``, ``"bucket:B"``,
``"topic:T"``, ``"secret:S"``, ``"run:SERVICE"`` -> role -> members) and
``iam_conditions`` (``{"project": {"ROLE MEMBER": expression}}``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from infra.google_calls import GEMINI, Op
from infra.iam_permissions import (
    BUILDER_NEEDS,
    GEMINI_BY_BACKEND,
    PLATFORM_NEEDS,
    ROLE_PERMISSIONS,
    SECRET_MOUNT,
)

# (permission, resource key in the state's iam: "project", "bucket:X"...)
Need = tuple[str, str]


@dataclass(frozen=True)
class Names:
    """The deployment's resource names, as its settings give them."""

    project: str
    bucket: str
    topics: dict[str, str]  # settings field (tasks_topic...) -> topic name
    secret: str = "GEMINI_API_KEY"  # noqa: S105 (the secret's name)


def role_of(email: str) -> str:
    return email.split("@")[0].removeprefix("tinkerbell-")


def runtime_needs(
    state: dict[str, Any], operations: dict[str, set[Op]], names: Names
) -> dict[str, set[Need]]:
    """What each identity must be allowed, from its functions' code and deploy flags."""
    needs: dict[str, set[Need]] = defaultdict(set)
    for name, function in state["functions"].items():
        config = function["serviceConfig"]
        identity = config["serviceAccountEmail"]
        backend = config["environmentVariables"].get("GEMINI_BACKEND", "developer")
        for permission, resource in operations[name]:
            if (permission, resource) == GEMINI:
                gemini = GEMINI_BY_BACKEND[backend]
                if gemini:
                    needs[identity].add(gemini)
            elif resource == "bucket":
                needs[identity].add((permission, f"bucket:{names.bucket}"))
            elif resource.startswith("topic:"):
                field = resource.removeprefix("topic:")
                if field not in names.topics:
                    raise ValueError(f"{name} publishes to a topic no caller names")
                needs[identity].add((permission, f"topic:{names.topics[field]}"))
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
    builder = f"tinkerbell-builder@{names.project}.iam.gserviceaccount.com"
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


def audit(state: dict[str, Any], operations: dict[str, set[Op]], names: Names) -> list[str]:
    """Every missing permission and every unused role, as sentences."""
    needs = runtime_needs(state, operations, names)
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
    sensitive = {f"bucket:{names.bucket}": "storage.", f"secret:{names.secret}": "secret"}
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
