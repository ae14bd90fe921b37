"""gcloud, firebase and node stand-ins for the deploy rehearsal (test_deploy_rehearsal.py).

    python standin.py gcloud|firebase|node ARGS...

The rehearsal puts small wrappers named ``gcloud``, ``firebase`` and ``node`` first
on PATH; each runs this file. The simulated project lives in ``state.json`` under
``$REHEARSAL_DIR`` (it starts as a new project: nothing but the APIs Google enables
in every project), and every call is logged there (``calls.jsonl``), with what it
created, updated or deleted (``events.jsonl``).

gcloud: every invocation first goes through the real installed gcloud's parser
(tests/infra/gcloud_parser.py: parse_args and resource concepts, --format and
--filter compiled), and a refusal is logged in ``rejects.jsonl`` as well as failing
the call, so a script that hides a failing describe behind ``|| create`` cannot hide
a bad flag. Then the call is simulated like the API would answer it: NOT_FOUND,
ALREADY_EXISTS, the API's value ranges, a disabled API, a member that does not
exist, a secret the runtime identity cannot read. Describe and list answers have
the documented shapes (tests/infra/fixtures.py) and are printed by gcloud's own
resource printer, so ``--format='value(...)'`` reads what the real gcloud would.

firebase: the command and its options are checked against the command definitions
of the installed firebase-tools (node_modules/firebase-tools/lib/commands/*.js and
lib/index.js), and firebase.json against firebase-tools' own JSON schema.

node: only ``node web/build.mjs`` (the web build) is expected; it records the build
environment and writes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.infra import fixtures as fx  # noqa: E402

Json = dict[str, Any]
FIREBASE_TOOLS = REPO / "node_modules" / "firebase-tools"
# APIs on in every new project (https://cloud.google.com/service-usage/docs/enabled-service#default).
DEFAULT_SERVICES = [
    "bigquery.googleapis.com",
    "bigquerystorage.googleapis.com",
    "cloudapis.googleapis.com",
    "cloudtrace.googleapis.com",
    "datastore.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "servicemanagement.googleapis.com",
    "serviceusage.googleapis.com",
    "sql-component.googleapis.com",
    "storage-api.googleapis.com",
    "storage-component.googleapis.com",
    "storage.googleapis.com",
]
# What each command group calls (the API must be on in the project).
REQUIRED_APIS = {
    "gcloud.projects": ["cloudresourcemanager.googleapis.com"],
    "gcloud.secrets": ["secretmanager.googleapis.com"],
    "gcloud.firestore": ["firestore.googleapis.com"],
    "gcloud.pubsub": ["pubsub.googleapis.com"],
    "gcloud.storage": ["storage.googleapis.com"],
    "gcloud.iam": ["iam.googleapis.com"],
    "gcloud.functions": ["cloudfunctions.googleapis.com"],
    "gcloud.functions.deploy": [
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
    ],
    "gcloud.eventarc": ["eventarc.googleapis.com"],
    "gcloud.scheduler": ["cloudscheduler.googleapis.com"],
    "gcloud.run": ["run.googleapis.com"],
}
# Predefined roles the scripts may grant, by the kind of resource that accepts them
# (https://cloud.google.com/iam/docs/roles-permissions). Anything else is refused,
# as the IAM API refuses a role that does not exist or does not apply.
ROLES = {
    "project": {
        "roles/datastore.user",
        "roles/firebaseauth.viewer",
        "roles/logging.logWriter",
        "roles/artifactregistry.writer",
        "roles/storage.objectAdmin",
        "roles/run.invoker",
        "roles/eventarc.eventReceiver",
        "roles/iam.serviceAccountTokenCreator",
        "roles/aiplatform.user",
        # infra/build_accounts.sh: the Cloud Build identities.
        "roles/serviceusage.serviceUsageAdmin",
        "roles/resourcemanager.projectIamAdmin",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountUser",
        "roles/cloudfunctions.admin",
        "roles/run.admin",
        "roles/eventarc.admin",
        "roles/pubsub.admin",
        "roles/storage.admin",
        "roles/secretmanager.admin",
        "roles/cloudscheduler.admin",
        "roles/datastore.owner",
        "roles/firebase.admin",
    },
    "topic": {"roles/pubsub.publisher", "roles/pubsub.subscriber", "roles/pubsub.viewer"},
    "subscription": {"roles/pubsub.subscriber", "roles/pubsub.viewer"},
    "bucket": {
        "roles/storage.objectUser",
        "roles/storage.objectViewer",
        "roles/storage.objectCreator",
        "roles/storage.objectAdmin",
    },
    "secret": {"roles/secretmanager.secretAccessor", "roles/secretmanager.viewer"},
    "run": {"roles/run.invoker"},
}
# Cloud Run sets these itself; a deploy that sets one is refused
# (https://cloud.google.com/run/docs/container-contract#env-vars).
RESERVED_ENV = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}
# https://cloud.google.com/functions/docs/configuring/timeout
MAX_EVENT_TIMEOUT_S = 540
MAX_HTTP_TIMEOUT_S = 3600
FIRESTORE_LOCATIONS = {"eur3", "nam5", "europe-west1", "europe-west3", "us-central1", "us-east1"}


class ApiError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class FailedAfterChanges(ApiError):
    """A call that changed the project and then failed (its changes are kept)."""


def fail(status: str, message: str) -> NoReturn:
    raise ApiError(status, message)


# ---------------------------------------------------------------------------- first-run faults
#
# A new project answers some calls "not yet" for a few minutes. The stand-in gives each
# of these answers the way a real first deploy commonly meets them (set
# REHEARSAL_FRESH_FAULTS=0 to turn them off); each one given is logged in faults.jsonl.
# They are kept outside state.json, which a failing call does not write back.
#
# - SERVICE_DISABLED once, for the first call that needs an API enabled a moment ago
#   (Service Usage: "If you enabled this API recently, wait a few minutes for the
#   action to propagate to our systems and retry").
# - "Service account ... does not exist" for the first IAM binding of each new account
#   (IAM is eventually consistent: https://cloud.google.com/iam/docs/overview#consistency).
# - The first event trigger refused with Eventarc's service agent message: once if the
#   agent was made beforehand (`gcloud beta services identity create`), and
#   EVENTARC_LAZY_REFUSALS times if Eventarc has to provision it lazily on first use
#   (https://cloud.google.com/eventarc/docs/access-control, "Eventarc service agent").
EVENTARC_AGENT_MESSAGE = (
    'Validation failed for trigger {trigger}: Invalid resource state for "": Permission '
    "denied while using the Eventarc Service Agent. If you recently started to use "
    "Eventarc, it may take a few minutes before all necessary permissions are propagated "
    "to the Service Agent. Otherwise, verify that it has Eventarc Service Agent role."
)
EVENTARC_LAZY_REFUSALS = 4
# Domain restricted sharing (constraints/iam.allowedPolicyMemberDomains) refusing allUsers:
# set REHEARSAL_ORG_POLICY=domain-restricted-sharing.
DRS_MESSAGE = (
    "One or more users named in the policy do not belong to a permitted customer, "
    "perhaps due to an organization policy."
)


def fresh_faults_on() -> bool:
    return os.environ.get("REHEARSAL_FRESH_FAULTS", "1") != "0"


def fault_count(key: str) -> int:
    path = rehearsal_dir() / "faults.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if json.loads(line)["key"] == key)


def give_fault(key: str, status: str, message: str) -> NoReturn:
    append("faults.jsonl", {"run": os.environ.get("REHEARSAL_RUN", ""), "key": key})
    fail(status, message)


# ---------------------------------------------------------------------------- plumbing


def rehearsal_dir() -> Path:
    return Path(os.environ["REHEARSAL_DIR"])


def append(name: str, record: Json) -> None:
    with (rehearsal_dir() / name).open("a") as stream:
        stream.write(json.dumps(record) + "\n")


def ask_parser(request: Json) -> Json:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(os.environ["REHEARSAL_GCLOUD_PARSER"])
        connection.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: Json = json.loads(data)
    return answer


@contextlib.contextmanager
def locked_state() -> Iterator[Json]:
    """The simulated project, read and written back under a lock."""
    path = rehearsal_dir() / "state.json"
    with (rehearsal_dir() / "state.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state: Json = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("services", list(DEFAULT_SERVICES))
        for key in (
            "iam",
            "secrets",
            "databases",
            "fields",
            "indexes",
            "topics",
            "subscriptions",
            "buckets",
            "service_accounts",
            "functions",
            "triggers",
            "jobs",
        ):
            state.setdefault(key, {})
        state.setdefault("firebase", None)
        yield state
        path.write_text(json.dumps(state, indent=1, sort_keys=True))


def event(op: str, kind: str, name: str) -> None:
    append(
        "events.jsonl",
        {"run": os.environ.get("REHEARSAL_RUN", ""), "op": op, "kind": kind, "name": name},
    )


def seq() -> int:
    path = rehearsal_dir() / "calls.jsonl"
    return sum(1 for _ in path.open()) if path.exists() else 0


# ---------------------------------------------------------------------------- gcloud


class Call:
    """One parsed gcloud invocation against the simulated project."""

    def __init__(self, state: Json, command: str, args: Json) -> None:
        self.state = state
        self.command = command
        self.args = args
        project = args.get("--project")
        if not project:
            fail("INVALID_ARGUMENT", "no project: the scripts pass --project on every call")
        self.project: str = project
        state.setdefault("project", project)
        if state["project"] != project:
            fail("PERMISSION_DENIED", f"the rehearsal simulates {state['project']}, not {project}")

    def arg(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)

    def positional(self, name: str) -> Any:
        for key, value in self.args.items():
            if key == name or key.startswith(f"{name}:"):
                return value
        fail("INVALID_ARGUMENT", f"{name} is required")

    def require_apis(self) -> None:
        for prefix, apis in REQUIRED_APIS.items():
            if self.command == prefix or self.command.startswith(prefix + "."):
                for api in apis:
                    just_enabled = api in self.state.get("just_enabled", [])
                    if just_enabled and fresh_faults_on() and not fault_count("service-disabled"):
                        give_fault(
                            "service-disabled",
                            "PERMISSION_DENIED",
                            f"{api} has not been used in project {fx.PROJECT_NUMBER} before "
                            "or it is disabled. If you enabled this API recently, wait a few "
                            "minutes for the action to propagate to our systems and retry.\n"
                            "- '@type': type.googleapis.com/google.rpc.ErrorInfo\n"
                            "  reason: SERVICE_DISABLED",
                        )
                    if api not in self.state["services"]:
                        fail(
                            "PERMISSION_DENIED",
                            f"{api} has not been used in project {self.project} before or "
                            "it is disabled. Enable it by visiting "
                            f"https://console.developers.google.com/apis/api/{api}/overview",
                        )

    # -- IAM

    def check_member(self, member: str) -> None:
        kind, _, who = member.partition(":")
        if member in ("allUsers", "allAuthenticatedUsers"):
            return
        if kind != "serviceAccount":
            fail("INVALID_ARGUMENT", f"unexpected member {member} in the rehearsal")
        if who.endswith(f"@{self.project}.iam.gserviceaccount.com"):
            if who not in self.state["service_accounts"]:
                fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")
            key = f"unknown-account:{who}"
            if who in self.state.get("new_accounts", []):
                self.state["new_accounts"].remove(who)  # kept only if this call succeeds
                if fresh_faults_on() and not fault_count(key):
                    give_fault(key, "INVALID_ARGUMENT", f"Service account {who} does not exist.")
        elif who == f"service-{fx.PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com":
            if "pubsub.googleapis.com" not in self.state["services"]:
                fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")
        elif who in self.state.get("service_identities", {}).values():
            pass  # a service agent made by `gcloud beta services identity create`
        else:
            fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")

    def bindings(self, resource: str) -> dict[str, list[str]]:
        policy: dict[str, list[str]] = self.state["iam"].setdefault(resource, {})
        return policy

    def add_binding(self, resource: str, kind: str) -> Json:
        member, role = self.arg("--member"), self.arg("--role")
        if role not in ROLES[kind]:
            fail("INVALID_ARGUMENT", f"Role {role} is not supported for this resource.")
        if member in ("allUsers", "allAuthenticatedUsers") and refuses_all_users():
            fail("FAILED_PRECONDITION", DRS_MESSAGE)
        self.check_member(member)
        members = self.bindings(resource).setdefault(role, [])
        if member not in members:
            members.append(member)
            event("bind", resource, f"{role} {member}")
        return fx.policy(self.bindings(resource))

    def remove_binding(self, resource: str) -> Json:
        member, role = self.arg("--member"), self.arg("--role")
        members = self.bindings(resource).get(role, [])
        if member not in members:
            fail("NOT_FOUND", "Policy binding with the specified principal and role not found!")
        members.remove(member)
        event("unbind", resource, f"{role} {member}")
        return fx.policy(self.bindings(resource))

    def has_role(self, resource: str, role: str, member: str) -> bool:
        return member in self.state["iam"].get(resource, {}).get(role, [])


Handler = Callable[[Call], Any]
GCLOUD: dict[str, Handler] = {}


def command(*paths: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for path in paths:
            GCLOUD[path] = handler
        return handler

    return register


def short(name: str) -> str:
    """The last path segment: projects/p/topics/t -> t."""
    return name.rsplit("/", 1)[-1]


# -- services, projects


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


def database_of(call: Call) -> Json:
    database_id = call.arg("--database", "(default)")
    database: Json | None = call.state["databases"].get(database_id)
    if database is None:
        fail(
            "NOT_FOUND",
            f"The database {database_id} does not exist for project {call.project}",
        )
    return database


@command("gcloud.firestore.databases.describe")
def databases_describe(call: Call) -> Json:
    return database_of(call)


@command("gcloud.firestore.databases.create")
def databases_create(call: Call) -> None:
    database_id = call.arg("--database", "(default)")
    location = call.arg("--location")
    if database_id in call.state["databases"]:
        fail("ALREADY_EXISTS", f"Database {database_id} already exists.")
    if location not in FIRESTORE_LOCATIONS:
        fail("INVALID_ARGUMENT", f"Invalid locationId: {location}")
    database_type = call.arg("--type", "firestore-native")
    call.state["databases"][database_id] = fx.database(
        call.project, database_id, location, database_type
    )
    event("create", "database", database_id)


@command("gcloud.firestore.databases.delete")
def databases_delete(call: Call) -> None:
    database_of(call)
    database_id = call.arg("--database")
    del call.state["databases"][database_id]
    call.state["indexes"].pop(database_id, None)
    call.state["fields"].pop(database_id, None)
    call.state.pop("rules", None)
    event("delete", "database", database_id)


@command("gcloud.firestore.indexes.fields.describe")
def fields_describe(call: Call) -> Json:
    database_of(call)
    database_id = call.arg("--database", "(default)")
    group, path = call.arg("--collection-group"), call.positional("FIELD")
    state = call.state["fields"].get(database_id, {}).get(f"{group}/{path}")
    override = call.state.get("field_indexes", {}).get(database_id, {}).get(f"{group}/{path}")
    return fx.field(call.project, database_id, group, path, state, override)


@command("gcloud.firestore.fields.ttls.update")
def ttls_update(call: Call) -> None:
    database_of(call)
    database_id = call.arg("--database", "(default)")
    key = f"{call.arg('--collection-group')}/{call.positional('FIELD')}"
    fields = call.state["fields"].setdefault(database_id, {})
    if call.arg("--enable-ttl"):
        if fields.get(key) is None:
            event("create", "ttl", key)
        fields[key] = "ACTIVE"
    else:
        fields.pop(key, None)
        event("delete", "ttl", key)


@command("gcloud.firestore.indexes.composite.list")
def indexes_list(call: Call) -> list[Json]:
    database_of(call)
    specs = call.state["indexes"].get(call.arg("--database", "(default)"), [])
    return [
        fx.composite_index(call.project, call.arg("--database", "(default)"), n, spec)
        for n, spec in enumerate(specs)
    ]


# -- Pub/Sub


def topic_of(call: Call, name: str) -> str:
    name = short(name)
    if name not in call.state["topics"]:
        fail("NOT_FOUND", f"Resource not found (resource={name}).")
    return name


@command("gcloud.pubsub.topics.describe")
def topics_describe(call: Call) -> Json:
    return fx.topic(call.project, topic_of(call, call.positional("TOPIC")))


@command("gcloud.pubsub.topics.create")
def topics_create(call: Call) -> None:
    for name in call.positional("TOPIC"):
        if name in call.state["topics"]:
            fail("ALREADY_EXISTS", "Resource already exists in the project (resource=" + name)
        topic = fx.topic(call.project, name)
        if call.arg("--labels"):
            topic["labels"] = dict(call.arg("--labels"))
        call.state["topics"][name] = topic
        event("create", "topic", name)


@command("gcloud.pubsub.topics.list")
def topics_list(call: Call) -> list[Json]:
    return [call.state["topics"][name] for name in sorted(call.state["topics"])]


@command("gcloud.pubsub.topics.delete")
def topics_delete(call: Call) -> None:
    for given in call.positional("TOPIC"):
        name = topic_of(call, given)
        del call.state["topics"][name]
        call.state["iam"].pop(f"topic:{name}", None)
        event("delete", "topic", name)


@command("gcloud.pubsub.topics.add-iam-policy-binding")
def topics_add_binding(call: Call) -> Json:
    name = topic_of(call, call.positional("TOPIC"))
    return call.add_binding(f"topic:{name}", "topic")


def subscription_of(call: Call) -> Json:
    name = short(call.positional("SUBSCRIPTION"))
    subscription: Json | None = call.state["subscriptions"].get(name)
    if subscription is None:
        fail("NOT_FOUND", f"Resource not found (resource={name}).")
    return subscription


@command("gcloud.pubsub.subscriptions.describe")
def subscriptions_describe(call: Call) -> Json:
    return subscription_of(call)


@command("gcloud.pubsub.subscriptions.update")
def subscriptions_update(call: Call) -> None:
    # Ranges: https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions
    subscription = subscription_of(call)
    ack = call.arg("--ack-deadline")
    if ack is not None:
        if not 10 <= ack <= 600:
            fail("INVALID_ARGUMENT", f"Invalid ack deadline: {ack} (10 to 600 seconds)")
        subscription["ackDeadlineSeconds"] = ack
    low, high = call.arg("--min-retry-delay"), call.arg("--max-retry-delay")
    if low is not None or high is not None:
        low, high = low if low is not None else 10, high if high is not None else 600
        if not 0 <= low <= high <= 600:
            fail("INVALID_ARGUMENT", "retry delays must satisfy 0 <= min <= max <= 600s")
        subscription["retryPolicy"] = {"minimumBackoff": f"{low}s", "maximumBackoff": f"{high}s"}
    dead = call.arg("--dead-letter-topic")
    if dead is not None:
        attempts = call.arg("--max-delivery-attempts", 5)
        if not 5 <= attempts <= 100:
            fail("INVALID_ARGUMENT", "max delivery attempts must be between 5 and 100")
        topic_of(call, dead)
        subscription["deadLetterPolicy"] = {
            "deadLetterTopic": f"projects/{call.project}/topics/{short(dead)}",
            "maxDeliveryAttempts": attempts,
        }
    event("update", "subscription", short(subscription["name"]))


@command("gcloud.pubsub.subscriptions.add-iam-policy-binding")
def subscriptions_add_binding(call: Call) -> Json:
    subscription = subscription_of(call)
    return call.add_binding(f"subscription:{short(subscription['name'])}", "subscription")


# -- Cloud Storage


def bucket_of(call: Call, url: str) -> Json:
    name = url.removeprefix("gs://").rstrip("/")
    bucket: Json | None = call.state["buckets"].get(name)
    if bucket is None:
        fail("NOT_FOUND", f"gs://{name} not found: 404.")
    return bucket


def apply_bucket_flags(call: Call, bucket: Json) -> None:
    # Labels and soft delete: gcloud 528 surface/storage/buckets/create.py and update.py.
    labels = bucket.get("labels") or {}
    for key in call.arg("--remove-labels") or []:
        labels.pop(key, None)
    labels.update(call.arg("--update-labels") or {})
    if labels:
        bucket["labels"] = labels
    else:
        bucket.pop("labels", None)
    duration = call.arg("--soft-delete-duration")
    if call.arg("--clear-soft-delete"):
        duration = 0
    if duration is not None:
        bucket["soft_delete_policy"] = {"retentionDurationSeconds": str(int(duration))}
    if call.arg("--uniform-bucket-level-access") is not None:
        bucket["uniform_bucket_level_access"] = bool(call.arg("--uniform-bucket-level-access"))
    if call.arg("--public-access-prevention") is not None:
        enforced = call.arg("--public-access-prevention")
        bucket["public_access_prevention"] = "enforced" if enforced else "inherited"
    lifecycle_file = call.arg("--lifecycle-file")
    if lifecycle_file is not None:
        # Read and checked by gcloud's own code (metadata_field_converters.process_lifecycle).
        answer = ask_parser({"op": "lifecycle", "path": str(Path(lifecycle_file).resolve())})
        if not answer["ok"]:
            fail("INVALID_ARGUMENT", answer["error"])
        bucket["lifecycle_config"] = answer["lifecycle"]


@command("gcloud.storage.buckets.describe")
def buckets_describe(call: Call) -> Json:
    return bucket_of(call, call.positional("URL"))


@command("gcloud.storage.buckets.list")
def buckets_list(call: Call) -> list[Json]:
    return [call.state["buckets"][name] for name in sorted(call.state["buckets"])]


@command("gcloud.storage.buckets.create")
def buckets_create(call: Call) -> None:
    for url in call.positional("URL"):
        name = url.removeprefix("gs://").rstrip("/")
        if name in call.state["buckets"]:
            fail("CONFLICT", f"HTTPError 409: The requested bucket name {name} is not available.")
        bucket = fx.bucket(name, call.arg("--location", "US"))
        apply_bucket_flags(call, bucket)
        call.state["buckets"][name] = bucket
        event("create", "bucket", name)


@command("gcloud.storage.buckets.update")
def buckets_update(call: Call) -> None:
    for url in call.positional("URL"):
        bucket = bucket_of(call, url)
        apply_bucket_flags(call, bucket)
        event("update", "bucket", bucket["name"])


@command("gcloud.storage.buckets.add-iam-policy-binding")
def buckets_add_binding(call: Call) -> Json:
    bucket = bucket_of(call, call.positional("URL"))
    return call.add_binding(f"bucket:{bucket['name']}", "bucket")


@command("gcloud.storage.rm")
def storage_rm(call: Call) -> None:
    for url in call.positional("URLS"):
        bucket = bucket_of(call, url)
        if not call.arg("--recursive") or url.removeprefix("gs://").strip("/") != bucket["name"]:
            fail("INVALID_ARGUMENT", "the rehearsal only removes whole buckets (rm --recursive)")
        del call.state["buckets"][bucket["name"]]
        call.state["iam"].pop(f"bucket:{bucket['name']}", None)
        event("delete", "bucket", bucket["name"])


# -- IAM service accounts


def service_account_of(call: Call, email: str) -> Json:
    account: Json | None = call.state["service_accounts"].get(email)
    if account is None:
        fail("NOT_FOUND", f"Service account projects/{call.project}/serviceAccounts/{email}")
    return account


@command("gcloud.iam.service-accounts.describe")
def accounts_describe(call: Call) -> Json:
    return service_account_of(call, call.positional("SERVICE_ACCOUNT"))


@command("gcloud.iam.service-accounts.create")
def accounts_create(call: Call) -> None:
    # accountId: https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create
    account_id = call.positional("NAME")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])", account_id) or not (
        6 <= len(account_id) <= 30
    ):
        fail("INVALID_ARGUMENT", f"invalid account id {account_id!r}")
    email = f"{account_id}@{call.project}.iam.gserviceaccount.com"
    if email in call.state["service_accounts"]:
        fail("ALREADY_EXISTS", f"Service account {account_id} already exists within project")
    call.state["service_accounts"][email] = fx.service_account(
        call.project, email, call.arg("--display-name", "")
    )
    call.state.setdefault("new_accounts", []).append(email)
    event("create", "service_account", email)


@command("gcloud.iam.service-accounts.delete")
def accounts_delete(call: Call) -> None:
    email = call.positional("SERVICE_ACCOUNT")
    service_account_of(call, email)
    del call.state["service_accounts"][email]
    event("delete", "service_account", email)


# -- Cloud Functions (2nd gen) and Eventarc


def function_of(call: Call) -> Json:
    name = call.positional("NAME")
    function: Json | None = call.state["functions"].get(name)
    if function is None:
        fail(
            "NOT_FOUND",
            f"Resource 'projects/{call.project}/locations/{call.arg('--region')}/functions/"
            f"{name}' was not found",
        )
    return function


def existing_account(call: Call, email: str | None, flag: str) -> str:
    if not email:
        fail("INVALID_ARGUMENT", f"{flag} is missing: the default compute identity would be used")
    service_account_of(call, email)
    return email


@command("gcloud.functions.deploy")
def functions_deploy(call: Call) -> Json:
    name = call.positional("NAME")
    region = call.arg("--region")
    if call.arg("--gen2") != "true":
        fail("INVALID_ARGUMENT", "Tinkerbell deploys 2nd gen functions only (--gen2)")
    function = call.state["functions"].get(name)
    creating = function is None
    if creating:
        if not call.arg("--runtime"):
            fail("INVALID_ARGUMENT", "--runtime is required when creating a function")
        function = fx.function(call.project, region, name)
    assert function is not None
    source = call.arg("--source")
    answer = ask_parser(
        {"op": "upload_files", "directory": str(Path(source).resolve()), "kind": "functions"}
    )
    files = answer["files"]
    if "main.py" not in files or "requirements.txt" not in files:
        fail("INVALID_ARGUMENT", f"the source upload lacks main.py or requirements.txt: {files}")
    runtime_sa = existing_account(call, call.arg("--service-account"), "--service-account")
    build_sa = call.arg("--build-service-account") or ""
    existing_account(call, build_sa.rsplit("/", 1)[-1] or None, "--build-service-account")
    env = call.arg("--env-vars-file")
    if env is None:
        fail("INVALID_ARGUMENT", "the functions' environment comes from --env-vars-file")
    reserved = RESERVED_ENV & set(env)
    if reserved:
        fail("INVALID_ARGUMENT", f"reserved environment variables: {sorted(reserved)}")
    # Without a secrets flag a deploy keeps the function's secrets; --clear-secrets drops
    # them (googlecloudsdk/command_lib/functions/v2/deploy/command.py, secrets_config).
    previous_secrets = function["serviceConfig"].get("secretEnvironmentVariables") or []
    secrets = call.arg("--set-secrets") or {}
    secret_env = [] if call.arg("--clear-secrets") or secrets else list(previous_secrets)
    for key, ref in secrets.items():
        secret_name = ref.split("/")[3]
        if secret_name not in call.state["secrets"]:
            fail("NOT_FOUND", f"Secret {secret_name} was not found")
        # Cloud Run refuses a revision whose identity cannot read its secrets.
        member = f"serviceAccount:{runtime_sa}"
        if not call.has_role(f"secret:{secret_name}", "roles/secretmanager.secretAccessor", member):
            fail(
                "FAILED_PRECONDITION",
                f"Permission denied on secret {secret_name} for Revision service account "
                f"{runtime_sa}",
            )
        secret_env.append(
            {"key": key, "projectId": call.project, "secret": secret_name, "version": "latest"}
        )
    timeout = call.arg("--timeout", 60)
    topic_name = call.arg("--trigger-topic")
    limit = MAX_EVENT_TIMEOUT_S if topic_name else MAX_HTTP_TIMEOUT_S
    if timeout > limit:
        fail("INVALID_ARGUMENT", f"timeout {timeout}s exceeds {limit}s for this function type")
    service_config = function["serviceConfig"]
    service_config.update(
        {
            "serviceAccountEmail": runtime_sa,
            "timeoutSeconds": timeout,
            "availableMemory": call.arg("--memory", "256Mi"),
            "environmentVariables": {**env, "LOG_EXECUTION_ID": "true"},
            "secretEnvironmentVariables": secret_env,
        }
    )
    for flag, key in (
        ("--max-instances", "maxInstanceCount"),
        ("--concurrency", "maxInstanceRequestConcurrency"),
        ("--cpu", "availableCpu"),
    ):
        if call.arg(flag) is not None:
            service_config[key] = call.arg(flag)
    function["buildConfig"] = {
        "runtime": call.arg("--runtime", function["buildConfig"].get("runtime")),
        "entryPoint": call.arg("--entry-point", function["buildConfig"].get("entryPoint")),
        "serviceAccount": build_sa,
        "source": {"storageSource": {"bucket": f"gcf-v2-sources-{fx.PROJECT_NUMBER}-{region}"}},
        "dockerRepository": f"projects/{call.project}/locations/{region}/repositories/"
        "gcf-artifacts",
    }
    function["sourceFiles"] = files  # rehearsal only: what the upload held
    labels = {**function.get("labels", {}), **(call.arg("--update-labels") or {})}
    for key in call.arg("--remove-labels") or []:
        labels.pop(key, None)
    function["labels"] = labels
    run_resource = f"run:{fx.run_service_name(name)}"
    if topic_name:
        for api in ("eventarc.googleapis.com", "pubsub.googleapis.com"):
            if api not in call.state["services"]:
                fail("FAILED_PRECONDITION", f"{api} is needed for an event trigger")
        topic_of(call, topic_name)
        trigger_sa = existing_account(
            call, call.arg("--trigger-service-account"), "--trigger-service-account"
        )
        if fresh_faults_on():
            made = "eventarc.googleapis.com" in call.state.get("service_identities", {})
            refusals = 1 if made else EVENTARC_LAZY_REFUSALS
            if fault_count("eventarc-agent") < refusals:
                trigger = fx.trigger(call.project, region, name, topic_name, trigger_sa)["name"]
                give_fault(
                    "eventarc-agent",
                    "FAILED_PRECONDITION",
                    EVENTARC_AGENT_MESSAGE.format(trigger=trigger),
                )
        function["eventTrigger"] = deploy_trigger(call, name, region, topic_name, trigger_sa)
        function["eventTrigger"]["retryPolicy"] = (
            "RETRY_POLICY_RETRY" if call.arg("--retry") else "RETRY_POLICY_DO_NOT_RETRY"
        )
    elif call.arg("--trigger-http"):
        function.pop("eventTrigger", None)
        invokers = call.bindings(run_resource).setdefault("roles/run.invoker", [])
        if call.arg("--allow-unauthenticated") and "allUsers" not in invokers:
            invokers.append("allUsers")
            event("bind", run_resource, "roles/run.invoker allUsers")
        if call.arg("--no-allow-unauthenticated") is False and "allUsers" in invokers:
            invokers.remove("allUsers")
            event("unbind", run_resource, "roles/run.invoker allUsers")
    else:
        fail("INVALID_ARGUMENT", "the rehearsal expects --trigger-http or --trigger-topic")
    function["updateTime"] = f"rehearsal-run-{os.environ.get('REHEARSAL_RUN', '')}"
    call.state["functions"][name] = function
    event("create" if creating else "update", "function", name)
    if call.arg("--allow-unauthenticated") and refuses_all_users():
        # gcloud 528's gen2 deploy sets the allUsers binding after the function is
        # deployed, and fails the command when it is refused (command_lib/functions/
        # run_util.AddOrRemoveInvokerBinding, no try/except in v2/deploy/command.Run).
        invokers = call.bindings(run_resource).setdefault("roles/run.invoker", [])
        if "allUsers" in invokers:
            invokers.remove("allUsers")
        raise FailedAfterChanges("FAILED_PRECONDITION", DRS_MESSAGE)
    return function


def refuses_all_users() -> bool:
    return os.environ.get("REHEARSAL_ORG_POLICY") == "domain-restricted-sharing"


def deploy_trigger(call: Call, name: str, region: str, topic_name: str, sa: str) -> Json:
    """The Eventarc trigger and push subscription Cloud Functions keeps for the function."""
    trigger = fx.trigger(call.project, region, name, topic_name, sa)
    trigger_id = short(trigger["name"])
    previous = call.state["triggers"].get(trigger_id)
    if previous is None:
        subscription_name = short(trigger["transport"]["pubsub"]["subscription"])
        push = call.state["functions"].get(name, fx.function(call.project, region, name))
        call.state["triggers"][trigger_id] = trigger
        call.state["subscriptions"][subscription_name] = fx.subscription(
            call.project, subscription_name, topic_name, push["serviceConfig"]["uri"], sa
        )
        event("create", "trigger", trigger_id)
        event("create", "subscription", subscription_name)
    else:
        previous["serviceAccount"] = sa
    return {
        "trigger": trigger["name"],
        "triggerRegion": region,
        "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
        "pubsubTopic": f"projects/{call.project}/topics/{topic_name}",
        "serviceAccountEmail": sa,
    }


@command("gcloud.functions.describe")
def functions_describe(call: Call) -> Json:
    return function_of(call)


@command("gcloud.functions.delete")
def functions_delete(call: Call) -> None:
    function = function_of(call)
    name = call.positional("NAME")
    trigger_name = function.get("eventTrigger", {}).get("trigger")
    if trigger_name:
        trigger = call.state["triggers"].pop(short(trigger_name))
        subscription = short(trigger["transport"]["pubsub"]["subscription"])
        call.state["subscriptions"].pop(subscription, None)
        call.state["iam"].pop(f"subscription:{subscription}", None)
        event("delete", "trigger", short(trigger_name))
        event("delete", "subscription", subscription)
    call.state["iam"].pop(f"run:{fx.run_service_name(name)}", None)
    del call.state["functions"][name]
    event("delete", "function", name)


@command("gcloud.functions.add-invoker-policy-binding")
def functions_add_invoker(call: Call) -> Json:
    function_of(call)
    call.args["--role"] = "roles/run.invoker"
    return call.add_binding(f"run:{fx.run_service_name(call.positional('NAME'))}", "run")


@command("gcloud.eventarc.triggers.describe")
def triggers_describe(call: Call) -> Json:
    trigger: Json | None = call.state["triggers"].get(short(call.positional("TRIGGER")))
    if trigger is None:
        fail("NOT_FOUND", f"Trigger {call.positional('TRIGGER')} not found")
    return trigger


# -- Cloud Scheduler


def job_of(call: Call) -> Json:
    job: Json | None = call.state["jobs"].get(call.positional("JOB"))
    if job is None:
        fail("NOT_FOUND", f"Job {call.positional('JOB')} not found.")
    return job


def apply_job_flags(call: Call, job: Json) -> None:
    # attemptDeadline: 15 s to 30 min for HTTP targets
    # (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#Job)
    deadline = call.arg("--attempt-deadline")
    if deadline is not None:
        if not 15 <= deadline <= 1800:
            fail("INVALID_ARGUMENT", f"attempt deadline {deadline}s outside 15s..30m")
        job["attemptDeadline"] = f"{int(deadline)}s"
    if call.arg("--schedule") is not None:
        job["schedule"] = call.arg("--schedule")
    target = job.setdefault("httpTarget", {"httpMethod": "POST"})
    if call.arg("--uri") is not None:
        target["uri"] = call.arg("--uri")
    if call.arg("--http-method") is not None:
        target["httpMethod"] = call.arg("--http-method").upper()
    email = call.arg("--oidc-service-account-email")
    if email is not None:
        service_account_of(call, email)
        target["oidcToken"] = {
            "serviceAccountEmail": email,
            "audience": call.arg("--oidc-token-audience", target.get("uri")),
        }


@command("gcloud.scheduler.jobs.describe")
def jobs_describe(call: Call) -> Json:
    return job_of(call)


@command("gcloud.scheduler.jobs.create.http")
def jobs_create(call: Call) -> None:
    name = call.positional("JOB")
    if name in call.state["jobs"]:
        fail("ALREADY_EXISTS", f"Job {name} already exists.")
    job = fx.scheduler_job(call.project, call.arg("--location"), name)
    apply_job_flags(call, job)
    call.state["jobs"][name] = job
    event("create", "job", name)


@command("gcloud.scheduler.jobs.update.http")
def jobs_update(call: Call) -> None:
    apply_job_flags(call, job_of(call))
    event("update", "job", call.positional("JOB"))


@command("gcloud.scheduler.jobs.delete")
def jobs_delete(call: Call) -> None:
    job_of(call)
    del call.state["jobs"][call.positional("JOB")]
    event("delete", "job", call.positional("JOB"))


def render(result: Any, fmt: str, single: bool) -> str:
    request: Json = {"op": "render", "format": fmt}
    request["resource" if single else "resources"] = result
    answer = ask_parser(request)
    if not answer["ok"]:
        raise SystemExit(f"render failed: {answer['error']}")
    out: str = answer["out"]
    return out


def gcloud(argv: list[str]) -> int:
    answer = ask_parser({"op": "parse", "argv": argv, "cwd": str(Path.cwd())})
    record = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "gcloud",
        "argv": argv,
        "command": answer.get("command"),
    }
    append("calls.jsonl", record)
    if not answer["ok"]:
        append("rejects.jsonl", {**record, "error": answer["error"]})
        print(answer["error"], file=sys.stderr)
        return 2
    command_path: str = answer["command"]
    handler = GCLOUD.get(command_path)
    if handler is None:
        append("rejects.jsonl", {**record, "error": "command not simulated"})
        print(f"rehearsal: {command_path} is not simulated", file=sys.stderr)
        return 3
    try:
        failure: ApiError | None = None
        with locked_state() as state:
            call = Call(state, command_path, answer["args"])
            call.require_apis()
            try:
                result = handler(call)
            except FailedAfterChanges as exc:
                failure = exc  # the project keeps what the call did before it failed
        if failure is not None:
            raise failure
    except ApiError as exc:
        print(f"ERROR: ({command_path}) {exc}", file=sys.stderr)
        return 1
    if result is None:
        print(f"Updated [{command_path}].", file=sys.stderr)
        return 0
    listing = isinstance(result, list)
    if listing and call.arg("--filter"):
        keep = ask_parser({"op": "filter", "expression": call.arg("--filter"), "resources": result})
        result = [r for r, k in zip(result, keep["keep"], strict=True) if k]
    if listing and call.arg("--limit"):
        result = result[: call.arg("--limit")]
    fmt = call.arg("--format") or ("yaml" if not listing else "json")
    sys.stdout.write(render(result, fmt, single=not listing))
    return 0


# ---------------------------------------------------------------------------- firebase


def firebase_commands() -> dict[str, Json]:
    """Command names, positional arguments and options of the installed firebase-tools."""
    commands: dict[str, Json] = {}
    for path in sorted((FIREBASE_TOOLS / "lib" / "commands").glob("*.js")):
        text = path.read_text()
        match = re.search(r'new command_1\.Command\("([^"]+)"\)', text)
        if not match:
            continue
        name, *positional = match[1].split()
        options = {}
        for flags in re.findall(r'\.option\("([^"]+)"', text):
            options.update(parse_option(flags))
        if ".withForce(" in text:
            options.update(parse_option("-f, --force"))
        commands[name] = {"positional": positional, "options": options}
    return commands


def parse_option(flags: str) -> dict[str, str]:
    """'-o, --out [file]' -> {'-o': 'optional', '--out': 'optional'} (commander syntax)."""
    takes = "required" if "<" in flags else "optional" if "[" in flags else "none"
    names = re.findall(r"(--?[A-Za-z][\w-]*)", flags.split("<")[0].split("[")[0])
    return dict.fromkeys(names, takes)


def global_options() -> dict[str, str]:
    options: dict[str, str] = {}
    text = (FIREBASE_TOOLS / "lib" / "index.js").read_text()
    for flags in re.findall(r'program\.option\("([^"]+)"', text):
        options.update(parse_option(flags))
    options.update(parse_option("-h, --help"))
    return options


def parse_firebase(argv: list[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Commander's reading of argv, or ValueError for what firebase-tools would refuse."""
    commands = firebase_commands()
    known = global_options()
    name = ""
    positional: list[str] = []
    options: dict[str, Any] = {}
    words = list(argv)
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            flag, has_value, value = word.partition("=")
            spec = {**known, **(commands.get(name, {}).get("options", {}))}
            if flag.startswith("--no-") and f"--{flag[5:]}" in spec:
                options[flag[5:]] = False
                continue
            if flag not in spec:
                raise ValueError(f"error: unknown option '{flag}'")
            takes = spec[flag]
            if takes == "none":
                if has_value:
                    raise ValueError(f"error: option '{flag}' takes no value")
                options[flag.lstrip("-")] = True
            elif has_value:
                options[flag.lstrip("-")] = value
            elif takes == "required":
                if not words:
                    raise ValueError(f"error: option '{flag}' argument missing")
                options[flag.lstrip("-")] = words.pop(0)
            else:
                options[flag.lstrip("-")] = True
        elif not name:
            name = word
            if name not in commands:
                raise ValueError(f"firebase: {name} is not a firebase command")
        else:
            positional.append(word)
    if not name:
        raise ValueError("firebase: no command")
    if len(positional) > len(commands[name]["positional"]):
        raise ValueError(f"Too many arguments. Run firebase help {name} for usage instructions")
    return name, positional, options


