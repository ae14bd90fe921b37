"""The deployment's values, from the one settings module (shared/settings.py).

infra/deploy.sh and infra/teardown.sh run this instead of repeating any default:

    python3 infra/deploy_env.py --project P [--status-base-url URL] [--cors-origins O,...]
                                [--env-file PATH]

It builds ``shared.settings.Settings()`` as a deployed function would (``K_SERVICE``
set, so the checks of a deployed function apply) from the operator's environment (their
overrides) plus what the script knows (project, status URL, the web app's origins), and

- prints shell assignments for the values the scripts need themselves (the worker's
  timeout is the lease; the subscriptions' delivery policies; topics, bucket, TTL
  policies, lifecycle ages, the sweeper's and the webhook function's timeouts, the
  Gemini backend), for ``eval``;
- with ``--env-file``, writes the YAML for ``gcloud functions deploy --env-vars-file``:
  every setting the operator overrode (names read from ``Settings.model_fields``, so a
  new setting flows through), plus the deployment's own values. Never a secret: the
  Gemini key reaches the worker from Secret Manager.

A configuration the settings refuse exits with status 2 and the settings' message,
before the scripts touch the project. Needs only pydantic-settings (requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import typing
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pydantic import SecretStr, ValidationError  # noqa: E402

from infra import capacity  # noqa: E402
from shared import settings as settings_module  # noqa: E402
from shared.settings import Settings  # noqa: E402

# The platform's limit on an event-driven function's timeout (the worker's is the lease).
MAX_EVENT_FUNCTION_TIMEOUT_S = settings_module.MAX_EVENT_FUNCTION_TIMEOUT_S
# Collections whose documents carry an expiry field: a Firestore TTL policy deletes
# them (shared/idempotency.py, shared/gemini_files.py, shared/upload_sessions.py,
# shared/quotas.py, shared/app_check.py).
TTL_FIELDS: dict[str, str] = {
    "idempotency_collection": "expires_at",
    "gemini_files_collection": "expires_at",
    "upload_sessions_collection": "expires_at",
    "quota_collection": "expires_at",
    "quota_shards_collection": "expires_at",
    "app_check_tokens_collection": "expires_at",
    "shares_collection": "expires_at",
    "tasks_collection": "expires_at",  # finished ones, TASK_RETENTION_DAYS after
}
# Settings the deployment itself decides (the script's arguments), never taken from
# the operator's shell: a stray GOOGLE_CLOUD_PROJECT must not redirect the functions.
DEPLOYMENT_FIELDS = ("google_cloud_project", "status_base_url", "cors_origins")
# Settings the infrastructure is built from (topics, bucket, subscription policy; the
# webhook function's timeout and its subscription's retention): always written, so the
# functions check the same numbers the subscriptions have.
INFRA_FIELDS = (
    "tasks_topic",
    "dead_letter_topic",
    "lease_seconds",
    "ack_deadline_seconds",
    "retry_min_backoff_s",
    "retry_max_backoff_s",
    "max_delivery_attempts",
    "webhooks_topic",
    "webhook_dead_letter_topic",
    "webhook_timeout_s",
    "webhook_retry_schedule_s",
)
# Settings for the local stack alone, never written to a deployed function's environment
# (the settings refuse them set in one anyway): WEBHOOK_ALLOW_LOOPBACK would let any user
# make deliver_webhook call the function's own host.
LOCAL_ONLY_FIELDS = ("webhook_allow_loopback",)
# deliver_webhook (shared/webhooks.py): one attempt is a task read, a conditional write,
# the secret's read (or creation), the POST (WEBHOOK_TIMEOUT_S at most), the attempt's
# write and, after the last retry, a dead-letter publish (PUBLISH_TIMEOUT_S): its timeout
# is those two bounds plus this much for the Firestore calls, and never under a minute.
WEBHOOK_FIRESTORE_MARGIN_S = 30
WEBHOOK_MIN_TIMEOUT_S = 60
# Eventarc makes its subscriptions with a day's retention; deliver_webhook's retries take
# about a day (WEBHOOK_RETRY_SCHEDULE_S) and Pub/Sub would drop the message before its
# last one. Its subscription keeps messages this long, or as long as a longer schedule
# needs (whole days), up to Pub/Sub's limit for a subscription.
WEBHOOK_MIN_RETENTION_S = 2 * 86400
MAX_SUBSCRIPTION_RETENTION_S = 31 * 86400
# What a deployed function's environment looks like to the settings (Cloud Run sets it).
DEPLOYED_MARKER = "K_SERVICE"


class Refused(Exception):
    """A configuration this deployment must not go ahead with."""


def is_secret(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def operator_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings the operator's environment sets, as raw strings, by field name.

    The settings read names case-insensitively (``case_sensitive=False``), as here.
    """
    lowered = {key.lower(): value for key, value in environ.items()}
    return {
        name: lowered[name]
        for name in Settings.model_fields
        if name in lowered
        and name not in DEPLOYMENT_FIELDS
        and name not in LOCAL_ONLY_FIELDS
        and not is_secret(name)
    }


