"""End-to-end latency and throughput of a running local stack (run by hand).

    .venv/bin/python -m bench.e2e_latency --stack dev [--tasks 30] [--clients 32] [--per-client 10]

Reads ``.stack/<name>/state.json`` (``make up`` writes it), signs up users in the
Auth emulator and measures, against whatever Gemini the stack uses (the stand-in
by default, which answers at once unless told otherwise):

1. latency: ``--tasks`` submissions one at a time; for each, the 202 time and the
   time from the POST to COMPLETED as a Firestore listener sees it;
2. throughput: ``--clients`` threads, each its own user, each submitting
   ``--per-client`` briefs back to back; accept-path latency under load, the
   submission rate, and tasks finished per second from the first POST to the
   last terminal state.

Per-user caps (30/min, 10 in flight by default) apply: the latency phase uses a
new user every 10 tasks, and the throughput phase counts 429 answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def load_state(name: str) -> dict[str, Any]:
    path = ROOT / ".stack" / name / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except OSError:
        sys.exit(f"no running stack {name!r} ({path} missing): `make up` first")
    if state.get("status") != "up":
        sys.exit(f"stack {name!r} is {state.get('status')!r}, not up")
    return state


class Stack:
    def __init__(self, env: dict[str, str], image: bool = True) -> None:
        self.env = env
        self.image = image
        for key in ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"):
            os.environ[key] = env[key]
        from google.cloud import firestore

        self.db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
        self.http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=64))
        self.done: dict[str, tuple[float, str]] = {}
        self.lock = threading.Lock()
        self.all_done = threading.Condition(self.lock)
        self.watches: list[Any] = []

    def new_user(self) -> dict[str, str]:
        answer = self.http.post(
            f"{self.env['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "emulator-key"},
            json={"returnSecureToken": True},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['idToken']}"}

    def submit(
        self, http: httpx.Client, headers: dict[str, str], brief: str
    ) -> tuple[int, float, str | None]:
        began = time.monotonic()
        answer = http.post(
            f"{self.env['SUBMIT_URL']}/v1/strategies",
            json={"brief": brief, "image": self.image},
            headers=headers,
        )
        took = time.monotonic() - began
        task_id = answer.json().get("task_id") if answer.status_code == 202 else None
        if task_id:
            self.watch(task_id)
        return answer.status_code, took, task_id

    def watch(self, task_id: str) -> None:
        def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
            for snap in snapshots:
                data = snap.to_dict() if snap.exists else None
                if data and data.get("status") in TERMINAL:
                    with self.lock:
                        self.done.setdefault(task_id, (time.monotonic(), data["status"]))
                        self.all_done.notify_all()

        self.watches.append(self.db.collection("tasks").document(task_id).on_snapshot(on_change))

    def wait(self, task_ids: Sequence[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(t in self.done for t in task_ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.all_done.wait(left)
        return True

    def close(self) -> None:
        for watch in self.watches:
            watch.unsubscribe()
        self.http.close()


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def latency_phase(stack: Stack, tasks: int, marker: str) -> dict[str, Any]:
    accept, e2e, statuses = [], [], Counter[str]()
    headers = stack.new_user()
    for index in range(tasks):
        if index and index % 10 == 0:
            headers = stack.new_user()
        began = time.monotonic()
        code, took, task_id = stack.submit(stack.http, headers, f"Bench latency {index} {marker}")
        if task_id is None:
            statuses[f"HTTP {code}"] += 1
            continue
        accept.append(took)
        if not stack.wait([task_id], timeout=120):
            statuses["TIMEOUT"] += 1
            continue
        finished, status = stack.done[task_id]
        statuses[status] += 1
        e2e.append(finished - began)
    return {"accept": accept, "e2e": e2e, "statuses": statuses}


def throughput_phase(
    stack: Stack, clients: int, per_client: int, marker: str, one_user: bool = False
) -> dict[str, Any]:
    users = [stack.new_user()] * clients if one_user else [stack.new_user() for _ in range(clients)]
    accept: list[float] = []
    codes: Counter[int] = Counter()
    accepted: list[tuple[str, float]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(timeout=60) as http:
            for n in range(per_client):
                began = time.monotonic()
                code, took, task_id = stack.submit(
                    http, users[index], f"Bench {index}/{n} {marker}"
                )
                with lock:
                    codes[code] += 1
                    accept.append(took)
                    if task_id:
                        accepted.append((task_id, began))

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    submitted = time.monotonic() - started
    finished_all = stack.wait([t for t, _ in accepted], timeout=300)
    ends = [stack.done[t][0] for t, _ in accepted if t in stack.done]
    last = max(ends) if ends else time.monotonic()
    return {
        "accept": accept,
        "codes": codes,
        "e2e": [stack.done[t][0] - began for t, began in accepted if t in stack.done],
        "statuses": Counter(stack.done[t][1] for t, _ in accepted if t in stack.done),
        "submitted_s": submitted,
        "total_s": last - started,
        "finished": len(ends),
        "all_finished": finished_all,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stack", default="dev", help="dev | test | test2 | test3")
    parser.add_argument("--tasks", type=int, default=30, help="latency phase: tasks, one at a time")
    parser.add_argument("--clients", type=int, default=32, help="throughput phase: clients")
    parser.add_argument("--per-client", type=int, default=10, help="throughput phase: tasks each")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="throughput phase: the stand-in's seconds a call"
    )
    parser.add_argument(
        "--one-user", action="store_true", help="throughput phase: every client the same user"
    )
    parser.add_argument("--no-image", action="store_true", help="tasks without a preview")
    args = parser.parse_args(argv)

    state = load_state(args.stack)
    stack = Stack(state["env"], image=not args.no_image)
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    gemini = state.get("gemini", {})
    try:
        lat = latency_phase(stack, args.tasks, marker)
        standin = stack.env.get("GEMINI_STANDIN_URL")
        if args.latency and standin:
            stack.http.post(f"{standin}/_standin/config", json={"latency_s": args.latency})
        try:
            thr = throughput_phase(stack, args.clients, args.per_client, marker, args.one_user)
        finally:
            if args.latency and standin:
                stack.http.post(f"{standin}/_standin/config", json={"latency_s": 0})
    finally:
        stack.close()

    where = "stand-in" if gemini.get("standin") else gemini.get("base_url") or "the real API"
    print(f"\nstack {args.stack!r}, Gemini: {where}, marker {marker}")
    rows = [
        ("phase", "measure", "n", "p50", "p95", "max"),
    ]
    for phase, key, data in (
        ("1 at a time", "202 (accept)", lat["accept"]),
        ("1 at a time", "submit -> COMPLETED", lat["e2e"]),
        (f"{args.clients} clients", "202 (accept)", thr["accept"]),
        (f"{args.clients} clients", "submit -> terminal", thr["e2e"]),
    ):
        if data:
            rows.append(
                (phase, key, str(len(data)), ms(pct(data, 0.5)), ms(pct(data, 0.95)), ms(max(data)))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    total = sum(thr["codes"].values())
    print(
        f"\n  throughput ({args.clients} clients x {args.per_client}): {total} submissions in "
        f"{thr['submitted_s']:.1f} s = {total / thr['submitted_s']:.1f}/s accepted-path; "
        f"{thr['finished']} tasks terminal in {thr['total_s']:.1f} s = "
        f"{thr['finished'] / thr['total_s']:.1f} tasks/s end to end"
    )
    print(
        f"  answers: {dict(thr['codes'])}; statuses: {dict(thr['statuses'])}; "
        f"latency phase: {dict(lat['statuses'])}"
    )
    if not thr["all_finished"]:
        print("  WARNING: some tasks did not finish within 300 s")
    return 0 if thr["all_finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
