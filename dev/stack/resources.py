"""Resources in the emulators: the bucket, topics and subscriptions, the bridges' feeds,
and the unfinished tasks and pending webhook deliveries published again after a recovery."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Resources, StackPlan, emulator_env


@contextlib.contextmanager
def _env_vars(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fresh_subscription(
    subscriber: Any,
    res: Resources,
    name: str,
    topic: str,
    dead_letter_policy: dict[str, Any] | None = None,
) -> None:
    """(Re)create a subscription with the settings' ack deadline and retry backoff."""
    from google.api_core.exceptions import NotFound
    from google.protobuf.duration_pb2 import Duration

    with contextlib.suppress(NotFound):
        subscriber.delete_subscription(subscription=name)
    request: dict[str, Any] = {
        "name": name,
        "topic": topic,
        "ack_deadline_seconds": res.ack_deadline_s,
        "retry_policy": {
            "minimum_backoff": Duration(seconds=res.min_backoff_s),
            "maximum_backoff": Duration(seconds=res.max_backoff_s),
        },
    }
    if dead_letter_policy is not None:
        request["dead_letter_policy"] = dead_letter_policy
    subscriber.create_subscription(request=request)


def subscription_name(base: str, generation: int) -> str:
    """The name of a bridge's subscription after `generation` - 1 replacements.

    A streaming pull that went away leaves a dead stream registered under the
    subscription's name (even across a delete + create), so a bridge that starts
    over needs a name never used before. The last word stays (``-process``,
    ``-handler``, ``-deliver``): the dead-letter attributes name the source subscription.
    """
    if generation <= 1:
        return base
    head, dash, tail = base.rpartition("-")
    return f"{head}-r{generation}-{tail}" if dash else f"{base}-r{generation}"


@dataclass(frozen=True)
class BridgeFeed:
    """The subscription a bridge reads: its first name, topic and dead-letter policy."""

    state_key: str  # its path in state.json's "resources"
    base: str
    topic: str
    dead_letter_topic: str | None  # None: no dead-letter policy


def bridge_feeds(res: Resources) -> dict[str, BridgeFeed]:
    return {
        # The tasks topic -> process_task, dead-lettered after the settings' attempts.
        "bridge": BridgeFeed(
            "subscription", res.subscription, res.topic, dead_letter_topic=res.dead_letter_topic
        ),
        # The dead-letter handler's own subscription (production: the Eventarc
        # trigger of dead_letter_task). It answers 503 while a live lease may still
        # finish the task, so it gets the same backoff; no dead-letter policy of its
        # own: it keeps trying until the lease has expired.
        "bridge-deadletter": BridgeFeed(
            "deadletter_subscription",
            res.deadletter_subscription,
            res.dead_letter_topic,
            dead_letter_topic=None,
        ),
        # deliver_webhook's subscription (production: its Eventarc trigger). It answers
        # 503 until an attempt is due and after each failed one, so Pub/Sub's backoff
        # paces the retries; no dead-letter policy: the function gives up by itself
        # after WEBHOOK_RETRY_SCHEDULE_S (about a day), which Pub/Sub's 100 attempts at
        # most 600 s apart would cut short.
        "bridge-webhooks": BridgeFeed(
            "webhooks_subscription",
            res.webhooks_subscription,
            res.webhooks_topic,
            dead_letter_topic=None,
        ),
    }


def _create_feed(subscriber: Any, res: Resources, feed: BridgeFeed, name: str) -> None:
    policy = None
    if feed.dead_letter_topic is not None:
        policy = {
            "dead_letter_topic": res.topic_path(feed.dead_letter_topic),
            "max_delivery_attempts": res.max_delivery_attempts,
        }
    _fresh_subscription(
        subscriber, res, res.subscription_path(name), res.topic_path(feed.topic), policy
    )


def create_bucket(stack: StackPlan) -> None:
    from google.api_core.exceptions import Conflict
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        client = storage.Client(project=stack.project, credentials=AnonymousCredentials())
        with contextlib.suppress(Conflict):  # 409: it exists already
            client.create_bucket(res.bucket)


