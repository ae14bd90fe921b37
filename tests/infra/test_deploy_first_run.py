"""What a real project answers that an emulator never does (issue 15, defects 3–8).

A fresh project's first deploy meets "not yet" answers (tests/infra/standin/,
"first-run faults"): deploy.sh must pass them in one run and say what it waits for.
An organisation policy may refuse public functions; a project may already hold a
database, a bucket or a Hosting site that teardown.sh must leave alone.
"""

from __future__ import annotations

import pytest

from tests.infra.conftest import PROJECT, REGION, REPO, Rehearsal
from tests.infra.test_deploy_rehearsal import explain

# What an operator runs by hand is run some minutes after enabling an API.
BY_HAND = {"REHEARSAL_FRESH_FAULTS": "0"}


def by_hand(rehearsal: Rehearsal, name: str, *argv: str) -> None:
    result = rehearsal.run(name, list(argv), **BY_HAND)
    assert result.returncode == 0, explain(result)


def create_secret(rehearsal: Rehearsal) -> None:
    by_hand(rehearsal, "enable-sm", "gcloud", f"--project={PROJECT}", "services", "enable",
            "secretmanager.googleapis.com")  # fmt: skip
    create = (
        "printf %s x | gcloud secrets create GEMINI_API_KEY --data-file=- "
        f"--replication-policy=automatic --project={PROJECT}"
    )
    by_hand(rehearsal, "secret", "bash", "-c", create)


def test_a_fresh_project_deploys_in_one_run_and_says_what_it_waits_for(
    rehearsal: Rehearsal,
) -> None:
    create_secret(rehearsal)
    result = rehearsal.run("fresh", ["bash", "infra/deploy.sh"])
    assert result.returncode == 0, explain(result)
    given = {f["key"].split(":")[0] for f in rehearsal.records("faults.jsonl")}
    assert given == {
        "service-disabled",
        "unknown-account",
        "eventarc-agent",
        "firebase-service-disabled",
    }
    for reason in (
        "Eventarc's service agent to get its role",
        "IAM to know the service account just created",
        "the API just enabled to reach every Google system",
    ):
        assert f"for {reason} (try 2 of" in result.stderr, reason
    # firebase-tools too: its first call's SERVICE_DISABLED is only in its debug log
    # (projects:list wraps the error), and it is retried like gcloud's.
    assert (
        "for the API just enabled to reach every Google system (try 2 of 10): "
        "firebase projects:list" in result.stderr
    )
    firebase = [c["command"] for c in rehearsal.records("calls.jsonl") if c["tool"] == "firebase"]
    assert firebase[:3] == ["projects:list", "projects:list", "projects:addfirebase"]
    # Its debug log stays out of the repo.
    assert not (REPO / "firebase-debug.log").exists()
    # Each wait bounded (at most 60 s), and far fewer than the tries allowed.
    waits = [int(line) for line in (rehearsal.directory / "sleeps.log").read_text().split()]
    assert waits and max(waits) <= 60
    # The agents were made right after the APIs, before anything used them.
    calls = rehearsal.records("calls.jsonl")
    agents = [
        i for i, c in enumerate(calls) if c["command"] == "gcloud.beta.services.identity.create"
    ]
    enables = [i for i, c in enumerate(calls) if c["command"] == "gcloud.services.enable"]
    first_function = min(
        i for i, c in enumerate(calls) if c["command"] == "gcloud.functions.deploy"
    )
    assert max(enables) < min(agents) and max(agents) < first_function
    made = {c["argv"][-2] for c in calls if c["command"] == "gcloud.beta.services.identity.create"}
    assert made == {"--service=eventarc.googleapis.com", "--service=pubsub.googleapis.com"}


def test_a_wait_that_never_ends_gives_up_with_its_reason(rehearsal: Rehearsal) -> None:
    create_secret(rehearsal)
    result = rehearsal.run("impatient", ["bash", "infra/deploy.sh"], DEPLOY_RETRY_ATTEMPTS="1")
    assert result.returncode != 0
    assert "gave up after 1 tries waiting for" in result.stderr


def test_domain_restricted_sharing_stops_with_the_org_policy_guidance(
    rehearsal: Rehearsal,
) -> None:
    create_secret(rehearsal)
    result = rehearsal.run(
        "drs", ["bash", "infra/deploy.sh"], REHEARSAL_ORG_POLICY="domain-restricted-sharing"
    )
    assert result.returncode != 0
    assert "constraints/iam.allowedPolicyMemberDomains" in result.stderr
    assert "gcloud org-policies set-policy" in result.stderr
    # It stopped at the first public function: nothing after it was deployed.
    functions = rehearsal.state()["functions"]
    assert set(functions) == {"task_status"}
    # A refusal that is not a "not yet" answer fails at once, never retried.
    deploys = [
        c for c in rehearsal.records("calls.jsonl") if c["command"] == "gcloud.functions.deploy"
    ]
    assert len(deploys) == 1
    assert "allUsers" not in rehearsal.state()["iam"]["run:task-status"].get(
        "roles/run.invoker", []
    )


