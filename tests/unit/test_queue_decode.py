"""SPEC §4 messages: ``shared.queue.encode`` and ``decode_push`` (the CloudEvent
data of a Pub/Sub push: ``{"message": {...}, "subscription": ..., ...}``)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.queue import Delivery, MalformedMessage, decode_push, encode

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope(**message: Any) -> dict[str, Any]:
    return {"message": message, "subscription": "projects/demo-x/subscriptions/s"}


# ------------------------------------------------------------------ sample events


def test_sample_push_event() -> None:
    delivery = decode_push(load_event("pubsub_push.json"))
    assert isinstance(delivery, Delivery)
    assert delivery.message.task_id == "6f1c2b0e9a7d4c3f8e5a1b2c3d4e5f60"
    assert delivery.message_id == "12132665510234298"
    # Pub/Sub timestamps carry nanoseconds; microseconds are what Python keeps.
    assert delivery.publish_time == datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)


def test_sample_push_event_delivery_attempt() -> None:
    # A push to a subscription with a dead-letter policy carries
    # ``deliveryAttempt`` next to ``message`` and ``subscription``.
    delivery = decode_push(load_event("pubsub_push.json"))
    assert delivery.delivery_attempt == 5


def test_sample_attribute_only_event() -> None:
    delivery = decode_push(load_event("pubsub_push_attribute_only.json"))
    assert delivery.message.task_id == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert delivery.message_id == "12132665510234299"
    assert delivery.publish_time == datetime(2026, 11, 26, 10, 0, 1, 749000, tzinfo=UTC)
    assert delivery.delivery_attempt is None


# ------------------------------------------------------------------ encode / round trip


def test_encode_gives_json_data_and_attribute() -> None:
    data, attributes = encode("abc-123")
    assert json.loads(data.decode("utf-8")) == {"task_id": "abc-123"}
    assert attributes == {"task_id": "abc-123"}


@given(st.text(min_size=1, max_size=128))
def test_property_round_trip(task_id: str) -> None:
    data, attributes = encode(task_id)
    delivery = decode_push(envelope(data=b64(data), attributes=attributes, messageId="1"))
    assert delivery.message.task_id == task_id


def test_round_trip_without_attributes() -> None:
    data, _ = encode("only-in-data")
    assert decode_push(envelope(data=b64(data))).message.task_id == "only-in-data"


def test_data_wins_over_attribute() -> None:
    data, _ = encode("from-data")
    delivery = decode_push(envelope(data=b64(data), attributes={"task_id": "from-attribute"}))
    assert delivery.message.task_id == "from-data"


def test_extra_keys_in_data_are_ignored() -> None:
    data = json.dumps({"task_id": "t1", "future_field": 1}).encode()
    assert decode_push(envelope(data=b64(data))).message.task_id == "t1"


# ------------------------------------------------------------------ attribute fallback


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({}, id="no-data"),
        pytest.param({"data": ""}, id="empty-data"),
        pytest.param({"data": None}, id="null-data"),
        pytest.param({"data": b64(b"not json")}, id="data-not-json"),
        pytest.param({"data": "!!!not base64!!!"}, id="data-not-base64"),
        pytest.param({"data": b64(b"\xff\xfe")}, id="data-not-utf8"),
        pytest.param({"data": b64(b"[1, 2]")}, id="data-json-list"),
        pytest.param({"data": b64(b'"t"')}, id="data-json-string"),
    ],
)
def test_task_id_from_attribute(message: dict[str, Any]) -> None:
    delivery = decode_push(envelope(**message, attributes={"task_id": "attr-id"}))
    assert delivery.message.task_id == "attr-id"


# ------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="empty-envelope"),
        pytest.param({"message": None}, id="null-message"),
        pytest.param({"message": "text"}, id="message-not-object"),
        pytest.param(["message"], id="envelope-list"),
        pytest.param(None, id="envelope-null"),
        pytest.param(envelope(), id="no-data-no-attribute"),
        pytest.param(envelope(attributes={}), id="empty-attributes"),
        pytest.param(envelope(attributes={"other": "x"}), id="other-attribute"),
        pytest.param(envelope(data=b64(b"not json")), id="bad-data-no-attribute"),
        pytest.param(envelope(data=b64(b"{}")), id="json-without-task-id"),
        pytest.param(envelope(data=b64(b'{"task_id": ""}')), id="empty-task-id"),
        pytest.param(envelope(data=b64(b'{"task_id": 5}')), id="numeric-task-id"),
        pytest.param(envelope(attributes={"task_id": ""}), id="empty-attribute"),
        pytest.param(envelope(attributes={"task_id": "x" * 129}), id="attribute-too-long"),
    ],
)
def test_malformed_messages(event: Any) -> None:
    with pytest.raises(MalformedMessage):
        decode_push(event)


def test_malformed_message_is_a_value_error() -> None:
    assert issubclass(MalformedMessage, ValueError)


# ------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC), id="z-seconds"
        ),
        pytest.param(
            "2021-02-26T19:13:55.749Z",
            datetime(2021, 2, 26, 19, 13, 55, 749000, tzinfo=UTC),
            id="z-millis",
        ),
        pytest.param(
            "2026-11-26T10:00:00.123456789Z",
            datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC),
            id="z-nanos",
        ),
        pytest.param(
            "2026-11-26T12:00:00+02:00",
            datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC),
            id="offset",
        ),
        pytest.param(
            "2026-11-26T10:00:00", datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC), id="naive-is-utc"
        ),
        pytest.param("yesterday", None, id="garbage"),
        pytest.param(1764151200, None, id="number"),
        pytest.param(None, None, id="null"),
    ],
)
def test_publish_time(value: Any, expected: datetime | None) -> None:
    delivery = decode_push(envelope(attributes={"task_id": "t"}, publishTime=value))
    assert delivery.publish_time == expected
    if expected is not None:
        assert delivery.publish_time is not None
        assert delivery.publish_time.utcoffset() is not None


def test_publish_time_snake_case() -> None:
    delivery = decode_push(
        envelope(attributes={"task_id": "t"}, publish_time="2026-11-26T10:00:00.5Z")
    )
    assert delivery.publish_time == datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=UTC)


def test_missing_metadata_is_none() -> None:
    delivery = decode_push(envelope(attributes={"task_id": "t"}))
    assert delivery.message_id is None
    assert delivery.publish_time is None
    assert delivery.delivery_attempt is None


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"messageId": "42"}, id="camel"),
        pytest.param({"message_id": "42"}, id="snake"),
    ],
)
def test_message_id(message: dict[str, str]) -> None:
    assert decode_push(envelope(attributes={"task_id": "t"}, **message)).message_id == "42"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(3, 3, id="int"),
        pytest.param("7", 7, id="numeric-string"),
        pytest.param("many", None, id="garbage"),
        pytest.param(None, None, id="null"),
    ],
)
def test_delivery_attempt_next_to_message(value: Any, expected: int | None) -> None:
    event = envelope(attributes={"task_id": "t"})
    event["deliveryAttempt"] = value
    assert decode_push(event).delivery_attempt == expected
