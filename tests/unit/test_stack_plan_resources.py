"""What ``up`` makes in the emulators (``dev/stack/resources.py``, SPEC §7): topics,
the bridges' subscriptions and their policies, the inspect subscriptions, a bridge's
fresh subscription after a restart, and what is published again then. The Pub/Sub and
Firestore clients are fakes (tests/unit/stack_helpers.py): nothing starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1

from dev import stack
from dev.stack import plan, resources
from shared.queue import encode
from tests.unit.stack_helpers import FakeFirestore, FakePubSub


@pytest.fixture
def pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePubSub]:
    fake = FakePubSub()
    monkeypatch.setattr(pubsub_v1, "PublisherClient", fake.publisher)
    monkeypatch.setattr(pubsub_v1, "SubscriberClient", fake.subscriber)
    monkeypatch.setattr(resources, "create_bucket", lambda stack_plan: None)
    yield fake


def seconds(request: dict[str, Any], bound: str) -> int:
    return int(request["retry_policy"][bound].seconds)


def test_up_makes_the_task_and_webhook_topics(pubsub: FakePubSub) -> None:
    stack_plan = plan({}, "test")
    resources.create_resources(stack_plan)
    res = stack_plan.resources
    assert pubsub.topics == [
        res.topic_path(name)
        for name in (
            "tinkerbell-tasks",
            res.dead_letter_topic,
            "tinkerbell-webhooks",
            "tinkerbell-webhooks-dead",
        )
    ]


def test_every_bridge_reads_a_subscription_with_the_settings_backoff(pubsub: FakePubSub) -> None:
    stack_plan = plan({}, "test")
    resources.create_resources(stack_plan)
    res = stack_plan.resources
    backoff = (res.min_backoff_s, res.max_backoff_s)
    assert len(stack_plan.bridges) == 3
    for bridge in stack_plan.bridges:
        path = bridge.argv[bridge.argv.index("--subscription") + 1]
        request = pubsub.subscriptions[path]
        assert request["ack_deadline_seconds"] == res.ack_deadline_s, bridge.name
        got = (seconds(request, "minimum_backoff"), seconds(request, "maximum_backoff"))
        assert got == backoff, bridge.name


def test_only_the_tasks_subscription_has_a_dead_letter_policy(pubsub: FakePubSub) -> None:
    stack_plan = plan({"MAX_DELIVERY_ATTEMPTS": "9"}, "test")
    resources.create_resources(stack_plan)
    res = stack_plan.resources
    tasks = pubsub.subscriptions[res.subscription_path(res.subscription)]
    assert tasks["topic"] == res.topic_path(res.topic)
    assert tasks["dead_letter_policy"] == {
        "dead_letter_topic": res.topic_path(res.dead_letter_topic),
        "max_delivery_attempts": 9,
    }
    handler = pubsub.subscriptions[res.subscription_path(res.deadletter_subscription)]
    assert handler["topic"] == res.topic_path(res.dead_letter_topic)
    assert "dead_letter_policy" not in handler
    # deliver_webhook gives up by itself (WEBHOOK_RETRY_SCHEDULE_S, about a day).
    deliver = pubsub.subscriptions[res.subscription_path("tinkerbell-webhooks-deliver")]
    assert deliver["topic"] == res.topic_path("tinkerbell-webhooks")
    assert "dead_letter_policy" not in deliver


def test_what_was_given_up_can_be_read_from_an_inspect_subscription(pubsub: FakePubSub) -> None:
    stack_plan = plan({}, "test")
    resources.create_resources(stack_plan)
    res = stack_plan.resources
    inspect = pubsub.subscriptions[res.subscription_path(res.inspect_subscription)]
    assert inspect["topic"] == res.topic_path(res.dead_letter_topic)
    webhooks = pubsub.subscriptions[res.subscription_path("tinkerbell-webhooks-dead-inspect")]
    assert webhooks["topic"] == res.topic_path("tinkerbell-webhooks-dead")
    # Pull subscriptions: nothing but the tests reads them, no bridge.
    bridge_reads = {b.argv[b.argv.index("--subscription") + 1] for b in stack_plan.bridges}
    assert not {inspect["name"], webhooks["name"]} & bridge_reads
    assert set(pubsub.subscriptions) == bridge_reads | {inspect["name"], webhooks["name"]}


def test_up_again_on_a_running_emulator_keeps_the_topics_and_renews_the_feeds(
    pubsub: FakePubSub,
) -> None:
    stack_plan = plan({}, "test")
    resources.create_resources(stack_plan)
    resources.create_resources(stack_plan)  # AlreadyExists is no failure
    res = stack_plan.resources
    assert len(pubsub.topics) == 4
    # Each bridge's subscription is made fresh (a dead stream may hold the old one).
    assert sorted(pubsub.deleted) == sorted(
        res.subscription_path(feed.base) for feed in stack.bridge_feeds(res).values()
    )


def test_a_webhooks_bridge_that_starts_over_gets_a_fresh_subscription(pubsub: FakePubSub) -> None:
    stack_plan = plan({}, "test")
    resources.create_resources(stack_plan)
    res = stack_plan.resources
    old = res.subscription_path(res.webhooks_subscription)
    new = resources.resubscribe(stack_plan, "bridge-webhooks", old, 2)
    assert new == res.subscription_path("tinkerbell-webhooks-r2-deliver")
    assert pubsub.subscriptions[new]["topic"] == res.topic_path(res.webhooks_topic)
    assert "dead_letter_policy" not in pubsub.subscriptions[new]
    assert old not in pubsub.subscriptions
    assert res.subscription_path(res.subscription) in pubsub.subscriptions  # others stay


def test_the_pending_webhook_deliveries_are_published_again_on_the_webhooks_topic(
    pubsub: FakePubSub, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = FakeFirestore(["t1", "t2"])
    monkeypatch.setattr(firestore, "Client", db)
    stack_plan = plan({}, "test")
    assert resources.requeue_webhooks(stack_plan) == ["t1", "t2"]
    assert db.collections == [stack_plan.resources.tasks_collection]
    assert db.filters == [("webhook.state", "==", "PENDING")]
    topic = stack_plan.resources.topic_path("tinkerbell-webhooks")
    # The message the task's end publishes (shared.queue.publish_webhook).
    assert pubsub.published == [(topic, *encode("t1")), (topic, *encode("t2"))]


def test_the_unfinished_tasks_are_published_again_on_the_tasks_topic(
    pubsub: FakePubSub, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = FakeFirestore(["t3"])
    monkeypatch.setattr(firestore, "Client", db)
    stack_plan = plan({}, "test")
    assert resources.requeue_unfinished(stack_plan) == ["t3"]
    assert db.filters == [("status", "in", ["PENDING", "PROCESSING"])]
    topic = stack_plan.resources.topic_path("tinkerbell-tasks")
    assert pubsub.published == [(topic, *encode("t3"))]
