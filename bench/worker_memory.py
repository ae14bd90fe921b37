"""Peak memory of the worker while it handles a 45 MiB PDF, and Gemini calls per task.

Run against a running stack with the Gemini stand-in (`make up`, or a test stack):

    .venv/bin/python -m bench.worker_memory [--stack .stack/dev/state.json] [--mib 45]

It reads the peak resident set (VmHWM) of the process_task worker processes
before and after one task with a PDF of the given size (sent through an upload
session), and counts the stand-in's requests for that task by kind.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

MIB = 1024 * 1024


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


def _peak_rss_kib(pids: list[int]) -> dict[int, int]:
    peaks = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1])
    return peaks


def _run_task(http: httpx.Client, env: dict, headers: dict, pdf: bytes, brief: str) -> dict:
    session = http.post(f"{env['SUBMIT_URL']}/v1/uploads", headers=headers, json={}).json()
    http.put(session["upload_url"], content=pdf, headers={"Content-Type": "application/pdf"})
    accepted = http.post(
        f"{env['SUBMIT_URL']}/v1/strategies",
        headers=headers,
        json={"brief": brief, "upload_id": session["upload_id"], "urls": ["https://example.com/"]},
    ).json()
    while True:  # a benchmark may poll; the product's clients use listeners
        task: dict[str, Any] = http.get(accepted["status_url"], headers=headers).json()
        if task["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return task
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--stack", default=os.environ.get("TB_STACK_STATE", ".stack/dev/state.json")
    )
    parser.add_argument("--mib", type=int, default=45)
    args = parser.parse_args()
    state = json.loads(Path(args.stack).read_text())
    env = state["env"]
    worker_pids = _group_pids(state["parts"]["process"]["pgid"])
    with httpx.Client(timeout=300) as http:
        token = http.post(
            f"{env['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "bench"},
            json={"returnSecureToken": True},
        ).json()["idToken"]
        headers = {"Authorization": f"Bearer {token}"}
        warm = _run_task(http, env, headers, b"%PDF-1.4\n" + os.urandom(1024), "warm-up")
        assert warm["status"] == "COMPLETED", warm
        before = _peak_rss_kib(worker_pids)
        marker = f"bench-{uuid.uuid4().hex[:8]}"
        pdf = b"%PDF-1.4\n" + os.urandom(args.mib * MIB)
        started = time.monotonic()
        task = _run_task(http, env, headers, pdf, f"Memory benchmark {marker}")
        elapsed = time.monotonic() - started
        after = _peak_rss_kib(worker_pids)
        calls: dict[str, int] = {}
        standin = env.get("GEMINI_STANDIN_URL")
        if standin:
            for needle in (marker, task["task_id"], task["result"]["strategy"]["strategy_name"]):
                found = http.get(f"{standin}/_standin/requests", params={"contains": needle}).json()
                for request in found["requests"]:
                    calls[request["endpoint"]] = calls.get(request["endpoint"], 0) + 1
    print(f"task {task['task_id']}: {task['status']} in {elapsed:.1f} s (PDF {args.mib} MiB)")
    for pid in worker_pids:
        if pid in after:
            grown = (after[pid] - before.get(pid, 0)) / 1024
            print(
                f"worker pid {pid}: peak RSS {before.get(pid, 0) / 1024:.0f} MiB before, "
                f"{after[pid] / 1024:.0f} MiB after (+{grown:.0f})"
            )
    print("Gemini requests for the task by kind:", json.dumps(calls, sort_keys=True))


if __name__ == "__main__":
    main()
