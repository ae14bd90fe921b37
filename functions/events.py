"""What the Pub/Sub-triggered functions share: one envelope decoder, one ack rule.

Returning acknowledges the message. A handler's "try later" exception becomes
a 503, so that Pub/Sub brings the message back with its retry backoff; a
message no retry can fix is acknowledged and logged.
"""

from __future__ import annotations

from collections.abc import Callable

from cloudevents.http import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from shared.log import get_logger, trace_context, trace_of
from shared.queue import Delivery, MalformedMessage, decode_push
from shared.settings import get_settings

log = get_logger("events")


def handle_pubsub_event(
    cloud_event: CloudEvent,
    handler: Callable[[Delivery], None],
    retry_later: type[Exception],
) -> None:
    project = get_settings().google_cloud_project
    with trace_context(trace_of(project, cloud_event.get("traceparent"))):
        try:
            delivery = decode_push(cloud_event.data)
        except MalformedMessage as exc:
            log.error(f"malformed task message dropped: {exc}")
            return
        try:
            handler(delivery)
        except retry_later as exc:
            raise ServiceUnavailable(str(exc)) from None
