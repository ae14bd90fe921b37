"""What every stand-in shares: the simulated project's rules (APIs, roles, limits), the
errors it answers, the first-run faults of a new project, and the state and logs under
``$REHEARSAL_DIR``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[3]
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
        "roles/firebaseauth.admin",
        "roles/logging.logWriter",
        "roles/artifactregistry.writer",
        "roles/storage.objectAdmin",
        "roles/run.invoker",
        "roles/eventarc.eventReceiver",
        "roles/iam.serviceAccountTokenCreator",
        "roles/aiplatform.user",
        # infra/build_accounts.sh: the Cloud Build identities (and a custom role of its
        # own: any role the project defines is accepted).
        "roles/serviceusage.serviceUsageAdmin",
        "roles/resourcemanager.projectIamAdmin",
        "roles/iam.serviceAccountCreator",
        "roles/cloudfunctions.admin",
        "roles/run.admin",
        "roles/eventarc.admin",
        "roles/pubsub.admin",
        "roles/cloudscheduler.admin",
        "roles/datastore.owner",
        "roles/firebasehosting.admin",
        "roles/firebaserules.admin",
        # What an earlier build_accounts.sh granted the deployer (it revokes them now).
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountUser",
        "roles/storage.admin",
        "roles/secretmanager.admin",
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
    "account": {"roles/iam.serviceAccountUser"},
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


def refuses_all_users() -> bool:
    return os.environ.get("REHEARSAL_ORG_POLICY") == "domain-restricted-sharing"


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
