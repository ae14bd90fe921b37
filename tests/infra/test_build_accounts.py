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

from tests.infra.conftest import PROJECT, REPO, Rehearsal
from tests.infra.test_deploy_first_run import create_secret
from tests.infra.test_deploy_rehearsal import explain

CI = f"serviceAccount:tinkerbell-ci@{PROJECT}.iam.gserviceaccount.com"
DEPLOYER = f"serviceAccount:tinkerbell-deployer@{PROJECT}.iam.gserviceaccount.com"


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
