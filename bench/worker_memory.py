"""Peak memory of the worker: one task with a 45 MiB PDF, and per task in flight.

Run against a running stack with the Gemini stand-in (`make up`, or a test stack):

    .venv/bin/python -m bench.worker_memory [--stack .stack/dev/state.json] [--mib 45]
    .venv/bin/python -m bench.worker_memory --in-flight 64 [--latency 8] [--pdf-kib 512]

The first reads the peak resident set (VmHWM) of the process_task worker processes
before and after one task with a PDF of the given size (sent through an upload
session), and counts the stand-in's requests for that task by kind. The second
makes the stand-in answer each call in ``--latency`` seconds, submits ``--in-flight``
tasks at once (each with a PDF of ``--pdf-kib``, streamed to the File API), and
reports the peak growth divided by the tasks: the memory a task in flight costs,
from which deploy.sh's worker memory and concurrency follow (docs/capacity.md).
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
    session = http.post(
        f"{env['SUBMIT_URL']}/v1/uploads",
        headers=headers,
        json={"size_bytes": len(pdf), "filename": "bench.pdf"},
    ).json()
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


def _in_flight(env: dict, worker_pids: list[int], tasks: int, latency: float, kib: int) -> None:
    """Peak RSS growth of the worker with ``tasks`` tasks in flight at once."""
    from concurrent.futures import ThreadPoolExecutor

    standin = env["GEMINI_STANDIN_URL"]
    with httpx.Client(timeout=300) as http:
        previous = http.get(f"{standin}/_standin/config").json()["latency_s"]
        http.post(f"{standin}/_standin/config", json={"latency_s": 0}).raise_for_status()
        users = []
        for _ in range(0, tasks, 10):  # the per-user in-flight cap is 10
            token = http.post(
                f"{env['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
                params={"key": "bench"},
                json={"returnSecureToken": True},
            ).json()["idToken"]
            users.append({"Authorization": f"Bearer {token}"})
        warm = _run_task(http, env, users[0], b"%PDF-1.4\n" + os.urandom(1024), "warm-up")
        assert warm["status"] == "COMPLETED", warm
        before = _peak_rss_kib(worker_pids)
        http.post(f"{standin}/_standin/config", json={"latency_s": latency}).raise_for_status()
        marker = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            with ThreadPoolExecutor(tasks) as pool:
                done = list(
                    pool.map(
                        lambda i: _run_task(
                            http,
                            env,
                            users[i // 10],
                            b"%PDF-1.4\n" + os.urandom(kib * 1024),
                            f"In flight {i} {marker}",
                        ),
                        range(tasks),
                    )
                )
        finally:
            http.post(f"{standin}/_standin/config", json={"latency_s": previous})
        after = _peak_rss_kib(worker_pids)
    statuses = {t["status"] for t in done}
    grown = sum(after[p] - before.get(p, 0) for p in after) / 1024
    base = sum(before.values()) / 1024
    print(f"{tasks} tasks in flight at once ({kib} KiB PDF each, Gemini {latency} s): {statuses}")
    print(
        f"worker peak RSS {base:.0f} MiB before, +{grown:.0f} MiB: {grown / tasks:.1f} MiB a task"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--stack", default=os.environ.get("TB_STACK_STATE", ".stack/dev/state.json")
    )
    parser.add_argument("--mib", type=int, default=45)
    parser.add_argument("--in-flight", type=int, default=0, help="tasks at once (0: one PDF)")
    parser.add_argument("--latency", type=float, default=8.0, help="stand-in seconds a call")
    parser.add_argument("--pdf-kib", type=int, default=512)
    args = parser.parse_args()
    state = json.loads(Path(args.stack).read_text())
    env = state["env"]
    worker_pids = _group_pids(state["parts"]["process"]["pgid"])
    if args.in_flight:
        _in_flight(env, worker_pids, args.in_flight, args.latency, args.pdf_kib)
        return
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
