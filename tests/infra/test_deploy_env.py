"""infra/deploy_env.py: the deployment's values come from shared/settings.py alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra import deploy_env
from shared.settings import Settings
from tests.infra.conftest import REPO, settings_as_deployed

PROJECT = "tinkerbell-rehearsal"
STATUS = f"https://europe-west1-{PROJECT}.cloudfunctions.net/task_status"


PRICES_37 = json.dumps(
    {
        model: {"input_per_million": 0.5, "output_per_million": 3, "tool_use_per_million": 0.5}
        for model in ("gemini-3.7-flash", "gemini-nano-banana-2.1")
    }
)


def test_an_unpriced_model_is_deployed_when_no_day_budget_is_on() -> None:
    off = {name: "0" for name in BUDGETS}
    result = run(["--project", PROJECT], GEMINI_TEXT_MODEL="gemini-3.7-flash", **off)
    assert result.returncode == 0, result.stderr


BUDGETS = (
    "DAILY_BUDGET_EUR",
    "DAILY_BUDGET_PER_USER_EUR",
    "DAILY_BUDGET_PER_ANONYMOUS_USER_EUR",
)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    return subprocess.run(
        [sys.executable, "infra/deploy_env.py", *args],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )


def test_shell_values_are_the_settings() -> None:
    result = run(["--project", PROJECT])
    assert result.returncode == 0, result.stderr
    script = f"{result.stdout}\necho $LEASE_SECONDS $ACK_DEADLINE_SECONDS $BUCKET $TASKS_TOPIC"
    echoed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    settings = settings_as_deployed()
    assert echoed.stdout.split() == [
        str(settings.lease_seconds),
        str(settings.ack_deadline_seconds),
        settings.bucket_name,
        settings.tasks_topic,
    ]


def test_env_file_has_overrides_and_the_deployment_values_never_the_key(tmp_path: Path) -> None:
    env_file = tmp_path / "env.yaml"
    result = run(
        [
            "--project",
            PROJECT,
            "--status-base-url",
            STATUS,
            "--cors-origins",
            f"https://{PROJECT}.web.app",
            "--env-file",
            str(env_file),
        ],
        GEMINI_API_KEY="AIza-secret",
        log_level="DEBUG",  # the settings read names case-insensitively
        GEMINI_TEXT_MODEL="gemini-3.7-flash",
        GEMINI_PRICES=PRICES_37,
        CORS_ORIGINS="https://admin.example.com/",
        GOOGLE_CLOUD_PROJECT="someone-elses-project",
        UNRELATED_VARIABLE="x",
    )
    assert result.returncode == 0, result.stderr
    env = yaml.safe_load(env_file.read_text())
    assert all(isinstance(value, str) for value in env.values())
    assert "GEMINI_API_KEY" not in env
    assert "AIza-secret" not in env_file.read_text()
    assert "UNRELATED_VARIABLE" not in env
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["GEMINI_TEXT_MODEL"] == "gemini-3.7-flash"
    assert json.loads(env["GEMINI_PRICES"])["gemini-3.7-flash"]["output_per_million"] == 3
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    assert env["STATUS_BASE_URL"] == STATUS
    assert env["CORS_ORIGINS"] == f"https://{PROJECT}.web.app,https://admin.example.com"
    assert env["UPLOADS_BUCKET"] == f"{PROJECT}-uploads"
    for name in deploy_env.INFRA_FIELDS:
        assert name.upper() in env


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEASE_SECONDS": "600"}, "LEASE_SECONDS=600 exceeds 540 s"),
        ({"LEASE_SECONDS": "100"}, "shorter than the worst case"),
        ({"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"}, "set in a deployed function"),
        (
            {"UPLOAD_RETENTION_DAYS": "soon"},
            "UPLOAD_RETENTION_DAYS: Input should be a valid integer",
        ),
        (
            {"GEMINI_TEXT_MODEL": "gemini-3.7-flash"},
            "GEMINI_TEXT_MODEL='gemini-3.7-flash' have no price in GEMINI_PRICES",
        ),
    ],
)
def test_a_refused_configuration_exits_2_with_the_settings_message(
    env: dict[str, str], message: str
) -> None:
    result = run(["--project", PROJECT], **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_demo_projects_are_not_deployed() -> None:
    result = run(["--project", "demo-tinkerbell"])
    assert result.returncode == 2
    assert "emulator-only" in result.stderr


@pytest.mark.usefixtures("clean_environ")
def test_the_deployed_marker_does_not_leak() -> None:
    deploy_env.build_settings(PROJECT, STATUS, "", {})
    assert "K_SERVICE" not in os.environ


def test_every_expiring_collection_has_a_ttl_policy() -> None:
    """A new collection setting must say whether its documents expire (TTL_FIELDS)."""
    collections = {name for name in Settings.model_fields if name.endswith("_collection")}
    # The service config is one document (tasks expire: TASK_RETENTION_DAYS); a user's
    # webhook secret lasts until it is rotated or the user erased (DELETE /v1/me).
    kept = {"service_config_collection", "webhook_secrets_collection"}
    assert collections - kept == set(deploy_env.TTL_FIELDS)
    for module in ("idempotency", "gemini_files", "upload_sessions"):
        assert '"expires_at"' in (REPO / "shared" / f"{module}.py").read_text()


def test_secret_settings_are_never_overrides() -> None:
    secrets = {name for name in Settings.model_fields if deploy_env.is_secret(name)}
    assert "gemini_api_key" in secrets
    overrides = deploy_env.operator_overrides({"GEMINI_API_KEY": "x", "LOG_LEVEL": "DEBUG"})
    assert overrides == {"log_level": "DEBUG"}


def test_the_worker_is_sized_to_the_gemini_tier_and_a_cap_beyond_it_refused() -> None:
    """docs/capacity.md: with the tier's requests and tokens a minute, deploy sizes the
    worker to what the tier serves and refuses a minute cap it cannot serve."""
    tier = {"GEMINI_REQUESTS_PER_MINUTE": "2000", "GEMINI_TOKENS_PER_MINUTE": "4000000"}
    refused = run(["--project", PROJECT], **tier)  # the default cap: 300 a minute
    assert refused.returncode == 2
    assert "MAX_TASKS_PER_MINUTE=300" in refused.stderr and "at most 190" in refused.stderr
    sized = run(["--project", PROJECT], **tier, MAX_TASKS_PER_MINUTE="180")
    assert sized.returncode == 0, sized.stderr
    script = f"{sized.stdout}\necho $WORKER_MAX_INSTANCES $WORKER_CONCURRENCY $WORKER_MEMORY"
    echoed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    # 190 tasks a minute of 20 s: 64 in flight, 8 instances of 8 tasks; (205 MiB +
    # 8 x 48 MiB) x 1.5 = 884 MiB: 1 GiB.
    assert echoed.stdout.split() == ["8", "8", "1024Mi"]
    default = run(["--project", PROJECT])
    script = f"{default.stdout}\necho $WORKER_MAX_INSTANCES $WORKER_CONCURRENCY"
    echoed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert echoed.stdout.split() == ["100", "8"]  # no tier given: the defaults


def env_file_of(tmp_path: Path, **env: str) -> dict[str, str]:
    env_file = tmp_path / "env.yaml"
    args = ["--project", PROJECT, "--status-base-url", STATUS, "--env-file", str(env_file)]
    result = run(args, **env)
    assert result.returncode == 0, result.stderr
    written: dict[str, str] = yaml.safe_load(env_file.read_text())
    return written


def test_the_webhook_settings_reach_the_functions_as_the_settings_read_them(
    tmp_path: Path,
) -> None:
    """The topics, the attempt's timeout and the schedule are always written (the
    subscription is built from them); the schedule as JSON, which the settings parse."""
    env = env_file_of(tmp_path, WEBHOOK_RETRY_SCHEDULE_S="[5, 60, 3600]", WEBHOOK_TIMEOUT_S="20")
    assert json.loads(env["WEBHOOK_RETRY_SCHEDULE_S"]) == [5, 60, 3600]
    assert env["WEBHOOK_TIMEOUT_S"] == "20.0"
    defaults = settings_as_deployed()
    assert env["WEBHOOKS_TOPIC"] == defaults.webhooks_topic
    assert env["WEBHOOK_DEAD_LETTER_TOPIC"] == defaults.webhook_dead_letter_topic
    read_back = settings_as_deployed({"WEBHOOK_RETRY_SCHEDULE_S": env["WEBHOOK_RETRY_SCHEDULE_S"]})
    assert read_back.webhook_retry_schedule_s == [5, 60, 3600]
    default_env = env_file_of(tmp_path)
    assert json.loads(default_env["WEBHOOK_RETRY_SCHEDULE_S"]) == defaults.webhook_retry_schedule_s


def test_loopback_receivers_are_never_deployed(tmp_path: Path) -> None:
    refused = run(["--project", PROJECT], WEBHOOK_ALLOW_LOOPBACK="true")
    assert refused.returncode == 2
    assert "WEBHOOK_ALLOW_LOOPBACK is for the local stack" in refused.stderr
    # Not even its "false": the variable has no business in a deployed function.
    assert "WEBHOOK_ALLOW_LOOPBACK" not in env_file_of(tmp_path, WEBHOOK_ALLOW_LOOPBACK="false")


def test_deliver_webhooks_timeout_and_retention_follow_the_settings() -> None:
    def values(**env: str) -> dict[str, str]:
        result = run(["--project", PROJECT], **env)
        assert result.returncode == 0, result.stderr
        return dict(line.split("=", 1) for line in result.stdout.splitlines())

    # The defaults: a minute for an attempt of at most 10 s; the schedule (about a day)
    # outlives Eventarc's day of retention, so its subscription keeps two.
    default = values()
    assert default["WEBHOOK_FUNCTION_TIMEOUT_S"] == "60"
    assert default["WEBHOOK_MESSAGE_RETENTION_S"] == str(2 * 86400)
    assert default["WEBHOOKS_TOPIC"] == settings_as_deployed().webhooks_topic
    # The longest attempt (60 s) and its dead-letter publish, with room for its writes.
    slow = values(WEBHOOK_TIMEOUT_S="60")
    assert slow["WEBHOOK_FUNCTION_TIMEOUT_S"] == "100"
    # A schedule of four days: five days' retention (whole days, with Pub/Sub's delays).
    long = values(WEBHOOK_RETRY_SCHEDULE_S=json.dumps([86400] * 4))
    assert long["WEBHOOK_MESSAGE_RETENTION_S"] == str(5 * 86400)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBHOOK_RETRY_SCHEDULE_S": json.dumps([86400 * 8] * 4)}, "keeps a message 31 days"),
        ({"PUBLISH_TIMEOUT_S": "600"}, "deliver_webhook's timeout would be 640 s"),
    ],
)
def test_webhook_settings_the_platform_cannot_keep_are_refused(
    env: dict[str, str], message: str
) -> None:
    result = run(["--project", PROJECT], **env)
    assert result.returncode == 2
    assert message in result.stderr
