"""Cancel to Gemini stream closed, on a running local stack (issue 18; run by hand).

    .venv/bin/python -m bench.cancel_latency --stack dev [--tasks 20] [--pause 5]

The stand-in streams each strategy in ``--pieces`` events ``--pause`` seconds apart, so
that a worker waits in a socket read between them. For each task: submit, wait until a
listener sees its first draft (the stream is open and the worker reads), DELETE it, and
take the moment the worker logged that it stopped the call ("Gemini call stopped", in
``.stack/<name>/logs/process.log``). Without the stop the stream would run on to its
end, up to ``--pause`` seconds per event left; the figures are cancel -> stopped.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import datetime
from typing import Any

from bench.e2e_latency import ROOT, Stack, load_state, pct

STOPPED_MESSAGE = "task no longer ours: Gemini call stopped"


def cancel_mid_stream(stack: Stack, headers: dict[str, str], brief: str) -> tuple[str, float]:
    """Submit, wait for the first draft, cancel: (task id, wall-clock time of the DELETE)."""
    answer = stack.http.post(
        f"{stack.env['SUBMIT_URL']}/v1/strategies",
        json={"brief": brief, "image": False},
        headers=headers,
    )
    answer.raise_for_status()
    task_id: str = answer.json()["task_id"]
    drafted = threading.Event()

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snap in snapshots:
            if snap.exists and (snap.to_dict() or {}).get("draft"):
                drafted.set()

    watch = stack.db.collection("tasks").document(task_id).on_snapshot(on_change)
    try:
        if not drafted.wait(60):
            raise SystemExit(f"task {task_id}: no draft in 60 s")
        cancelled_at = time.time()
        stack.http.delete(
            f"{stack.env['STATUS_URL']}/v1/tasks/{task_id}", headers=headers
        ).raise_for_status()
    finally:
        watch.unsubscribe()
    return task_id, cancelled_at


def stopped_times(stack_name: str, task_ids: set[str], wait_s: float) -> dict[str, float]:
    """When the worker logged each task's stopped call (wall clock), waiting up to wait_s."""
    log = ROOT / ".stack" / stack_name / "logs" / "process.log"
    deadline = time.monotonic() + wait_s
    found: dict[str, float] = {}
    while True:
        for line in log.read_text(errors="replace").splitlines():
            if STOPPED_MESSAGE not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("task_id") in task_ids:
                found[record["task_id"]] = datetime.fromisoformat(record["time"]).timestamp()
        if len(found) == len(task_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)  # a bench reading a log file, not the product's path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument("--pause", type=float, default=5.0)
    args = parser.parse_args()
    state = load_state(args.stack)
    stack = Stack(state["env"])
    standin = state["env"]["GEMINI_STANDIN_URL"]
    previous = stack.http.get(f"{standin}/_standin/config").json()
    stack.http.post(
        f"{standin}/_standin/config",
        json={"stream_pieces": args.pieces, "stream_pause_s": args.pause},
    ).raise_for_status()
    cancels: dict[str, float] = {}
    try:
        headers = stack.new_user()
        for index in range(args.tasks):
            if index and index % 10 == 0:
                headers = stack.new_user()  # per-user caps
            task_id, at = cancel_mid_stream(stack, headers, f"Bench cancel {index}")
            cancels[task_id] = at
        stopped = stopped_times(args.stack, set(cancels), wait_s=args.pause * args.pieces)
    finally:
        stack.http.post(f"{standin}/_standin/config", json=previous)
        stack.close()
    delays = [stopped[t] - cancels[t] for t in stopped]
    print(f"tasks cancelled mid-stream: {len(cancels)}, calls stopped: {len(stopped)}")
    print(f"stream: {args.pieces} events {args.pause} s apart (a stream left open runs on)")
    if delays:
        print(
            f"cancel -> Gemini call stopped: p50 {pct(delays, 0.5) * 1000:.0f} ms, "
            f"p90 {pct(delays, 0.9) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