def merge_origins(*lists: str) -> str:
    seen: list[str] = []
    for origins in lists:
        for origin in origins.split(","):
            origin = origin.strip().rstrip("/")
            if origin and origin not in seen:
                seen.append(origin)
    return ",".join(seen)


def build_settings(
    project: str, status_base_url: str | None, cors_origins: str, environ: Mapping[str, str]
) -> Settings:
    """The settings a deployed function will see, or ``Refused`` with their message."""
    own: dict[str, str] = {
        "google_cloud_project": project,
        "cors_origins": merge_origins(cors_origins, _get(environ, "cors_origins")),
    }
    # Before task_status exists its URL is unknown; the env file is only written
    # with the real one (main), so a stand-in satisfies the deployed-settings check.
    own["status_base_url"] = status_base_url or "https://task-status.invalid"
    previous = os.environ.get(DEPLOYED_MARKER)
    os.environ[DEPLOYED_MARKER] = "deploy-check"
    try:
        settings = Settings(**own)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            messages.append(f"{where}: {message}" if where else message)
        raise Refused("\n".join(messages)) from None
    finally:
        if previous is None:
            del os.environ[DEPLOYED_MARKER]
        else:
            os.environ[DEPLOYED_MARKER] = previous
    if settings.lease_seconds > MAX_EVENT_FUNCTION_TIMEOUT_S:
        raise Refused(
            f"LEASE_SECONDS={settings.lease_seconds} is the worker's timeout, and an "
            f"event-driven function may run {MAX_EVENT_FUNCTION_TIMEOUT_S} s at most"
        )
    try:
        problems = capacity.problems(settings.max_tasks_per_minute, worker_size(settings))
    except ValueError as exc:
        raise Refused(f"WORKER_CONCURRENCY={settings.worker_concurrency}: {exc}") from None
    if problems:
        raise Refused("\n".join(problems))
    unpriced = [
        f"{name}={model!r}"
        for name, model in (
            ("GEMINI_TEXT_MODEL", settings.gemini_text_model),
            ("GEMINI_IMAGE_MODEL", settings.gemini_image_model),
        )
        if model not in settings.gemini_prices
    ]
    if settings.budgets_on and unpriced:
        raise Refused(
            f"{' and '.join(unpriced)} have no price in GEMINI_PRICES: the day budgets "
            "(DAILY_BUDGET_*) cannot be kept without one (docs/costs.md)"
        )
    timeout = webhook_function_timeout_s(settings)
    if timeout > MAX_EVENT_FUNCTION_TIMEOUT_S:
        raise Refused(
            f"deliver_webhook's timeout would be {timeout} s (WEBHOOK_TIMEOUT_S plus "
            f"PUBLISH_TIMEOUT_S plus {WEBHOOK_FIRESTORE_MARGIN_S} s), and an event-driven "
            f"function may run {MAX_EVENT_FUNCTION_TIMEOUT_S} s at most"
        )
    if webhook_message_retention_s(settings) > MAX_SUBSCRIPTION_RETENTION_S:
        raise Refused(
            f"WEBHOOK_RETRY_SCHEDULE_S lasts {webhook_span_s(settings) / 86400:.1f} days "
            "with Pub/Sub's redelivery delays: its subscription keeps a message "
            f"{MAX_SUBSCRIPTION_RETENTION_S // 86400} days at most"
        )
    return settings


def webhook_function_timeout_s(settings: Settings) -> int:
    """deliver_webhook's timeout, and its subscription's ack deadline: Pub/Sub must not
    push the message again while an attempt may still be running."""
    needed = settings.webhook_timeout_s + settings.publish_timeout_s + WEBHOOK_FIRESTORE_MARGIN_S
    return max(WEBHOOK_MIN_TIMEOUT_S, math.ceil(needed))


def webhook_span_s(settings: Settings) -> float:
    """How long a delivery's message must live: every wait of the schedule, each attempt
    (the first and one after each wait) run to its timeout and pushed at most
    RETRY_MAX_BACKOFF_S after it is due."""
    attempts = len(settings.webhook_retry_schedule_s) + 1
    per_attempt = settings.retry_max_backoff_s + webhook_function_timeout_s(settings)
    return sum(settings.webhook_retry_schedule_s) + attempts * per_attempt


def webhook_message_retention_s(settings: Settings) -> int:
    days = math.ceil(webhook_span_s(settings) / 86400)
    return max(WEBHOOK_MIN_RETENTION_S, days * 86400)