def firebase_schema_errors(config: Json) -> list[str]:
    """firebase.json against firebase-tools' schema (schema/firebase-config.json)."""
    import jsonschema_rs

    def quoted(node: Any) -> Any:
        # The schema's own $refs hold '<' and '>' (Record<string,string>): URI-quote them.
        if isinstance(node, dict):
            return {
                key: urllib.parse.quote(value, safe="#/,") if key == "$ref" else quoted(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [quoted(item) for item in node]
        return node

    schema = quoted(json.loads((FIREBASE_TOOLS / "schema" / "firebase-config.json").read_text()))
    validator = jsonschema_rs.validator_for(schema)
    return [str(error).splitlines()[0] for error in validator.iter_errors(config)]


def firebase(argv: list[str]) -> int:
    record: Json = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "firebase",
        "argv": argv,
    }
    try:
        name, positional, options = parse_firebase(argv)
    except ValueError as exc:
        append("calls.jsonl", record)
        append("rejects.jsonl", {**record, "error": str(exc)})
        print(exc, file=sys.stderr)
        return 1
    record["command"] = name
    append("calls.jsonl", record)
    handler = FIREBASE.get(name)
    if handler is None:
        append("rejects.jsonl", {**record, "error": "command not simulated"})
        return 3
    try:
        with locked_state() as state:
            project = options.get("project") or options.get("P")
            if not project or project != state.get("project", project):
                fail("INVALID_ARGUMENT", f"firebase needs --project (got {project!r})")
            if not options.get("non-interactive") and not options.get("json"):
                fail("INVALID_ARGUMENT", "scripts run firebase with --non-interactive")
            # The rehearsal's firebase-tools runs on application-default credentials whose
            # quota project (ADC_QUOTA_PROJECT) has no Firebase APIs; firebase-tools bills
            # GOOGLE_CLOUD_QUOTA_PROJECT instead when set (lib/apiv2.js, x-goog-user-project).
            quota = os.environ.get("GOOGLE_CLOUD_QUOTA_PROJECT") or ADC_QUOTA_PROJECT
            if quota != project:
                fail(
                    "PERMISSION_DENIED",
                    f"Firebase Management API has not been used in project {quota} before "
                    "or it is disabled (the quota project of the application-default "
                    "credentials).",
                )
            result = handler(state, project, positional, options)
    except ApiError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        if options.get("json"):
            print(json.dumps({"status": "error", "error": str(exc)}))
        return 1
    if options.get("json"):
        print(json.dumps(fx.firebase_json_envelope(result), indent=2))
    else:
        print(f"✔  {name} complete", file=sys.stderr)
    return 0


# The quota project of the application-default credentials the rehearsal simulates.
ADC_QUOTA_PROJECT = "operators-own-project"
FirebaseHandler = Callable[[Json, str, list[str], dict[str, Any]], Any]


def require_firebase(state: Json) -> Json:
    project: Json | None = state["firebase"]
    if project is None:
        fail(
            "NOT_FOUND",
            "Failed to get Firebase project. Please make sure the project exists "
            "and your account has permission to access it.",
        )
    return project


def require_api(state: Json, api: str) -> None:
    if api not in state["services"]:
        fail("PERMISSION_DENIED", f"{api} is not enabled")


def default_site(firebase_state: Json) -> Json | None:
    return next((s for s in firebase_state["sites"] if s["type"] == "DEFAULT_SITE"), None)


def fb_projects_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    if state["firebase"] is None:
        return []
    site = default_site(state["firebase"])
    return [fx.firebase_project(project, short(site["name"]) if site else None)]


def fb_addfirebase(state: Json, project: str, positional: list[str], options: Json) -> Any:
    require_api(state, "firebase.googleapis.com")
    if positional and positional[0] != project:
        fail("INVALID_ARGUMENT", "addfirebase names another project")
    if state["firebase"] is not None:
        fail("ALREADY_EXISTS", "Firebase has already been added to this project")
    state["firebase"] = {"apps": [], "sites": [], "auth": {}, "rules": None, "releases": 0}
    event("create", "firebase", project)
    return fx.firebase_project(project, None)


def fb_apps_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    apps: list[Json] = require_firebase(state)["apps"]
    return apps


def fb_apps_create(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    platform, display_name = [*positional, "", ""][:2]
    if platform.upper() != "WEB" or not display_name:
        fail("INVALID_ARGUMENT", "the rehearsal expects apps:create WEB NAME")
    app = fx.web_app(project, len(firebase_state["apps"]) + 1, display_name)
    firebase_state["apps"].append(app)
    event("create", "web_app", display_name)
    # Non-interactive, apps:create takes the offer of a default Hosting site named after
    # the project (firebase-tools lib/commands/apps-create.js, pickHostingSiteName).
    if default_site(firebase_state) is None:
        create_site(state, firebase_state, project, project, app["appId"])
    return app


def create_site(state: Json, firebase_state: Json, project: str, site_id: str, app: Any) -> Json:
    require_api(state, "firebasehosting.googleapis.com")
    if any(short(s["name"]) == site_id for s in firebase_state["sites"]):
        fail("ALREADY_EXISTS", f"Site {site_id} already exists")
    # The first site of a project becomes its default site (what firebase deploy needs:
    # firebase-tools lib/getDefaultHostingSite.js).
    site = fx.hosting_site(project, site_id, app, default=not firebase_state["sites"])
    firebase_state["sites"].append(site)
    event("create", "hosting_site", site_id)
    return site


def fb_sites_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    require_api(state, "firebasehosting.googleapis.com")
    return {"sites": require_firebase(state)["sites"]}


def fb_sites_create(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    if not positional:
        fail("INVALID_ARGUMENT", "siteId is required in a non-interactive environment")
    app = options.get("app")
    if app and not any(a["appId"] == app for a in firebase_state["apps"]):
        fail("NOT_FOUND", f"app {app} not found")
    return create_site(state, firebase_state, project, positional[0], app)


def fb_sdkconfig(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    platform, app_id = [*positional, "", ""][:2]
    if platform.upper() != "WEB" or not any(a["appId"] == app_id for a in firebase_state["apps"]):
        fail("NOT_FOUND", f"no web app {app_id}")
    config = fx.web_app_config(project, app_id)
    contents = f"firebase.initializeApp({json.dumps(config)});"
    return {"fileName": "google-config.js", "fileContents": contents, "sdkConfig": config}


def fb_hosting_disable(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    site = next(
        (s for s in firebase_state["sites"] if short(s["name"]) == options.get("site")), None
    )
    if site is None or not options.get("force"):
        fail("INVALID_ARGUMENT", "hosting:disable needs an existing --site and --force")
    site["disabled"] = True
    event("delete", "hosting_release", short(site["name"]))
    return {}


def fb_deploy(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    config_path = Path(options.get("config") or "firebase.json")
    if Path.cwd() != REPO or config_path.resolve() != REPO / "firebase.json":
        fail("INVALID_ARGUMENT", "deploy from the repo root with its firebase.json")
    config = json.loads(config_path.read_text())
    errors = firebase_schema_errors(config)
    if errors:
        fail("INVALID_ARGUMENT", f"firebase.json does not match the schema: {errors}")
    only = options.get("only")
    if not only:
        fail("INVALID_ARGUMENT", "the scripts deploy with --only")
    for target in only.split(","):
        if target in ("firestore:rules", "firestore:indexes"):
            require_api(state, "firestore.googleapis.com")
            require_api(state, "firebaserules.googleapis.com")
            if "(default)" not in state["databases"]:
                # firebase-tools would create it, in nam5, for good: never let it.
                fail("FAILED_PRECONDITION", "no (default) database: deploy would create it in nam5")
            firestore = config["firestore"]
            if target == "firestore:rules":
                rules = (REPO / firestore["rules"]).read_text()
                if not rules.startswith("rules_version"):
                    fail("INVALID_ARGUMENT", "firestore.rules does not compile")
                state["rules"] = rules
                event("update", "rules", firestore["rules"])
            else:
                deploy_indexes(state, json.loads((REPO / firestore["indexes"]).read_text()))
        elif target == "auth":
            require_api(state, "identitytoolkit.googleapis.com")
            if not firebase_state["apps"]:  # lib/deploy/auth/prepare.js creates one
                firebase_state["apps"].append(fx.web_app(project, 99, "Default Web App"))
                event("create", "web_app", "Default Web App")
            providers = config["auth"]["providers"]
            if firebase_state["auth"] != providers:
                firebase_state["auth"] = providers
                event("update", "auth", ",".join(sorted(providers)))
        elif target == "hosting":
            require_api(state, "firebasehosting.googleapis.com")
            site = default_site(firebase_state)
            if site is None:
                fail(
                    "FAILED_PRECONDITION", "Unable to deploy to Hosting as there is no Hosting site"
                )
            public = REPO / config["hosting"]["public"]
            files = hosting_files(public, config["hosting"].get("ignore", []))
            if "index.html" not in files:
                fail("INVALID_ARGUMENT", f"no index.html in {public}")
            site.pop("disabled", None)
            firebase_state["releases"] += 1
            firebase_state["hosted_files"] = files
            event("update", "hosting_release", short(site["name"]))
        else:
            fail("INVALID_ARGUMENT", f"the rehearsal does not simulate deploy target {target}")
    return {}


def deploy_indexes(state: Json, indexes: Json) -> None:
    database = "(default)"
    specs = state["indexes"].setdefault(database, [])
    for spec in indexes.get("indexes", []):
        if spec not in specs:
            specs.append(spec)
            event("create", "index", json.dumps(spec, sort_keys=True))
    fields = state["fields"].setdefault(database, {})
    overrides = state.setdefault("field_indexes", {}).setdefault(database, {})
    for override in indexes.get("fieldOverrides", []):
        key = f"{override['collectionGroup']}/{override['fieldPath']}"
        overrides[key] = override.get("indexes", [])
        if override.get("ttl") and fields.get(key) is None:
            fields[key] = "ACTIVE"
            event("create", "ttl", key)


def hosting_files(public: Path, ignore: list[str]) -> list[str]:
    files = []
    for path in sorted(public.rglob("*")):
        relative = path.relative_to(public).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(relative, p) for p in ignore):
            files.append(relative)
    return files


FIREBASE: dict[str, FirebaseHandler] = {
    "projects:list": fb_projects_list,
    "projects:addfirebase": fb_addfirebase,
    "apps:list": fb_apps_list,
    "apps:create": fb_apps_create,
    "apps:sdkconfig": fb_sdkconfig,
    "hosting:sites:list": fb_sites_list,
    "hosting:sites:create": fb_sites_create,
    "hosting:disable": fb_hosting_disable,
    "deploy": fb_deploy,
}


# ---------------------------------------------------------------------------- node

BUILD_ENV = (
    "SUBMIT_URL",
    "STATUS_URL",
    "GOOGLE_CLOUD_PROJECT",
    "FIREBASE_API_KEY",
    "FIREBASE_AUTH_DOMAIN",
    "FIREBASE_APP_ID",
)


def node(argv: list[str]) -> int:
    record: Json = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "node",
        "argv": argv,
        "command": " ".join(argv),
    }
    append("calls.jsonl", record)
    problems = []
    if argv != ["web/build.mjs"] or Path.cwd() != REPO:
        problems.append("expected `node web/build.mjs` from the repo root")
    missing = [name for name in BUILD_ENV if not os.environ.get(name)]
    if missing:
        problems.append(f"web/build.mjs needs {missing}")
    emulated = [n for n in ("AUTH_EMULATOR_URL", "FIRESTORE_EMULATOR_HOST") if n in os.environ]
    if emulated:
        problems.append(f"emulator settings reach the production build: {emulated}")
    if problems:
        append("rejects.jsonl", {**record, "error": "; ".join(problems)})
        print("; ".join(problems), file=sys.stderr)
        return 1
    append("web_builds.jsonl", {name: os.environ[name] for name in BUILD_ENV})
    print("web/build.mjs: web/dist/app.js (rehearsal: nothing written)", file=sys.stderr)
    return 0


def main() -> int:
    tool, *argv = sys.argv[1:]
    return {"gcloud": gcloud, "firebase": firebase, "node": node}[tool](argv)


if __name__ == "__main__":
    sys.exit(main())
