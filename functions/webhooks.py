"""``deliver_webhook``: the Pub/Sub-triggered delivery of task events (issue 19)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from functions.events import handle_pubsub_event
from shared import webhooks


@functions_framework.cloud_event
def deliver_webhook(cloud_event: CloudEvent) -> None:
    handle_pubsub_event(cloud_event, webhooks.handle_delivery, webhooks.DeliverLater)
