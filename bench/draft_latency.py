"""How soon a user sees the strategy being written (issue 11, item 5), run by hand.

    .venv/bin/python -m bench.draft_latency --stack dev [--tasks 20] [--pieces 12] [--pause 0.5]

Makes the stack's Gemini stand-in stream the strategy slowly (``--pieces`` events of
text, ``--pause`` seconds apart), submits ``--tasks`` briefs one at a time, and for
each measures, with a Firestore listener on the task, the time from the stand-in
sending the first streamed event (its request log) to the listener seeing the first
``draft``. Both clocks are this machine's wall clock. Prints p50, p90 and max, and
how many draft writes each task got (the progress-write budget: about one a second).
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

from bench.e2e_latency import Stack, load_state, pct


def one_task(stack: Stack, standin: str, headers: dict[str, str], marker: str) -> dict[str, Any]:
    seen: list[tuple[float, dict[str, Any]]] = []
    done = threading.Event()
    brief = f"Bench drafts: a bike shop in Sibiu {marker}"
    answer = stack.http.post(
        f"{stack.env['SUBMIT_URL']}/v1/strategies",
        json={"brief": brief, "image": False},
        headers=headers,
    )
    answer.raise_for_status()
    task_id = answer.json()["task_id"]

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        now = time.time()
        for snap in snapshots:
            data = snap.to_dict() if snap.exists else None
            if data:
                seen.append((now, data))
                if data["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    done.set()

    watch = stack.db.collection("tasks").document(task_id).on_snapshot(on_change)
    try:
        done.wait(120)
    finally:
        watch.unsubscribe()
    calls = stack.http.get(
        f"{standin}/_standin/requests", params={"contains": marker, "endpoint": "generateContent"}
    ).json()["requests"]
    first_event = next((c["first_event_at"] for c in calls if c.get("first_event_at")), None)
    drafts = [t for t, data in seen if data.get("status") == "PROCESSING" and data.get("draft")]
    return {
        "status": seen[-1][1]["status"] if seen else "UNSEEN",
        "first_draft_s": drafts[0] - first_event if drafts and first_event else None,
        "draft_writes": len(drafts),
        "stream_s": (calls[0]["ended_at"] - first_event) if calls and first_event else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--pieces", type=int, default=12)
    parser.add_argument("--pause", type=float, default=0.5)
    args = parser.parse_args()
    state = load_state(args.stack)
    stack = Stack(state["env"])
    standin = state["env"]["GEMINI_STANDIN_URL"]
    previous = stack.http.get(f"{standin}/_standin/config").json()
    stack.http.post(
        f"{standin}/_standin/config",
        json={"stream_pieces": args.pieces, "stream_pause_s": args.pause},
    ).raise_for_status()
    results = []
    try:
        headers = stack.new_user()
        for index in range(args.tasks):
            if index and index % 10 == 0:
                headers = stack.new_user()  # per-user caps
            results.append(one_task(stack, standin, headers, uuid.uuid4().hex[:10]))
    finally:
        stack.http.post(f"{standin}/_standin/config", json=previous)
        stack.close()
    firsts = [r["first_draft_s"] for r in results if r["first_draft_s"] is not None]
    writes = [r["draft_writes"] for r in results]
    streams = [r["stream_s"] for r in results if r["stream_s"] is not None]
    print(f"tasks: {len(results)}, completed: {sum(r['status'] == 'COMPLETED' for r in results)}")
    print(f"stream of {args.pieces} events {args.pause} s apart: ~{pct(streams, 0.5):.1f} s")
    if firsts:
        print(
            "first streamed event -> first draft seen by a listener: "
            f"p50 {pct(firsts, 0.5) * 1000:.0f} ms, p90 {pct(firsts, 0.9) * 1000:.0f} ms, "
            f"max {max(firsts) * 1000:.0f} ms ({len(firsts)} tasks with a draft)"
        )
    print(f"draft writes per task: min {min(writes)}, max {max(writes)}")


if __name__ == "__main__":
    main()
