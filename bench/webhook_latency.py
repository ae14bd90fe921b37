"""A task's end to its webhook's arrival, on a running local stack (issue 19; by hand).

    .venv/bin/python -m bench.webhook_latency --stack dev [--tasks 30] [--clients 8]

A receiver on 127.0.0.1 (the stack's functions may call loopback receivers) answers
204 to every event. Tasks are submitted with its URL, ``--clients`` at a time; for each,
the figure is from the task's ``completed_at`` (written in the same commit as its
pending delivery) to the receiver's reading of the POST: the publish, the bridge,
``deliver_webhook``'s claim, secret and signature, and the POST itself.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.e2e_latency import Stack, load_state, pct
from tests.receivers import running_receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    stack = Stack(load_state(args.stack)["env"])
    users = [stack.new_user() for _ in range(max(1, args.tasks // 10 + 1))]

    with running_receiver() as receiver:

        def submit(index: int) -> str:
            answer = stack.http.post(
                f"{stack.env['SUBMIT_URL']}/v1/strategies",
                json={
                    "brief": f"Bench webhook {index}",
                    "image": False,
                    "webhook_url": f"{receiver.url}/bench",
                },
                headers=users[index // 10],
            )
            answer.raise_for_status()
            return str(answer.json()["task_id"])

        with ThreadPoolExecutor(args.clients) as pool:
            task_ids = list(pool.map(submit, range(args.tasks)))
        calls = receiver.wait_for(len(task_ids), timeout=120)
        time.sleep(0.5)
    try:
        arrived = {json.loads(call.body)["task_id"]: call.at for call in calls}
        delays = []
        for task_id in task_ids:
            document = stack.db.collection("tasks").document(task_id).get().to_dict() or {}
            ended = document["completed_at"]
            ended_at = ended.timestamp() if isinstance(ended, datetime) else float(ended)
            delays.append(arrived[task_id] - ended_at)
    finally:
        stack.close()
    print(f"tasks: {len(task_ids)}, {args.clients} submitting at once; events: {len(calls)}")
    print(
        f"task end -> webhook received: p50 {pct(delays, 0.5) * 1000:.0f} ms, "
        f"p90 {pct(delays, 0.9) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
