"""gcloud: services, projects and their IAM policies, Secret Manager."""

from __future__ import annotations

import re
import sys

from tests.infra import fixtures as fx

from .calls import Call, command, short
from .common import Json, event, fail
from .gcloud_data import bucket_of, topic_of


@command("gcloud.services.list")
def services_list(call: Call) -> list[Json]:
    return [fx.service(api) for api in sorted(call.state["services"])]


@command("gcloud.services.enable")
def services_enable(call: Call) -> None:
    for api in call.positional("SERVICE"):
        if api not in call.state["services"]:
            call.state["services"].append(api)
            call.state.setdefault("just_enabled", []).append(api)
            event("enable", "service", api)


@command("gcloud.beta.services.identity.create")
def services_identity_create(call: Call) -> Json:
    """The service's agent in this project: made once (only for an enabled API, whose
    agent it is), then the same one again."""
    api = call.arg("--service")
    if api not in call.state["services"]:
        fail("FAILED_PRECONDITION", f"Service {api} is not enabled for consumer {call.project}")
    identity = fx.service_identity(api)
    identities = call.state.setdefault("service_identities", {})
    if api not in identities:
        identities[api] = identity["email"]
        event("create", "service_identity", identity["email"])
    return identity


@command("gcloud.projects.describe")
def projects_describe(call: Call) -> Json:
    return fx.project(call.project)


@command("gcloud.projects.get-iam-policy")
def projects_get_iam_policy(call: Call) -> Json:
    # A conditional grant is a binding of its own, with its condition (policy version 3).
    conditions = call.state.get("iam_conditions", {}).get("project", {})
    plain = {
        role: [m for m in members if f"{role} {m}" not in conditions]
        for role, members in call.bindings("project").items()
    }
    policy = fx.policy(plain)
    for key, expression in sorted(conditions.items()):
        role, member = key.split(" ", 1)
        if member in call.bindings("project").get(role, []):
            condition = {"expression": expression, "title": "condition"}
            policy["bindings"].append({"role": role, "members": [member], "condition": condition})
    policy["version"] = 3
    return policy


@command("gcloud.storage.buckets.get-iam-policy")
def buckets_get_iam_policy(call: Call) -> Json:
    bucket = bucket_of(call, call.positional("URL"))
    return fx.policy(call.bindings(f"bucket:{bucket['name']}"))


@command("gcloud.pubsub.topics.get-iam-policy")
def topics_get_iam_policy(call: Call) -> Json:
    return fx.policy(call.bindings(f"topic:{topic_of(call, call.positional('TOPIC'))}"))


@command("gcloud.secrets.get-iam-policy")
def secrets_get_iam_policy(call: Call) -> Json:
    secret_of(call)
    return fx.policy(call.bindings(f"secret:{call.positional('SECRET')}"))


@command("gcloud.run.services.get-iam-policy")
def run_services_get_iam_policy(call: Call) -> Json:
    return fx.policy(call.bindings(f"run:{short(call.positional('SERVICE'))}"))


# The IAM conditions the scripts may set, by role (IAM conditions:
# https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name: a
# bucket's objects are named projects/_/buckets/BUCKET/objects/OBJECT).
CONDITIONS = {
    "roles/storage.objectAdmin": 'resource.name.startsWith("projects/_/buckets/gcf-v2-")',
    # https://cloud.google.com/iam/docs/setting-limits-on-granting-roles
    "roles/resourcemanager.projectIamAdmin": re.compile(
        r"api\.getAttribute\('iam\.googleapis\.com/modifiedGrantsByRole', \[\]\)"
        r"\.hasOnly\(\[('roles/[a-zA-Z.]+'(, )?)+\]\)"
    ),
}


def condition_allowed(role: str, expression: str) -> bool:
    allowed = CONDITIONS.get(role)
    if isinstance(allowed, re.Pattern):
        return allowed.fullmatch(expression) is not None
    return expression == allowed


@command("gcloud.projects.add-iam-policy-binding")
def projects_add_binding(call: Call) -> Json:
    condition = call.arg("--condition")
    role, member = call.arg("--role"), call.arg("--member")
    conditions = call.state.setdefault("iam_conditions", {}).setdefault("project", {})
    if condition == {"None": None}:
        if f"{role} {member}" in conditions:
            fail("INVALID_ARGUMENT", f"{member} holds {role} with a condition: bind it the same")
    elif not isinstance(condition, dict) or not condition.get("title"):
        fail("INVALID_ARGUMENT", f"a condition needs an expression and a title: {condition}")
    elif not condition_allowed(role, str(condition.get("expression"))):
        fail("INVALID_ARGUMENT", f"unexpected condition on {role}: {condition}")
    else:
        unconditional = f"{role} {member}" not in conditions
        if member in call.bindings("project").get(role, []) and unconditional:
            fail("INVALID_ARGUMENT", f"{member} holds {role} unconditionally already")
        conditions[f"{role} {member}"] = condition["expression"]
    return call.add_binding("project", "project")


@command("gcloud.projects.remove-iam-policy-binding")
def projects_remove_binding(call: Call) -> Json:
    conditions = call.state.get("iam_conditions", {}).get("project", {})
    key = f"{call.arg('--role')} {call.arg('--member')}"
    if key in conditions and not call.arg("--all"):
        fail("INVALID_ARGUMENT", "a conditional binding is removed with --condition or --all")
    conditions.pop(key, None)
    return call.remove_binding("project")


# -- secrets


def secret_of(call: Call) -> Json:
    name = call.positional("SECRET")
    secret: Json | None = call.state["secrets"].get(name)
    if secret is None:
        fail("NOT_FOUND", f"Secret [projects/{fx.PROJECT_NUMBER}/secrets/{name}] not found.")
    return secret


@command("gcloud.secrets.create")
def secrets_create(call: Call) -> None:
    name = call.positional("SECRET")
    if name in call.state["secrets"]:
        fail("ALREADY_EXISTS", f"Secret [{name}] already exists.")
    if call.arg("--data-file") != "-":
        fail("INVALID_ARGUMENT", "the rehearsal expects the key on stdin (--data-file=-)")
    if not sys.stdin.read():
        fail("INVALID_ARGUMENT", "Secret Payload cannot be empty.")
    call.state["secrets"][name] = {"versions": 1}
    event("create", "secret", name)


@command("gcloud.secrets.describe")
def secrets_describe(call: Call) -> Json:
    secret_of(call)
    return fx.secret(call.project, call.positional("SECRET"))


@command("gcloud.secrets.versions.list")
def secrets_versions_list(call: Call) -> list[Json]:
    secret = secret_of(call)
    name = call.positional("SECRET")
    return [fx.secret_version(name, n) for n in range(secret["versions"], 0, -1)]


@command("gcloud.secrets.add-iam-policy-binding")
def secrets_add_binding(call: Call) -> Json:
    secret_of(call)
    return call.add_binding(f"secret:{call.positional('SECRET')}", "secret")


@command("gcloud.secrets.remove-iam-policy-binding")
def secrets_remove_binding(call: Call) -> Json:
    secret_of(call)
    return call.remove_binding(f"secret:{call.positional('SECRET')}")


@command("gcloud.secrets.delete")
def secrets_delete(call: Call) -> None:
    secret_of(call)
    name = call.positional("SECRET")
    del call.state["secrets"][name]
    call.state["iam"].pop(f"secret:{name}", None)
    event("delete", "secret", name)


# -- Firestore
