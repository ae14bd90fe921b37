"""Checks a deployed project for what only production enforces (docs/deploy.md):

    PROJECT=my-project [REGION=europe-west1] python -m infra.check_deploy   (make check-deploy)

- IAM: reads the six functions, the sweeper's job and the IAM policies of the project,
  the bucket, the topics, the secret and the functions' Cloud Run services with gcloud,
  and runs the audit the deploy rehearsal runs (infra/iam_audit.py): every Google call
  each function's code can reach is allowed to its identity, and no identity holds a
  role none of its uses needs.
- Indexes: every composite index of firestore.indexes.json exists and is READY, and
  every field override has the single-field indexes (and TTL) the file gives it.

Read-only: it changes nothing. Exits 0 when all holds, 1 with one line per problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra import google_calls
from infra.iam_audit import Names, audit

REPO = Path(__file__).resolve().parents[1]
SWEEP_JOB = "tinkerbell-sweep"
SECRET = "GEMINI_API_KEY"  # noqa: S105 (the secret's name)


class GcloudError(Exception):
    pass


def gcloud(project: str, *args: str) -> Any:
    done = subprocess.run(
        ["gcloud", f"--project={project}", "--quiet", *args, "--format=json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise GcloudError(f"gcloud {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout or "null")


def policy_bindings(policy: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """role -> members, and "ROLE MEMBER" -> condition expression of conditional grants."""
    roles: dict[str, list[str]] = {}
    conditions: dict[str, str] = {}
    for binding in (policy or {}).get("bindings", []):
        role = binding["role"]
        roles.setdefault(role, []).extend(binding.get("members", []))
        expression = (binding.get("condition") or {}).get("expression")
        if expression:
            for member in binding.get("members", []):
                conditions[f"{role} {member}"] = expression
    return roles, conditions


def project_state(project: str, region: str) -> tuple[dict[str, Any], Names]:
    """The deployment as infra/iam_audit.py reads it."""
    functions = {
        name: gcloud(project, "functions", "describe", name, f"--region={region}", "--v2")
        for name in google_calls.entry_points()
    }
    worker_env = functions["process_task"]["serviceConfig"].get("environmentVariables", {})
    names = Names(
        project=project,
        bucket=worker_env["UPLOADS_BUCKET"],
        topics={field: worker_env[field.upper()] for field in google_calls.TOPIC_FIELDS},
    )
    job = gcloud(project, "scheduler", "jobs", "describe", SWEEP_JOB, f"--location={region}")
    roles, conditions = policy_bindings(gcloud(project, "projects", "get-iam-policy", project))
    iam: dict[str, dict[str, list[str]]] = {"project": roles}
    bucket = gcloud(project, "storage", "buckets", "get-iam-policy", f"gs://{names.bucket}")
    iam[f"bucket:{names.bucket}"] = policy_bindings(bucket)[0]
    for topic in names.topics.values():
        iam[f"topic:{topic}"] = policy_bindings(
            gcloud(project, "pubsub", "topics", "get-iam-policy", topic)
        )[0]
    if any(f["serviceConfig"].get("secretEnvironmentVariables") for f in functions.values()):
        secret = gcloud(project, "secrets", "get-iam-policy", SECRET)
        iam[f"secret:{SECRET}"] = policy_bindings(secret)[0]
    for function in functions.values():
        service = str(function["serviceConfig"]["service"]).rsplit("/", 1)[-1]
        policy = gcloud(project, "run", "services", "get-iam-policy", service, f"--region={region}")
        iam[f"run:{service}"] = policy_bindings(policy)[0]
    state = {
        "functions": functions,
        "jobs": {SWEEP_JOB: job},
        "iam": iam,
        "iam_conditions": {"project": conditions},
    }
    return state, names


def composite_shape(group: str, index: dict[str, Any]) -> tuple[Any, ...]:
    """Collection group, scope and (field, order) list of a composite index, as the
    indexes file writes it and as Firestore lists it (with its implicit ``__name__``)."""
    fields = tuple(
        (f["fieldPath"], f.get("order") or f.get("arrayConfig"))
        for f in index["fields"]
        if f["fieldPath"] != "__name__"
    )
    return group, index.get("queryScope", "COLLECTION"), fields


def index_problems(project: str) -> list[str]:
    config = json.loads((REPO / "firestore.indexes.json").read_text())
    deployed = gcloud(project, "firestore", "indexes", "composite", "list") or []
    problems = []
    for index in config.get("indexes", []):
        wanted = composite_shape(index["collectionGroup"], index)
        found = [
            d
            for d in deployed
            if composite_shape(d["name"].split("/collectionGroups/")[1].split("/")[0], d) == wanted
        ]
        fields = ", ".join(f"{path} {order}" for path, order in wanted[2])
        shape = f"{index['collectionGroup']} on {fields}"
        if not found:
            problems.append(f"missing composite index: {shape}")
        elif found[0].get("state") != "READY":
            problems.append(f"composite index {shape} is {found[0].get('state')}, not READY")
    for override in config.get("fieldOverrides", []):
        group, path = override["collectionGroup"], override["fieldPath"]
        field = gcloud(
            project,
            "firestore",
            "indexes",
            "fields",
            "describe",
            path,
            f"--collection-group={group}",
        )
        have = {
            (i.get("queryScope", "COLLECTION"), f.get("order") or f.get("arrayConfig"))
            for i in (field.get("indexConfig") or {}).get("indexes", [])
            for f in i.get("fields", [])
        }
        for index in override.get("indexes", []):
            key = (
                index.get("queryScope", "COLLECTION"),
                index.get("order") or index.get("arrayConfig"),
            )
            if key not in have:
                problems.append(f"{group}.{path} lacks its single-field index {key[1]} ({key[0]})")
        if override.get("ttl") and (field.get("ttlConfig") or {}).get("state") != "ACTIVE":
            problems.append(f"{group}.{path} has no active TTL policy")
    return problems


def main() -> int:
    project = os.environ.get("PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        sys.stderr.write("set PROJECT to the deployed project's id\n")
        return 2
    region = os.environ.get("REGION", "europe-west1")
    try:
        state, names = project_state(project, region)
        problems = audit(state, google_calls.function_operations(), names)
        problems += index_problems(project)
    except (GcloudError, KeyError) as exc:
        sys.stderr.write(f"check-deploy: could not read the deployment: {exc}\n")
        return 1
    for problem in problems:
        sys.stdout.write(f"PROBLEM {problem}\n")
    verdict = "OK" if not problems else f"{len(problems)} problems"
    sys.stdout.write(f"check-deploy: {project}: {verdict}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
