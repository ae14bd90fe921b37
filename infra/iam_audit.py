"""IAM audit: every Google call a function's code can reach against the roles its
identity holds, and every role held against the calls that use it.

The operations come from the source (infra/google_calls.py), the roles' permissions
from infra/iam_permissions.py, the grants from a project's state: the deploy
rehearsal's (tests/infra/test_iam_coverage.py) or a real project's, read with gcloud
(infra/check_deploy.py). The state is a dict: ``functions`` (name -> Cloud Functions v2
resource), ``jobs`` (Cloud Scheduler jobs), ``iam`` (``"project"``, ``"bucket:B"``,
``"topic:T"``, ``"secret:S"``, ``"run:SERVICE"``, ``"account:EMAIL"`` -> role ->
members), ``iam_conditions`` (``{"project": {"ROLE MEMBER": expression}}``) and
``custom_roles`` (name -> Role, with ``includedPermissions``).

``deployer_audit`` does the same for the Cloud Build deployer (infra/build_accounts.sh):
the commands infra/deploy.sh ran (the rehearsal's log) against what it holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from infra.google_calls import GEMINI, Op
from infra.iam_permissions import (
    ACCOUNT_FLAGS,
    BUILDER_NEEDS,
    DEPLOY_COMMANDS,
    DEPLOYER_PLATFORM_NEEDS,
    DEPLOYER_ROLE_PERMISSIONS,
    FLAG_NEEDS,
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
        permissions = ROLE_PERMISSIONS.get(role, frozenset())
        for resource in reaching(permissions, where, condition, sensitive):
            if not any(need == resource for _, need in needs[member]):
                problems.append(
                    f"{role_of(member)} reaches {resource} through {role} on {where}, "
                    "which none of its uses needs"
                )
    return problems


def reaching(
    permissions: frozenset[str], where: str, condition: str | None, families: dict[str, str]
) -> list[str]:
    """The resources of `families` (resource key -> permission prefix) that a binding on
    `where` (with its condition) of a role with these permissions reaches."""
    return [
        resource
        for resource, family in families.items()
        if any(p.startswith(family) for p in permissions) and covers(where, condition, resource)
    ]


# ------------------------------------------------------------------------ the deployer


def command_keys(call: dict[str, Any]) -> list[str]:
    """A logged call (the rehearsal's calls.jsonl) as DEPLOY_COMMANDS names it."""
    if call["tool"] == "gcloud":
        return [str(call["command"])]
    if call["tool"] == "firebase" and call["command"] == "deploy":
        only = next(a.split("=", 1)[1] for a in call["argv"] if a.startswith("--only="))
        return [f"firebase deploy {target}" for target in only.split(",")]
    return [f"{call['tool']} {call['command']}"]


def deploy_needs(calls: list[dict[str, Any]]) -> tuple[set[Need], set[str]]:
    """What deploy.sh's calls need (permission, "project" or "account:EMAIL"), and the
    commands DEPLOY_COMMANDS does not know."""
    needs: set[Need] = {(permission, "project") for permission in DEPLOYER_PLATFORM_NEEDS}
    unknown = set()
    for call in calls:
        for key in command_keys(call):
            if key not in DEPLOY_COMMANDS:
                unknown.add(key)
            needs |= {(permission, "project") for permission in DEPLOY_COMMANDS.get(key, ())}
        for arg in call["argv"] if call["tool"] == "gcloud" else ():
            flag, _, value = arg.partition("=")
            if flag in ACCOUNT_FLAGS and value:
                account = value.rsplit("/", 1)[-1]  # projects/P/serviceAccounts/EMAIL
                needs.add(("iam.serviceAccounts.actAs", f"account:{account}"))
            needs |= {(permission, "project") for permission in FLAG_NEEDS.get(flag, ())}
    return needs, unknown


def deployer_permissions(role: str, state: dict[str, Any]) -> frozenset[str] | None:
    """A predefined role's from DEPLOYER_ROLE_PERMISSIONS, a custom one's from the state."""
    custom = state.get("custom_roles", {}).get(role)
    if custom is not None:
        return frozenset(custom["includedPermissions"])
    return DEPLOYER_ROLE_PERMISSIONS.get(role)


def deployer_audit(
    state: dict[str, Any], calls: list[dict[str, Any]], deployer: str, names: Names
) -> list[str]:
    """What deploy.sh's commands need against what the deployer holds: every permission
    held where needed, no role none of them uses, and no way to act as any service
    account of the project or to read the users' PDFs or the Gemini key."""
    needs, unknown = deploy_needs(calls)
    problems = [f"DEPLOY_COMMANDS does not know {key}" for key in sorted(unknown)]
    held = []
    for member, role, where, condition in grants(state):
        if member != deployer:
            continue
        permissions = deployer_permissions(role, state)
        if permissions is None:
            problems.append(f"{role} (held by the deployer) is not in iam_permissions.py")
            continue
        held.append((role, where, condition, permissions))
    for permission, resource in sorted(needs):
        if not any(
            permission in permissions and covers(where, condition, resource)
            for _, where, condition, permissions in held
        ):
            problems.append(f"the deployer lacks {permission} on {resource}")
    private = {
        f"bucket:{names.bucket}": "storage.objects.",
        f"secret:{names.secret}": "secretmanager.versions.access",
    }
    for role, where, condition, permissions in held:
        if not any(
            permission in permissions and covers(where, condition, resource)
            for permission, resource in needs
        ):
            problems.append(f"the deployer holds {role} on {where}, which deploy.sh never uses")
        if where == "project" and "iam.serviceAccounts.actAs" in permissions:
            problems.append(f"the deployer can act as every service account through {role}")
        for resource in reaching(permissions, where, condition, private):
            problems.append(f"the deployer reaches {resource}'s data through {role} on {where}")
    return problems
