"""The plan of a stack: every part's command, environment, readiness probe and files
(pure: unit-tested directly, tests/unit/test_stack_plan.py)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from infra.hosting import emulator_backends, load_firebase_json
from infra.hosting import hosting_config as infra_hosting_config

from .config import (
    BRIDGE_READY_MESSAGE,
    DEADLETTER_CONCURRENCY,
    FUNCTIONS,
    GCLOUD_PROPERTIES,
    HOST,
    HTTP_CONCURRENCY,
    PROCESS_CONCURRENCY,
    ROOT,
    WEBHOOKS_CONCURRENCY,
    GeminiChoice,
    PartSpec,
    Probe,
    Resources,
    StackPlan,
    choose_gemini,
    client_env,
    fake_gcs_binary,
    firebase_config,
    functions_env,
    gcloud_env,
    plan_resources,
    resolve_ports,
    resolve_project,
    resolve_worker_concurrency,
    settings_from_env,
    settings_summary,
)


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


# The web server's Hosting config, in the stack's directory (dev/web_server.py).
HOSTING_CONFIG = "hosting.json"


def _python_parts(
    root: Path,
    stack_dir: Path,
    python: Path,
    ports: Mapping[str, int],
    fn_env: Mapping[str, str],
    gemini: GeminiChoice,
    with_web: bool,
    worker_concurrency: int = PROCESS_CONCURRENCY,
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
        env["THREADS"] = str(worker_concurrency if part == "process" else HTTP_CONCURRENCY)
        if part == "process":  # the worker sizes its Gemini connection pool to it
            env["WORKER_CONCURRENCY"] = str(worker_concurrency)
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
                # web/ as Hosting serves it, with the headers of hosting.json (below).
                argv=(
                    str(python),
                    "-m",
                    "dev.web_server",
                    "--config",
                    str(stack_dir / HOSTING_CONFIG),
                    "--bind",
                    HOST,
                    "--port",
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


def hosting_config(root: Path, ports: Mapping[str, int]) -> str:
    """The stack's Hosting config for its web server: firebase.json's headers and the
    Content-Security-Policy that infra/deploy.sh deploys, naming this stack's functions
    and emulators instead of the deployed ones (infra/hosting.py)."""
    backends = emulator_backends(
        submit_url=f"http://{HOST}:{ports['submit']}",
        status_url=f"http://{HOST}:{ports['status']}",
        auth_emulator_url=f"http://{HOST}:{ports['auth']}",
        firestore_emulator_host=f"{HOST}:{ports['firestore']}",
        storage_emulator_host=f"http://{HOST}:{ports['storage']}",
    )
    firebase_json = load_firebase_json(root / "firebase.json")
    config = infra_hosting_config(firebase_json, backends, public=root / "web")
    return json.dumps(config, indent=2) + "\n"


def is_bridge(part: str) -> bool:
    return part == "bridge" or part.startswith("bridge-")


def _bridge_parts(
    root: Path,
    python: Path,
    ports: Mapping[str, int],
    fn_env: Mapping[str, str],
    resources: Resources,
    worker_concurrency: int = PROCESS_CONCURRENCY,
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
            worker_concurrency,
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
        _bridge_part(
            "bridge-webhooks",
            root,
            python,
            ports["webhooks"],
            fn_env,
            resources,
            resources.webhooks_subscription,
            WEBHOOKS_CONCURRENCY,
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
    concurrency = resolve_worker_concurrency(env)
    parts += _python_parts(root, stack_dir, python, ports, fn_env, gemini, with_web, concurrency)
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
        bridges=_bridge_parts(root, python, ports, fn_env, resources, concurrency),
        files={
            stack_dir / "firebase.json": firebase_config(ports),
            stack_dir / "gcloud" / "properties": GCLOUD_PROPERTIES,
            **({stack_dir / HOSTING_CONFIG: hosting_config(root, ports)} if with_web else {}),
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
