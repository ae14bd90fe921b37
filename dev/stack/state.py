"""The state file (``.stack/<name>/state.json``): what `up` started, exactly, so that
`down` stops those process groups and nothing else."""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import StackPlan
from .processes import Running, group_members, proc_start_time


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
    res = stack.resources
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
            "bucket": res.bucket,
            "topic": res.topic_path(res.topic),
            "dead_letter_topic": res.topic_path(res.dead_letter_topic),
            "subscription": res.subscription_path(res.subscription),
            "inspect_subscription": res.subscription_path(res.inspect_subscription),
            "deadletter_subscription": res.subscription_path(res.deadletter_subscription),
            "webhooks_topic": res.topic_path(res.webhooks_topic),
            "webhook_dead_letter_topic": res.topic_path(res.webhook_dead_letter_topic),
            "webhooks_subscription": res.subscription_path(res.webhooks_subscription),
            "webhook_inspect_subscription": res.subscription_path(res.webhook_inspect_subscription),
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
