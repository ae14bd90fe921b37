"""A task's end: the fields every turn to COMPLETED, FAILED or CANCELLED writes, and the
announcement of that end to the task's webhook (issue 19, docs/webhooks.md).

The end and the webhook's delivery record are one write (an outbox): a task that ended
with a webhook_url holds ``webhook.state == PENDING`` until ``deliver_webhook`` is done
with it. The announcement (a Pub/Sub message) follows the commit; when it is lost (a
crash in between, Pub/Sub unreachable) the sweeper finds the delivery still due after
WEBHOOK_STALL_S and publishes it again. It never fails or delays the task itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from shared import queue
from shared.log import get_logger
from shared.models import (
    Progress,
    TaskError,
    TaskResult,
    TaskStatus,
    WebhookDelivery,
)
from shared.settings import get_settings

log = get_logger("endings")

EVENT_TYPES = {
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}


def terminal_fields(
    status: TaskStatus,
    now: datetime,
    *,
    result: TaskResult | None = None,
    error: TaskError | None = None,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": status.value,
        "updated_at": now,
        "completed_at": now,
        "lease_expires_at": None,
        "result": result.model_dump() if result else None,
        "error": error.model_dump() if error else None,
        "draft": None,
        "checkpoint": None,
        "progress": Progress(stage="done", message=status.value.lower(), percent=100).model_dump(),
        # A finished task is kept TASK_RETENTION_DAYS, then a TTL policy deletes it (its
        # objects age out sooner, by the bucket's lifecycle).
        "expires_at": now + timedelta(days=get_settings().task_retention_days),
    }
    if webhook_url:
        delivery = WebhookDelivery(
            event_id=f"evt_{uuid.uuid4().hex}", event_type=EVENT_TYPES[status], due_at=now
        )
        fields["webhook"] = delivery.model_dump()
    return fields


def announce(task_id: str) -> None:
    """Publish the end of a task with a webhook for ``deliver_webhook``. A failure is
    logged, not raised: the task has ended either way, and the sweeper republishes."""
    try:
        queue.publish_webhook(task_id)
    except Exception:
        log.exception(
            "webhook announcement not published: the sweeper will", extra={"task_id": task_id}
        )
