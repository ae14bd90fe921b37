"""Pub/Sub → CloudEvent delivery bridge for the local stack (SPEC §7).

    python -m dev.pubsub_push --subscription projects/P/subscriptions/S \\
        --endpoint http://127.0.0.1:8002/ --max-in-flight 64

Production Pub/Sub (through Eventarc) pushes many requests to ``process_task`` at
once; the emulator's own push keeps only 2 in flight per subscription. ``dev/stack/``
runs one bridge per Pub/Sub-triggered function (``process_task``, ``dead_letter_task``,
``deliver_webhook``), each on a subscription of its own. This bridge
pulls with a streaming pull instead and POSTs each message, concurrently, as the
structured CloudEvent Eventarc would send (``application/cloudevents+json``,
type ``google.cloud.pubsub.topic.v1.messagePublished``). A 2xx answer acks the
message, anything else (or no answer) nacks it, so that the subscription's retry
policy and dead-letter policy apply as they would in production.

Unlike the emulator's push, the payload keeps ``deliveryAttempt`` (set when the
subscription has a dead-letter policy), as production push does.

Logs are JSON lines on stdout. SIGTERM or SIGINT closes the streaming pull.
Do not restart the bridge on the same subscription: any stream that went away,
even cleanly closed and even after the subscription was deleted and created again
under the same name, stays registered in the Pub/Sub emulator (0.8.20) and
swallows some messages, or all, until their ack deadline passes. ``dev/stack/``
therefore gives a restarted bridge a subscription of a new name (and publishes the
unfinished tasks again, which costs no second Gemini call, or for ``deliver_webhook``
the pending webhook deliveries, which costs no second POST of a delivered event).
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import urllib3
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
# dev/stack/ waits for this message in the log before it calls the stack up.
READY_MESSAGE = "streaming pull open"


_log_lock = threading.Lock()


def log(severity: str, message: str, **fields: Any) -> None:
    """One JSON line, the shape Cloud Logging reads from stdout."""
    record = {"severity": severity, "message": message, "time": rfc3339(datetime.now(UTC))}
    line = json.dumps({**record, **fields}, default=str)
    # One write under a lock: print() from 64 threads interleaves text and newlines.
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def rfc3339(moment: datetime) -> str:
    """UTC, 'Z' suffix, microseconds: the form Pub/Sub uses for publishTime."""
    text = moment.isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else f"{text}Z"


def cloud_event(message: Message, subscription: str, topic: str) -> dict[str, Any]:
    """The structured CloudEvent Eventarc delivers for a Pub/Sub message."""
    publish_time = rfc3339(message.publish_time)
    payload: dict[str, Any] = {
        "data": base64.b64encode(message.data).decode("ascii"),
        "attributes": dict(message.attributes),
        "messageId": message.message_id,
        "message_id": message.message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if message.delivery_attempt is not None:
        payload["deliveryAttempt"] = message.delivery_attempt
    return {
        "specversion": "1.0",
        "id": message.message_id,
        "source": f"//pubsub.googleapis.com/{topic}",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "time": publish_time,
        "data": {"message": payload, "subscription": subscription},
    }


class Bridge:
    """Delivers each pulled message to the endpoint; the outcome acks or nacks it."""

    def __init__(
        self, endpoint: str, subscription: str, topic: str, max_in_flight: int, timeout: float
    ) -> None:
        self.endpoint = endpoint
        self.subscription = subscription
        self.topic = topic
        # One pooled connection per worker thread; block rather than open extras.
        self.http = urllib3.PoolManager(
            maxsize=max_in_flight,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )

    def __call__(self, message: Message) -> None:
        started = time.monotonic()
        fields: dict[str, Any] = {
            "message_id": message.message_id,
            "task_id": message.attributes.get("task_id"),
            "delivery_attempt": message.delivery_attempt,
        }
        try:
            response = self.http.request(
                "POST",
                self.endpoint,
                body=json.dumps(cloud_event(message, self.subscription, self.topic)).encode(),
                headers={"Content-Type": "application/cloudevents+json"},
            )
        except Exception as error:  # any failure to deliver is a nack, never a crash
            message.nack()
            log("WARNING", "delivery failed", error=repr(error), **fields)
            return
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if 200 <= response.status < 300:
            message.ack()
            log("INFO", "delivered", status=response.status, elapsed_ms=elapsed_ms, **fields)
        else:
            message.nack()
            log("WARNING", "refused", status=response.status, elapsed_ms=elapsed_ms, **fields)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dev.pubsub_push", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--subscription", required=True, help="projects/P/subscriptions/S")
    parser.add_argument("--endpoint", required=True, help="URL of the CloudEvent function")
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for one answer (the subscription's ack deadline)",
    )
    return parser.parse_args(argv)


def install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    subscriber = pubsub_v1.SubscriberClient()
    # Fails at once (and the stack reports it) if the subscription does not exist.
    topic = subscriber.get_subscription(subscription=args.subscription).topic
    bridge = Bridge(args.endpoint, args.subscription, topic, args.max_in_flight, args.timeout)
    executor = ThreadPoolExecutor(max_workers=args.max_in_flight, thread_name_prefix="push")
    future = subscriber.subscribe(
        args.subscription,
        callback=bridge,
        flow_control=pubsub_v1.types.FlowControl(
            max_messages=args.max_in_flight,
            # Like push: a delivery that outlives the ack deadline is given up.
            max_lease_duration=int(args.timeout) + 30,
        ),
        scheduler=ThreadScheduler(executor=executor),
    )
    log(
        "INFO",
        READY_MESSAGE,
        subscription=args.subscription,
        endpoint=args.endpoint,
        max_in_flight=args.max_in_flight,
    )
    while not stop.wait(0.5):
        if future.done():  # the stream broke for good (emulator gone...)
            log("ERROR", "streaming pull ended", error=repr(future.exception()))
            subscriber.close()
            return 1
    future.cancel()  # closes the stream in the emulator
    future.result(timeout=30)
    subscriber.close()
    log("INFO", "stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    install_stop_handlers(stop)
    return run(args, stop)


if __name__ == "__main__":
    sys.exit(main())