def test_a_denied_firebase_project_list_stops_deploy_instead_of_adding_firebase(
    rehearsal: Rehearsal,
) -> None:
    create_secret(rehearsal)
    result = rehearsal.run(
        "fbdeny", ["bash", "infra/deploy.sh"], REHEARSAL_FIREBASE_DENY="projects:list"
    )
    assert result.returncode != 0
    assert "firebase projects:list failed" in result.stderr
    commands = [c["command"] for c in rehearsal.records("calls.jsonl")]
    assert not any("addfirebase" in command for command in commands), commands


def test_hosting_site_is_refused_rather_than_ignored(rehearsal: Rehearsal) -> None:
    result = rehearsal.run("site", ["bash", "infra/deploy.sh"], HOSTING_SITE="my-site")
    assert result.returncode != 0
    assert "HOSTING_SITE is no longer read" in result.stderr
    assert rehearsal.records("calls.jsonl") == []


def test_teardown_deletes_only_what_deploy_created(rehearsal: Rehearsal) -> None:
    """A project that already had a database, a bucket named like ours and a Hosting
    site; deploy.sh runs with its own bucket; teardown.sh runs with no override."""
    gcloud = ("gcloud", f"--project={PROJECT}")
    by_hand(rehearsal, "enable", *gcloud, "services", "enable", "firestore.googleapis.com",
            "storage.googleapis.com", "firebase.googleapis.com",
            "firebasehosting.googleapis.com")  # fmt: skip
    by_hand(rehearsal, "db", *gcloud, "firestore", "databases", "create", "--database=(default)",
            "--location=eur3", "--type=firestore-native")  # fmt: skip
    by_hand(rehearsal, "bucket", *gcloud, "storage", "buckets", "create",
            f"gs://{PROJECT}-uploads", f"--location={REGION}")  # fmt: skip
    firebase = ("firebase", f"--project={PROJECT}", "--non-interactive")
    env_quota = {"GOOGLE_CLOUD_QUOTA_PROJECT": PROJECT, **BY_HAND}
    for name, argv in (
        ("addfirebase", [*firebase, "projects:addfirebase", PROJECT]),
        ("app", [*firebase, "apps:create", "WEB", "The shop"]),
    ):
        result = rehearsal.run(name, argv, **env_quota)
        assert result.returncode == 0, explain(result)
    create_secret(rehearsal)

    ours = f"{PROJECT}-tinkerbell"
    deployed = rehearsal.run("deploy", ["bash", "infra/deploy.sh"], UPLOADS_BUCKET=ours)
    assert deployed.returncode == 0, explain(deployed)
    state = rehearsal.state()
    assert state["buckets"][ours]["labels"]["app"] == "tinkerbell"
    assert state["buckets"][ours]["soft_delete_policy"] == {"retentionDurationSeconds": "0"}
    assert "labels" not in state["buckets"][f"{PROJECT}-uploads"]
    assert {t.get("labels", {}).get("app") for t in state["topics"].values()} == {"tinkerbell"}

    teardown = rehearsal.run("teardown", ["bash", "infra/teardown.sh", "--yes"])
    assert teardown.returncode == 0, explain(teardown)
    state = rehearsal.state()
    assert set(state["buckets"]) == {f"{PROJECT}-uploads"}
    assert "(default)" in state["databases"]
    assert not any(site.get("disabled") for site in state["firebase"]["sites"])
    assert state["functions"] == {} and state["topics"] == {}
    assert "kept the Firestore database (default): deploy.sh did not create it" in teardown.stderr
    assert "anonymous Authentication users" in teardown.stderr


@pytest.mark.parametrize("quota_project", ["", "operators-own-project"])
def test_firebase_bills_the_project_not_the_credentials_quota_project(
    rehearsal: Rehearsal, quota_project: str
) -> None:
    """The stand-in refuses a firebase call billed to the ADC file's quota project,
    as the real Firebase Management API does when that project lacks it."""
    by_hand(rehearsal, "enable", "gcloud", f"--project={PROJECT}", "services", "enable",
            "firebase.googleapis.com")  # fmt: skip
    argv = ["firebase", "projects:list", "--json", f"--project={PROJECT}", "--non-interactive"]
    refused = rehearsal.run("adc", argv, GOOGLE_CLOUD_QUOTA_PROJECT=quota_project)
    assert refused.returncode != 0
    assert "quota project" in refused.stderr
    billed = rehearsal.run("ours", argv, GOOGLE_CLOUD_QUOTA_PROJECT=PROJECT, **BY_HAND)
    assert billed.returncode == 0, explain(billed)
