"""``process_task``: the Pub/Sub-triggered worker (CloudEvent), SPEC §4.

Returning acknowledges the message; ``RedeliverLater`` becomes a 503 so that
Pub/Sub brings the message back with its retry backoff.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from shared import processing
from shared.log import get_logger
from shared.queue import MalformedMessage, decode_push

log = get_logger("process")


@functions_framework.cloud_event
def process_task(cloud_event: CloudEvent) -> None:
    try:
        delivery = decode_push(cloud_event.data)
    except MalformedMessage as exc:
        # No retry can fix it: acknowledge, and say so loudly.
        log.error(f"malformed task message dropped: {exc}")
        return
    try:
        processing.handle_delivery(delivery)
    except processing.RedeliverLater as exc:
        raise ServiceUnavailable(str(exc)) from None
