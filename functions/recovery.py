"""``dead_letter_task`` (Pub/Sub, dead-letter topic) and ``sweep_tasks`` (HTTP, scheduled)."""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent
from werkzeug.exceptions import ServiceUnavailable

from functions.http import handles_errors, require_method
from shared import recovery
from shared.log import get_logger
from shared.queue import MalformedMessage, decode_push

log = get_logger("recovery")


@functions_framework.cloud_event
def dead_letter_task(cloud_event: CloudEvent) -> None:
    try:
        delivery = decode_push(cloud_event.data)
    except MalformedMessage as exc:
        log.error(f"malformed dead letter dropped: {exc}")
        return
    try:
        recovery.handle_dead_letter(delivery)
    except recovery.LeaseStillLive as exc:
        raise ServiceUnavailable(str(exc)) from None


@handles_errors
def sweep_tasks(request: flask.Request) -> flask.Response:
    # Deployed without public access: only Cloud Scheduler's identity may call it.
    require_method(request, "POST")
    report = recovery.sweep()
    body = {"republished": len(report.republished), "failed": len(report.failed)}
    return flask.jsonify(body)
