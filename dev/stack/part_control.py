"""Killing and restarting one part (crash tests): ``kill-part``, ``start-part``,
``restart-part`` (``cmd_part``)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import (
    PLACEHOLDER_GEMINI_KEY,
    RESTARTABLE_PARTS,
    ROOT,
    STACK_NAMES,
    STACK_PORT_OFFSET,
    STOP_TIMEOUT_S,
    PartSpec,
    Probe,
)
from .processes import (
    PartFailed,
    Running,
    group_members,
    port_is_free,
    signal_group,
    start_part,
    stop_groups,
    wait_all_ready,
)
from .state import part_alive, read_state, stack_lock, write_state


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