def create_resources(stack: StackPlan) -> None:
    """Bucket, topics, the bridges' fresh subscriptions, the two inspect subscriptions."""
    # Imported here: planning, `status`, `env` and the unit tests need none of them.
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    create_bucket(stack)
    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topics = (
            res.topic,
            res.dead_letter_topic,
            res.webhooks_topic,
            res.webhook_dead_letter_topic,
        )
        for name in topics:
            with contextlib.suppress(AlreadyExists):
                publisher.create_topic(name=res.topic_path(name))
        # Always fresh, on a fresh emulator: a streaming-pull client that goes away
        # (even cleanly, and even across a delete + create under the same name:
        # measured with emulator 0.8.20) leaves a dead stream that swallows some
        # messages, or all, until their ack deadline passes. A bridge that starts
        # again beside a running emulator gets a new name (`resubscribe`).
        for feed in bridge_feeds(res).values():
            _create_feed(subscriber, res, feed, feed.base)
        # Pull subscriptions nothing reads but the tests: what was dead-lettered, and
        # which webhook deliveries were given up.
        inspected = (
            (res.inspect_subscription, res.dead_letter_topic),
            (res.webhook_inspect_subscription, res.webhook_dead_letter_topic),
        )
        for subscription, topic in inspected:
            with contextlib.suppress(AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": res.subscription_path(subscription),
                        "topic": res.topic_path(topic),
                    }
                )
        subscriber.close()
        publisher.stop()


def resubscribe(stack: StackPlan, bridge: str, old: str | None, generation: int) -> str:
    """A new subscription for a bridge that starts over; the old one is deleted.

    The new one exists before the old one goes, so that no message published
    meanwhile misses both. What only the old one held (the dead bridge's
    deliveries, what was published while it was down) goes with it:
    ``requeue_unfinished`` publishes those tasks again (``requeue_webhooks`` the
    webhook deliveries, for ``bridge-webhooks``). Returns the new path.
    """
    from google.api_core.exceptions import NotFound
    from google.cloud import pubsub_v1

    res = stack.resources
    feed = bridge_feeds(res)[bridge]
    name = subscription_name(feed.base, generation)
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        subscriber = pubsub_v1.SubscriberClient()
        try:
            _create_feed(subscriber, res, feed, name)
            if old and old != res.subscription_path(name):
                with contextlib.suppress(NotFound):
                    subscriber.delete_subscription(subscription=old)
        finally:
            subscriber.close()
    return res.subscription_path(name)


def requeue_unfinished(stack: StackPlan) -> list[str]:
    """Publish every PENDING or PROCESSING task's message again; returns their ids.

    What the sweeper does for lost messages (the local stack runs no sweeper),
    without its waits: a copy of a message that still exists somewhere costs
    nothing, since the worker's claim lets one delivery work at a time (a task
    under a live lease answers 503 until that lease ends, a finished task is
    acknowledged as it is).
    """
    res = stack.resources
    return _publish_again(stack, res.topic, "status", "in", ["PENDING", "PROCESSING"])


def requeue_webhooks(stack: StackPlan) -> list[str]:
    """Publish again the message of every task whose webhook delivery is still pending.

    What the sweeper does for stalled deliveries, without WEBHOOK_STALL_S: a copy
    costs nothing either, since deliver_webhook answers 503 to a delivery not yet
    due or being sent by another attempt, and acknowledges one that is finished.
    """
    from shared.models import WebhookState

    res = stack.resources
    pending = WebhookState.PENDING.value
    return _publish_again(stack, res.webhooks_topic, "webhook.state", "==", pending)


def _publish_again(stack: StackPlan, topic: str, field: str, op: str, value: Any) -> list[str]:
    """Publish a task message (shared.queue's encoding) on `topic` for each task whose
    `field` matches; returns their ids."""
    from google.cloud import firestore, pubsub_v1
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.queue import encode

    res = stack.resources
    with _env_vars(emulator_env(stack.project, stack.ports, res.bucket)):
        db = firestore.Client(project=stack.project)
        try:
            matching = (
                db.collection(res.tasks_collection)
                .where(filter=FieldFilter(field, op, value))
                .select(["status"])
            )
            task_ids = [snap.id for snap in matching.stream()]
        finally:
            db.close()
        publisher = pubsub_v1.PublisherClient()
        try:
            futures = []
            for task_id in task_ids:
                data, attributes = encode(task_id)
                futures.append(publisher.publish(res.topic_path(topic), data, **attributes))
            for future in futures:
                future.result(timeout=30)
        finally:
            publisher.stop()
    return task_ids
