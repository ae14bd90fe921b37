"""``process_task``: the Pub/Sub-triggered worker (CloudEvent), SPEC §4."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from functions.events import handle_pubsub_event
from shared import processing


@functions_framework.cloud_event
def process_task(cloud_event: CloudEvent) -> None:
    handle_pubsub_event(cloud_event, processing.handle_delivery, processing.RedeliverLater)
