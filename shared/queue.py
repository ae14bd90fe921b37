"""The task queue: Pub/Sub messages that carry a task id (SPEC §4).

One publisher for the accept path, one decoder for every consumer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared import clients
from shared.models import TaskMessage
from shared.settings import get_settings


class MalformedMessage(ValueError):
    """A message no retry can make sense of: acknowledge it and log."""


@dataclass(frozen=True)
class Delivery:
    message: TaskMessage
    message_id: str | None
    publish_time: datetime | None
    delivery_attempt: int | None


def encode(task_id: str) -> tuple[bytes, dict[str, str]]:
    data = TaskMessage(task_id=task_id).model_dump_json().encode()
    return data, {"task_id": task_id}


def publish_task(task_id: str) -> str:
    """Publish the task's message and wait for the server's id."""
    return _publish(get_settings().tasks_topic, task_id)


def publish_webhook(task_id: str) -> str:
    """Announce the end of a task with a webhook_url to ``deliver_webhook``."""
    return _publish(get_settings().webhooks_topic, task_id)


def dead_letter(task_id: str, *, reason: str) -> str:
    """Put the message of a task the worker gave up on in the dead-letter topic.

    Pub/Sub forwards there a message that was refused too often; the worker does
    the same for a task it failed after its last attempt, so that one topic holds
    every message given up on, whoever gave up (``reason`` tells why).
    """
    return _publish(get_settings().dead_letter_topic, task_id, reason=reason)


def dead_letter_webhook(task_id: str, *, event_id: str, reason: str) -> str:
    """Keep a delivery every retry failed for in the webhook dead-letter topic."""
    topic = get_settings().webhook_dead_letter_topic
    return _publish(topic, task_id, event_id=event_id, reason=reason)


def _publish(topic_name: str, task_id: str, **extra_attributes: str) -> str:
    settings = get_settings()
    publisher = clients.publisher()
    topic = publisher.topic_path(settings.google_cloud_project, topic_name)
    data, attributes = encode(task_id)
    future = publisher.publish(topic, data, **attributes, **extra_attributes)
    return str(future.result(timeout=settings.publish_timeout_s))


def decode_push(envelope: dict[str, Any]) -> Delivery:
    """Decode the CloudEvent data of a Pub/Sub push: ``{"message": {...}, ...}``."""
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise MalformedMessage("no Pub/Sub message in the event")
    attributes = message.get("attributes") or {}
    payload: Any = None
    if message.get("data"):
        try:
            payload = json.loads(base64.b64decode(message["data"], validate=True))
        except (binascii.Error, ValueError):
            payload = None
    if not isinstance(payload, dict) or "task_id" not in payload:
        payload = {"task_id": attributes.get("task_id")}
    try:
        task_message = TaskMessage.model_validate(payload)
    except ValidationError:
        raise MalformedMessage("the message carries no task id") from None
    return Delivery(
        message=task_message,
        message_id=message.get("messageId") or message.get("message_id"),
        publish_time=_parse_time(message.get("publishTime") or message.get("publish_time")),
        # Push puts deliveryAttempt beside the message; accept it inside too.
        delivery_attempt=_as_int(envelope.get("deliveryAttempt") or message.get("deliveryAttempt")),
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
