"""``dead_letter_task`` (Pub/Sub, dead-letter topic) and ``sweep_tasks`` (HTTP, scheduled)."""

from __future__ import annotations

from datetime import UTC, datetime

import flask
import functions_framework
from cloudevents.http import CloudEvent

from functions.events import handle_pubsub_event
from functions.http import handles_errors, require_method
from shared import recovery, upload_sessions, webhooks


@functions_framework.cloud_event
def dead_letter_task(cloud_event: CloudEvent) -> None:
    handle_pubsub_event(cloud_event, recovery.handle_dead_letter, recovery.LeaseStillLive)


@handles_errors
def sweep_tasks(request: flask.Request) -> flask.Response:
    # Deployed without public access: only Cloud Scheduler's identity may call it.
    require_method(request, "POST")
    report = recovery.sweep()
    closed = upload_sessions.sweep_expired(datetime.now(UTC))
    webhooks_republished = webhooks.republish_stalled()
    body = {
        "republished": len(report.republished),
        "failed": len(report.failed),
        "waiting": len(report.waiting),
        "upload_sessions_closed": closed,
        "webhooks_republished": len(webhooks_republished),
    }
    return flask.jsonify(body)
