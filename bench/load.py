"""A load model against a running local stack (run by hand; issue 17).

    .venv/bin/python -m bench.load --stack dev --rate 20 --seconds 120 \\
        [--users 200] [--latency 15] [--jitter 5] [--image-share 0.2] [--drain 180]

Submits ``--rate`` tasks a second (open loop: on schedule, whatever the answers)
for ``--seconds`` from ``--users`` users, with the Gemini stand-in answering each
call in ``--latency`` ± ``--jitter`` seconds and a preview asked for by a share
of the tasks; then waits for the accepted tasks to end (at most ``--drain`` s)
and prints:

- the accept path: answers by code (and error code), p50/p99 of the 202s;
- throughput: accepted and finished tasks a second;
- the backlog (accepted, not yet finished) every 10 s, from the documents' times;
- end to end (POST to ``completed_at``) p50/p99, and the tasks' outcomes;
- Firestore, from the stack's RPC log (``bench/firestore_log``): RPCs and
  transactions per task by call site, and the documents written most: their
  highest rate in any one second and in any 10 s.

Start the stack with the RPC log on and caps that let the load in (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.e2e_latency import ROOT, load_state, pct

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass
class Sent:
    index: int
    sent_at: float  # wall clock (time.time), comparable with the documents' times
    took_s: float = 0.0
    code: int = 0
    error: str = ""
    task_id: str | None = None


@dataclass
class Run:
    started: float
    ended: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)


# -- the load ------------------------------------------------------------------------------


def sign_up(http: httpx.Client, auth_url: str, count: int) -> list[dict[str, str]]:
    def one(_: int) -> dict[str, str]:
        answer = http.post(
            f"{auth_url}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "emulator-key"},
            json={"returnSecureToken": True},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['idToken']}"}

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def submit_all(
    env: dict[str, str],
    users: list[dict[str, str]],
    rate: float,
    seconds: float,
    image_share: float,
    marker: str,
) -> Run:
    """Open loop: request i leaves at start + i / rate, on a pool big enough not to lag."""
    total = round(rate * seconds)
    url = f"{env['SUBMIT_URL']}/v1/strategies"
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    http = httpx.Client(timeout=60, limits=limits)
    chooser = random.Random(marker)
    images = [chooser.random() < image_share for _ in range(total)]
    run = Run(started=time.time())
    lock = threading.Lock()

    def send(index: int) -> None:
        sent = Sent(index, time.time())
        began = time.monotonic()
        try:
            answer = http.post(
                url,
                json={"brief": f"Load {index} {marker}", "image": images[index]},
                headers=users[index % len(users)],
            )
            sent.code = answer.status_code
            body = answer.json() if answer.content else {}
            sent.task_id = body.get("task_id") if answer.status_code == 202 else None
            sent.error = (body.get("error") or {}).get("code", "") if sent.code >= 400 else ""
        except httpx.HTTPError as exc:
            sent.error = type(exc).__name__
        sent.took_s = time.monotonic() - began
        with lock:
            run.sent.append(sent)

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(256, max(16, int(rate * 4)))) as pool:
        for index in range(total):
            delay = begin + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, index)
    run.ended = time.time()
    http.close()
    return run


def drain(db: Any, run: Run, timeout_s: float) -> None:
    """Wait until every accepted task has ended (or the timeout), then keep the documents."""
    ids = [s.task_id for s in run.sent if s.task_id]
    deadline = time.monotonic() + timeout_s
    while True:
        fetch(db, ids, run)
        open_ = [t for t in ids if run.docs.get(t, {}).get("status") not in TERMINAL]
        if not open_ or time.monotonic() >= deadline:
            return
        print(f"  waiting for {len(open_)} of {len(ids)} tasks to end")
        time.sleep(5)


def fetch(db: Any, task_ids: Sequence[str], run: Run) -> None:
    wanted = [t for t in task_ids if run.docs.get(t, {}).get("status") not in TERMINAL]
    collection = db.collection("tasks")
    for start in range(0, len(wanted), 300):
        refs = [collection.document(t) for t in wanted[start : start + 300]]
        for snap in db.get_all(refs):
            if snap.exists:
                run.docs[snap.id] = snap.to_dict()


# -- the report ----------------------------------------------------------------------------


def ts(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def backlog(run: Run, step_s: float = 10.0) -> list[tuple[float, int]]:
    """Accepted and not yet ended, every ``step_s`` from the first submit."""
    spans = []
    for sent in run.sent:
        if sent.task_id:
            doc = run.docs.get(sent.task_id, {})
            spans.append((sent.sent_at, ts(doc.get("completed_at")) or float("inf")))
    last = max((end for _, end in spans if end != float("inf")), default=run.ended)
    points, t = [], run.started
    while t <= max(last, run.ended) + step_s:
        points.append((t - run.started, sum(1 for s, e in spans if s <= t < e)))
        t += step_s
    return points


def read_rpc_log(directory: Path, start: float, end: float) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(directory.glob("*.jsonl")):
        for raw in path.read_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line being written
            if start <= line["t"] <= end:
                lines.append(line)
    return lines


@dataclass(frozen=True)
class DocRate:
    doc: str
    writes: int
    peak_1s: int
    peak_10s_per_s: float


def write_rates(lines: Iterable[dict[str, Any]], top: int = 8) -> list[DocRate]:
    """Per document written: all writes, the most in one second and in any 10 s (a second)."""
    times: dict[str, list[float]] = defaultdict(list)
    for line in lines:
        if line.get("rpc") == "commit" and not line.get("error"):
            for doc in line.get("docs", []):
                times[doc].append(line["t"])
    rates = []
    for doc, stamps in times.items():
        stamps.sort()
        per_second = Counter(int(t) for t in stamps)
        peak_10 = 0
        lo = 0
        for hi, t in enumerate(stamps):
            while stamps[lo] <= t - 10:
                lo += 1
            peak_10 = max(peak_10, hi - lo + 1)
        rates.append(DocRate(doc, len(stamps), max(per_second.values()), peak_10 / 10))
    rates.sort(key=lambda r: (r.peak_10s_per_s, r.writes), reverse=True)
    return rates[:top]


def rpcs_by_site(lines: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Counter[str]]:
    """(call site, rpc) -> Counter of outcomes ("ok" or the exception's name)."""
    found: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for line in lines:
        found[(line.get("site", "?"), line["rpc"])][line.get("error") or "ok"] += 1
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(run: Run, lines: list[dict[str, Any]], args: argparse.Namespace) -> None:
    codes = Counter(f"{s.code or 'no answer'} {s.error}".strip() for s in run.sent)
    accepted = [s for s in run.sent if s.task_id]
    took = [s.took_s for s in accepted]
    window = run.ended - run.started
    print(f"\nload: {args.rate}/s for {args.seconds} s, {args.users} users, Gemini {args.latency}")
    print(f"  ± {args.jitter} s a call, image for {args.image_share:.0%} of tasks")
    print("\n| accept path | |\n|---|---|")
    for code, count in sorted(codes.items()):
        print(f"| {code} | {count} |")
    if took:
        print(f"| 202 p50 / p99 | {ms(pct(took, 0.5))} / {ms(pct(took, 0.99))} |")
    ended = [
        (s, run.docs[s.task_id])
        for s in accepted
        if s.task_id in run.docs and run.docs[s.task_id].get("status") in TERMINAL
    ]
    outcomes = Counter(
        d["status"] + (f" {d['error']['code']}" if d.get("error") else "") for _, d in ended
    )
    e2e = [
        (ts(d.get("completed_at")) or 0) - s.sent_at for s, d in ended if d["status"] == "COMPLETED"
    ]
    last = max((ts(d.get("completed_at")) or 0 for _, d in ended), default=run.ended)
    print("\n| throughput and end to end | |\n|---|---|")
    print(f"| accepted / s over the {window:.0f} s of submits | {len(accepted) / window:.1f} |")
    finished_in = last - run.started
    print(
        f"| finished / s, first submit to last end ({finished_in:.0f} s) | "
        f"{len(ended) / max(finished_in, 1e-9):.1f} |"
    )
    for outcome, count in sorted(outcomes.items()):
        print(f"| {outcome} | {count} |")
    if len(ended) < len(accepted):
        print(f"| not ended after the drain | {len(accepted) - len(ended)} |")
    if e2e:
        print(
            f"| POST -> completed_at p50 / p99 | {pct(e2e, 0.5):.1f} s / {pct(e2e, 0.99):.1f} s |"
        )
    print("\nbacklog (accepted, not ended): " + ", ".join(f"{t:.0f}s={n}" for t, n in backlog(run)))
    if not lines:
        print(
            "\nno Firestore RPC log in the run's window: start the stack with "
            "bench/firestore_log on PYTHONPATH (bench/README.md)"
        )
        return
    tasks = max(len(accepted), 1)
    print(f"\n| Firestore RPCs per accepted task ({tasks}) | rpc | per task | failed |")
    print("|---|---|---|---|")
    for (site, rpc), outcome in sorted(rpcs_by_site(lines).items()):
        failed = sum(n for k, n in outcome.items() if k != "ok")
        print(f"| {site} | {rpc} | {sum(outcome.values()) / tasks:.2f} | {failed} |")
    print("\n| document | writes | most in 1 s | most in 10 s, a second |\n|---|---|---|---|")
    for rate in write_rates(lines):
        print(f"| {rate.doc} | {rate.writes} | {rate.peak_1s} | {rate.peak_10s_per_s:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--rate", type=float, default=20.0, help="tasks a second")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to submit")
    parser.add_argument("--users", type=int, default=0, help="default: 10 per task a second")
    parser.add_argument("--latency", type=float, default=15.0, help="Gemini call, seconds")
    parser.add_argument("--jitter", type=float, default=5.0, help="± seconds on each call")
    parser.add_argument("--image-share", type=float, default=0.2)
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for ends")
    parser.add_argument("--rpc-log", type=Path, default=None, help="default: .stack/NAME/rpc-log")
    args = parser.parse_args(argv)
    args.users = args.users or max(10, round(args.rate * 10))

    state = load_state(args.stack)
    env = state["env"]
    standin = env.get("GEMINI_STANDIN_URL") or env.get("GEMINI_BASE_URL", "")
    marker = f"load-{uuid.uuid4().hex[:8]}"
    for key in ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        os.environ[key] = env[key]
    from google.cloud import firestore

    db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    with httpx.Client(timeout=30) as http:
        previous = http.get(f"{standin}/_standin/config").json()
        http.post(
            f"{standin}/_standin/config",
            json={"latency_s": args.latency, "latency_jitter_s": args.jitter},
        ).raise_for_status()
        try:
            users = sign_up(http, env["AUTH_EMULATOR_URL"], args.users)
            print(f"{len(users)} users; submitting {args.rate}/s for {args.seconds} s ({marker})")
            run = submit_all(env, users, args.rate, args.seconds, args.image_share, marker)
            print(f"submitted {len(run.sent)} in {run.ended - run.started:.1f} s; draining")
            drain(db, run, args.drain)
        finally:
            http.post(
                f"{standin}/_standin/config",
                json={k: previous[k] for k in ("latency_s", "latency_jitter_s") if k in previous},
            )
    log_dir = args.rpc_log or ROOT / ".stack" / args.stack / "rpc-log"
    ends = [ts(d.get("completed_at")) or 0 for d in run.docs.values()]
    lines = read_rpc_log(log_dir, run.started, max([run.ended, *ends]) + 1)
    report(run, lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