def worker_size(settings: Settings) -> capacity.WorkerSize:
    return capacity.worker_size(
        settings.gemini_requests_per_minute,
        settings.gemini_tokens_per_minute,
        settings.worker_concurrency,
        settings.worker_max_instances,
    )


def _get(environ: Mapping[str, str], name: str) -> str:
    return next((value for key, value in environ.items() if key.lower() == name), "")


def function_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The functions' environment: the operator's overrides plus the deployment's own."""
    env = {name.upper(): value for name, value in operator_overrides(environ).items()}
    env["GOOGLE_CLOUD_PROJECT"] = settings.google_cloud_project
    env["UPLOADS_BUCKET"] = settings.bucket_name
    env["STATUS_BASE_URL"] = settings.status_base_url
    env["CORS_ORIGINS"] = settings.cors_origins
    for name in INFRA_FIELDS:
        env[name.upper()] = env_value(getattr(settings, name))
    secrets = {name.upper() for name in Settings.model_fields if is_secret(name)}
    leaked = secrets & env.keys()
    if leaked:  # operator_overrides drops them; never write one by mistake
        raise Refused(f"refusing to write {', '.join(sorted(leaked))} to an env file")
    return dict(sorted(env.items()))


def env_value(value: object) -> str:
    """A setting as its environment variable reads it back: lists and maps as JSON (how
    pydantic-settings parses complex fields), anything else as text."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def env_yaml(env: Mapping[str, str]) -> str:
    """YAML for --env-vars-file: every value a quoted string (JSON strings are YAML)."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in env.items())


def shell_values(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    ttl = [f"{getattr(settings, field)}/{expiry}" for field, expiry in sorted(TTL_FIELDS.items())]
    worker = worker_size(settings)
    return {
        # The worker's size (infra/capacity.py): memory for its tasks in flight, and
        # as many instances as the Gemini tier keeps busy.
        "WORKER_CONCURRENCY": str(worker.concurrency),
        "WORKER_MAX_INSTANCES": str(worker.max_instances),
        "WORKER_MEMORY": f"{worker.memory_mib}Mi",
        # The worker's function timeout is its lease (shared/settings.py checks both).
        "LEASE_SECONDS": str(settings.lease_seconds),
        "ACK_DEADLINE_SECONDS": str(settings.ack_deadline_seconds),
        "RETRY_MIN_BACKOFF_S": str(settings.retry_min_backoff_s),
        "RETRY_MAX_BACKOFF_S": str(settings.retry_max_backoff_s),
        "MAX_DELIVERY_ATTEMPTS": str(settings.max_delivery_attempts),
        "TASKS_TOPIC": settings.tasks_topic,
        "DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        # deliver_webhook: its topics, its timeout (also its subscription's ack
        # deadline) and how long its subscription keeps a message.
        "WEBHOOKS_TOPIC": settings.webhooks_topic,
        "WEBHOOK_DEAD_LETTER_TOPIC": settings.webhook_dead_letter_topic,
        "WEBHOOK_FUNCTION_TIMEOUT_S": str(webhook_function_timeout_s(settings)),
        "WEBHOOK_MESSAGE_RETENTION_S": str(webhook_message_retention_s(settings)),
        "BUCKET": settings.bucket_name,
        "CORS_ORIGINS": settings.cors_origins,
        "TTL_POLICIES": " ".join(ttl),
        "UPLOAD_RETENTION_DAYS": str(settings.upload_retention_days),
        "PREVIEW_RETENTION_DAYS": str(settings.preview_retention_days),
        "SWEEP_TIMEOUT_S": str(settings.sweep_timeout_s),
        # Which Gemini the worker calls: Vertex AI needs its API, IAM and no secret.
        "GEMINI_BACKEND": settings.gemini_backend,
        "VERTEX_PROJECT": settings.vertex_project if settings.uses_vertex else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--status-base-url", default=None)
    parser.add_argument("--cors-origins", default="", help="the web app's origins")
    parser.add_argument("--env-file", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.project.startswith(settings_module.DEMO_PROJECT_PREFIX):
            raise Refused(f"{args.project!r} is an emulator-only (demo-) project id")
        if args.env_file is not None and not args.status_base_url:
            raise Refused("--env-file needs --status-base-url (task_status's URL)")
        settings = build_settings(args.project, args.status_base_url, args.cors_origins, os.environ)
        values = shell_values(settings, os.environ)
        if args.env_file is not None:
            args.env_file.write_text(env_yaml(function_env(settings, os.environ)))
    except Refused as exc:
        sys.stderr.write(f"deploy_env.py: the settings refuse this configuration:\n{exc}\n")
        return 2
    for key, value in values.items():
        sys.stdout.write(f"{key}={shlex.quote(value)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
