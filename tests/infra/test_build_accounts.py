"""Cloud Build runs the checks and the deploy as two identities (issue 15, defect 7).

cloudbuild.yaml (npm ci, pip install, lint, tests) runs as tinkerbell-ci, which can
only write logs; cloudbuild.deploy.yaml runs infra/deploy.sh alone as
tinkerbell-deployer, whose right to grant project roles is limited to the roles
deploy.sh grants. infra/build_accounts.sh makes both, through the rehearsal's
stand-ins (every gcloud call parsed by the installed gcloud).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from infra.iam_audit import deploy_needs, deployer_audit, deployer_permissions, reaching
from tests.infra.conftest import PROJECT, REPO, Rehearsal
from tests.infra.test_deploy_first_run import by_hand, create_secret
from tests.infra.test_deploy_rehearsal import explain
from tests.infra.test_iam_coverage import names

CI = f"serviceAccount:tinkerbell-ci@{PROJECT}.iam.gserviceaccount.com"
DEPLOYER_EMAIL = f"tinkerbell-deployer@{PROJECT}.iam.gserviceaccount.com"
DEPLOYER = f"serviceAccount:{DEPLOYER_EMAIL}"
RUNTIME = ("api", "worker", "recovery", "webhooks", "trigger", "scheduler", "builder")


def build_steps(name: str) -> list[dict[str, Any]]:
    config = yaml.safe_load((REPO / name).read_text())
    steps: list[dict[str, Any]] = config["steps"]
    return steps


def scripts(name: str) -> str:
    return "\n".join(" ".join(step.get("args", [])) for step in build_steps(name))


def test_the_checks_build_never_deploys_and_the_deploy_build_runs_nothing_else() -> None:
    checks = scripts("cloudbuild.yaml")
    assert "make lint" in checks and "pytest tests/unit" in checks and "tests/infra" in checks
    assert "deploy.sh" not in checks
    deploy = scripts("cloudbuild.deploy.yaml")
    assert "infra/deploy.sh" in deploy
    for forbidden in ("pytest", "make lint", "make ", "ruff", "mypy", "requirements-dev"):
        assert forbidden not in deploy, forbidden
    # No package's own code runs as the deployer while installing.
    npm = re.findall(r"npm ci[^\n]*", deploy)
    assert npm and all("--ignore-scripts" in line for line in npm)
    pip = re.findall(r"pip install[^\n]*", deploy)
    assert pip and all("--only-binary=:all:" in line for line in pip)


def test_the_build_accounts_hold_only_what_their_build_needs(rehearsal: Rehearsal) -> None:
    made = rehearsal.run("accounts", ["bash", "infra/build_accounts.sh"])
    assert made.returncode == 0, explain(made)
    # What an earlier build_accounts.sh granted the deployer goes on the next run.
    for role in ("roles/iam.serviceAccountUser", "roles/storage.admin"):
        by_hand(rehearsal, "legacy", "gcloud", f"--project={PROJECT}", "projects",
                "add-iam-policy-binding", PROJECT, f"--member={DEPLOYER}", f"--role={role}",
                "--condition=None")  # fmt: skip
    again = rehearsal.run("accounts-again", ["bash", "infra/build_accounts.sh"])
    assert again.returncode == 0, explain(again)
    assert rehearsal.records("rejects.jsonl") == []
    project = rehearsal.state()["iam"]["project"]
    held = {role for role, members in project.items() if CI in members}
    assert held == {"roles/logging.logWriter"}

    # The deployer may grant exactly the project roles deploy.sh grants, for both
    # Gemini backends.
    condition = rehearsal.state()["iam_conditions"]["project"]
    expression = condition[f"roles/resourcemanager.projectIamAdmin {DEPLOYER}"]
    grantable = set(re.findall(r"'(roles/[^']+)'", expression))
    create_secret(rehearsal)
    deployed = rehearsal.run("deploy", ["bash", "infra/deploy.sh"])
    assert deployed.returncode == 0, explain(deployed)
    vertex = rehearsal.run(
        "vertex",
        ["bash", "infra/deploy.sh"],
        GEMINI_BACKEND="vertex",
        GEMINI_VERTEX_PROJECT=PROJECT,
    )
    assert vertex.returncode == 0, explain(vertex)
    project = rehearsal.state()["iam"]["project"]
    granted = {
        role
        for role, members in project.items()
        if any(
            m.startswith("serviceAccount:tinkerbell-") and m not in (CI, DEPLOYER) for m in members
        )
    }
    assert granted == grantable

    # The deployer (issue 15, defect 7): every command deploy.sh ran, in both runs,
    # against the permissions of what it holds (infra/iam_permissions.py).
    state = rehearsal.state()
    calls = [c for c in rehearsal.records("calls.jsonl") if c["run"] in ("deploy", "vertex")]
    assert deployer_audit(state, calls, DEPLOYER_EMAIL, names()) == []
    # It acts as the runtime accounts through a grant on each account, never on the project.
    held = {role for role, members in project.items() if DEPLOYER in members}
    permissions = {role: deployer_permissions(role, state) or frozenset() for role in held}
    assert not any("iam.serviceAccounts.actAs" in permissions[role] for role in held)
    acts_as = {
        resource
        for resource, policy in state["iam"].items()
        if DEPLOYER in policy.get("roles/iam.serviceAccountUser", [])
    }
    runtime = {f"account:tinkerbell-{role}@{PROJECT}.iam.gserviceaccount.com" for role in RUNTIME}
    assert acts_as == runtime
    needs, _ = deploy_needs(calls)
    assert {r for p, r in needs if p == "iam.serviceAccounts.actAs"} == runtime
    # It can set up the bucket and the secret but read neither the PDFs nor the key.
    private = {
        f"bucket:{names().bucket}": "storage.objects.",
        f"secret:{names().secret}": "secretmanager.versions.access",
    }
    conditions = state.get("iam_conditions", {}).get("project", {})
    for role in held:
        condition = conditions.get(f"{role} {DEPLOYER}")
        assert reaching(permissions[role], "project", condition, private) == [], role
