"""Delivering a task's end to its webhook_url (issue 19, docs/webhooks.md).

``deliver_webhook`` gets the task id from WEBHOOKS_TOPIC and makes at most one attempt
per message: the event is signed with the owner's secret and POSTed
(``shared.webhook_http``), and the attempt is recorded on the task for its owner to see.
A failed attempt sets when the next is due (WEBHOOK_RETRY_SCHEDULE_S) and answers "later":
Pub/Sub brings the message back with its backoff, and a message back too early is sent
back again without a call. Once every retry has failed the delivery is FAILED and its
message goes to WEBHOOK_DEAD_LETTER_TOPIC. Duplicate messages are harmless: an attempt
marks the delivery as sending (conditional on the version read) before it calls, so one
attempt calls at a time; a delivered event is not sent again.

A deleted task (DELETE /v1/tasks/{id}, DELETE /v1/me) takes its delivery with it: its
next message finds nothing and is dropped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared import clients, queue, webhook_http, webhook_secrets
from shared.log import get_logger
from shared.models import (
    TaskRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookState,
)
from shared.queue import Delivery
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

log = get_logger("webhooks")

# An attempt holds the delivery for its timeout and this much more: the resolution, the
# secret and the writes around the POST, with room for a slow one (a duplicate message
# that came after the hold ended would send a second time).
SENDING_MARGIN_S = 30.0


class DeliverLater(Exception):
    """Answer non-2xx: the message must come back (not due yet, being sent, failed)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _ref(task_id: str) -> DocumentReference:
    return clients.firestore().collection(get_settings().tasks_collection).document(task_id)


def event_of(task: TaskRecord, delivery: WebhookDelivery) -> WebhookEvent:
    """The body every attempt of a task's event sends (the same bytes each time)."""
    return WebhookEvent.model_validate(
        {
            "type": delivery.event_type,
            "event_id": delivery.event_id,
            "task_id": task.task_id,
            "status": task.status,
            "created_at": task.created_at,
            "completed_at": task.completed_at,
            "version": task.version,
            "parent_task_id": task.parent_task_id,
            "root_task_id": task.root_task_id,
            "language": task.request.language,
            "status_url": get_settings().status_url(task.task_id),
            "strategy": task.result.strategy if task.result else None,
            "error": task.error,
        }
    )


def signed_headers(secret: str, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_secrets.signature(secret, event_id, timestamp, body),
    }


def after_attempt(
    delivery: WebhookDelivery, attempt: WebhookAttempt, schedule: list[float]
) -> WebhookDelivery:
    """The delivery once ``attempt`` is made: delivered, due again later, or given up."""
    attempts = [*delivery.attempts, attempt]
    done_at = attempt.at + timedelta(milliseconds=attempt.latency_ms)
    base = {"attempts": attempts, "sending_until": None}
    if attempt.delivered:
        state = {"state": WebhookState.DELIVERED, "due_at": None, "finished_at": done_at}
    elif len(attempts) > len(schedule):
        state = {"state": WebhookState.FAILED, "due_at": None, "finished_at": done_at}
    else:
        wait = schedule[len(attempts) - 1]
        state = {"due_at": done_at + timedelta(seconds=wait)}
    return delivery.model_copy(update={**base, **state})


def handle_delivery(message: Delivery) -> None:
    """One Pub/Sub message of WEBHOOKS_TOPIC: at most one attempt."""
    from google.api_core.exceptions import FailedPrecondition, NotFound

    settings = get_settings()
    task_id = message.message.task_id
    ref = _ref(task_id)
    snapshot = ref.get()
    if not snapshot.exists:
        log.info("webhook dropped: the task was deleted", extra={"task_id": task_id})
        return
    task = TaskRecord.model_validate(snapshot.to_dict())
    delivery, url = task.webhook, task.request.webhook_url
    if delivery is None or url is None or delivery.state is not WebhookState.PENDING:
        return  # no webhook, or this event is delivered or given up already
    now = _now()
    if delivery.due_at is not None and delivery.due_at > now:
        raise DeliverLater(f"the next attempt is due at {delivery.due_at.isoformat()}")
    if delivery.sending_until is not None and delivery.sending_until > now:
        raise DeliverLater("another attempt is sending this event")
    sending_until = now + timedelta(seconds=settings.webhook_timeout_s + SENDING_MARGIN_S)
    client = clients.firestore()
    try:
        ref.update(
            {"webhook.sending_until": sending_until},
            option=client.write_option(last_update_time=snapshot.update_time),
        )
    except FailedPrecondition:
        raise DeliverLater("the task changed meanwhile") from None
    except NotFound:
        return

    body = event_of(task, delivery).model_dump_json().encode()
    secret = webhook_secrets.get_or_create(task.uid).secret
    attempt = webhook_http.post(
        url,
        body,
        signed_headers(secret, delivery.event_id, body, int(time.time())),
        timeout_s=settings.webhook_timeout_s,
        allow_loopback=settings.webhook_allow_loopback,
        max_url_chars=settings.max_url_chars,
    )
    after = after_attempt(delivery, attempt, settings.webhook_retry_schedule_s)
    context = {
        "task_id": task_id,
        "event_id": delivery.event_id,
        "attempt": len(after.attempts),
        "http_status": attempt.status_code,
        "duration_ms": attempt.latency_ms,
        "error_code": attempt.error,
    }
    try:
        ref.update({"webhook": after.model_dump()})
    except NotFound:
        log.info("webhook attempt made; the task was deleted meanwhile", extra=context)
        return
    if after.state is WebhookState.DELIVERED:
        log.info("webhook delivered", extra=context)
        return
    if after.state is WebhookState.FAILED:
        log.warning("webhook given up: every retry failed", extra=context)
        _dead_letter(task_id, delivery.event_id)
        return
    log.info("webhook attempt failed: will retry", extra=context)
    assert after.due_at is not None
    raise DeliverLater(f"attempt failed; the next is due at {after.due_at.isoformat()}")


def _dead_letter(task_id: str, event_id: str) -> None:
    try:
        queue.dead_letter_webhook(task_id, event_id=event_id, reason="retries_exhausted")
    except Exception:
        # The task records the delivery as FAILED either way: that is the owner's copy.
        log.exception("webhook dead letter not published", extra={"task_id": task_id})


def stalled_task_ids(*, now: datetime, limit: int) -> list[str]:
    """Tasks whose delivery is due for longer than WEBHOOK_STALL_S: their message was lost
    (a crash between the end and the publish), so the sweeper publishes them again."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    settings = get_settings()
    cutoff = now - timedelta(seconds=settings.webhook_stall_s)
    query = (
        clients.firestore()
        .collection(settings.tasks_collection)
        .where(filter=FieldFilter("webhook.state", "==", WebhookState.PENDING.value))
        .where(filter=FieldFilter("webhook.due_at", "<", cutoff))
        .limit(limit)
    )
    return [snapshot.id for snapshot in query.select(["status"]).stream()]


def republish_stalled(now: datetime | None = None) -> list[str]:
    """The sweeper's part: publish again every delivery whose message was lost."""
    now = now or _now()
    stalled = stalled_task_ids(now=now, limit=500)
    for task_id in stalled:
        queue.publish_webhook(task_id)
    if stalled:
        log.warning(f"sweep: {len(stalled)} stalled webhook deliveries published again")
    return stalled
