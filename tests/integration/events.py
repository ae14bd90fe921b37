"""Pub/Sub push CloudEvents as production delivers them to ``process_task``."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

PROJECT = "demo-tinkerbell"


def pubsub_cloud_event(task_id: str, *, publish_time: str | None = None) -> dict[str, Any]:
    message_id = str(uuid.uuid4().int)[:16]
    when = publish_time or datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "id": message_id,
        "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/tinkerbell-tasks",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "datacontenttype": "application/json",
        "time": when,
        "data": {
            "message": {
                "data": base64.b64encode(json.dumps({"task_id": task_id}).encode()).decode(),
                "attributes": {"task_id": task_id},
                "messageId": message_id,
                "publishTime": when,
            },
            "subscription": f"projects/{PROJECT}/subscriptions/test-direct",
        },
    }
