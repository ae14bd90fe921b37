"""The accept path against its floor (issue 10), run by hand against a running stack.

    .venv/bin/python -m bench.accept_path --stack dev [--requests 100]

Measures, one request at a time, the time to the 202 of ``POST /v1/strategies``
(JSON, no PDF, with the atomic caps on: the task document and its four counters in
one commit, then one publish) and, in the same run against the same emulators, the
floor: one Firestore ``create`` of a document of the same size plus one Pub/Sub
publish, made from this process with the same client settings as the function
(publisher batching of one message). Prints p50/p90 of both and the ratio of the
p50s; the HTTP figure also carries what the floor cannot: the HTTP round trip,
functions-framework, reading the body and the ID token check.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.e2e_latency import Stack, load_state, pct


def floor_once(db: Any, publisher: Any, topic: str, document: dict[str, Any]) -> float:
    began = time.perf_counter()
    db.collection("bench_floor").document(uuid.uuid4().hex).create(document)
    publisher.publish(topic, b'{"task_id": "bench"}', task_id="bench").result(timeout=10)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    state = load_state(args.stack)
    env = state["env"]
    os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"]
    stack = Stack(env)
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
    )
    # A topic of the bench's own, so that no worker receives these messages.
    topic = publisher.topic_path(env["GOOGLE_CLOUD_PROJECT"], f"bench-floor-{uuid.uuid4().hex[:8]}")
    publisher.create_topic(name=topic)
    brief = "Bench: a specialty coffee shop near the campus in Cluj, " * 4
    document = {
        "uid": "bench",
        "status": "PENDING",
        "created_at": datetime.now(UTC),
        "request": {"brief": brief, "urls": [], "language": "en", "image": False},
    }
    accept: list[float] = []
    floor: list[float] = []
    refused = 0
    try:
        headers = stack.new_user()
        for index in range(args.requests):
            if index and index % 10 == 0:
                headers = stack.new_user()  # the per-user caps (10 in flight, 30 a minute)
            # Alternate, so that both see the same machine load.
            floor.append(floor_once(stack.db, publisher, topic, document))
            began = time.perf_counter()
            answer = stack.http.post(
                f"{env['SUBMIT_URL']}/v1/strategies",
                json={"brief": brief, "image": False},
                headers=headers,
            )
            took = time.perf_counter() - began
            if answer.status_code == 202:
                accept.append(took)
            else:
                refused += 1
    finally:
        publisher.delete_topic(topic=topic)
        stack.close()
    ratio = pct(accept, 0.5) / pct(floor, 0.5)
    print(f"requests: {len(accept)} accepted, {refused} refused")
    print(
        f"accept path (202): p50 {pct(accept, 0.5) * 1000:.1f} ms, "
        f"p90 {pct(accept, 0.9) * 1000:.1f} ms"
    )
    print(
        f"floor (create + publish): p50 {pct(floor, 0.5) * 1000:.1f} ms, "
        f"p90 {pct(floor, 0.9) * 1000:.1f} ms"
    )
    print(f"p50 ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()
