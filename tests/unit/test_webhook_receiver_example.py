"""The receiver example users copy (docs/examples/webhook_receiver.py) verifies what
Tinkerbell signs (``shared.webhook_secrets.signature``, the headers of
``shared.webhooks.signed_headers``) and refuses everything else: a wrong secret, a
changed body, a timestamp more than 5 minutes off either way, a missing header. Its
small server answers 204 to a verified event, once per event id, and 400 otherwise."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import webhook_secrets, webhooks
from shared.models import WebhookEvent
from tests.receivers import load_receiver_example

NOW = 1_790_000_000  # Unix seconds: when the tests say the event arrives
EVENT_ID = "evt_0123456789abcdef0123456789abcdef"


example = load_receiver_example()


def _body(event_id: str = EVENT_ID) -> bytes:
    event = WebhookEvent.model_validate(
        {
            "type": "task.failed",
            "event_id": event_id,
            "task_id": "6f1c" * 8,
            "status": "FAILED",
            "created_at": datetime(2026, 9, 21, 10, 0, tzinfo=UTC),
            "completed_at": datetime(2026, 9, 21, 10, 1, tzinfo=UTC),
            "language": "ro",
            "status_url": "https://status.example/v1/tasks/" + "6f1c" * 8,
            "error": {"code": "content_blocked", "message": "blocked", "retryable": False},
        }
    )
    return event.model_dump_json().encode()


@pytest.fixture
def secret() -> str:
    return webhook_secrets.new_secret()


def _signed(secret: str, body: bytes, *, at: int = NOW) -> dict[str, str]:
    """The headers Tinkerbell sends with ``body``, signed ``at`` that time."""
    return webhooks.signed_headers(secret, EVENT_ID, body, at)


def test_the_signature_tinkerbell_sends_verifies(secret: str) -> None:
    body = _body()
    headers = _signed(secret, body)
    assert headers["webhook-signature"] == webhook_secrets.signature(secret, EVENT_ID, NOW, body)
    event = example.verify(secret, headers, body, now=NOW)
    assert event["event_id"] == EVENT_ID and event["type"] == "task.failed"
    assert event["error"]["code"] == "content_blocked"


def test_header_names_in_any_case_verify(secret: str) -> None:
    body = _body()
    headers = {name.title(): value for name, value in _signed(secret, body).items()}
    assert "Webhook-Signature" in headers
    assert example.verify(secret, headers, body, now=NOW)["event_id"] == EVENT_ID


def test_another_secret_fails(secret: str) -> None:
    body = _body()
    headers = _signed(webhook_secrets.new_secret(), body)
    with pytest.raises(example.WebhookVerificationError, match="no valid signature"):
        example.verify(secret, headers, body, now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body.replace(b"content_blocked", b"content_allowed"),
        lambda body: body + b" ",
        lambda body: body[:-1],
    ],
    ids=["a-value-changed", "a-byte-added", "a-byte-removed"],
)
def test_a_changed_body_fails(secret: str, tamper: Any) -> None:
    body = _body()
    headers = _signed(secret, body)
    changed = tamper(body)
    assert changed != body
    with pytest.raises(example.WebhookVerificationError, match="no valid signature"):
        example.verify(secret, headers, changed, now=NOW)


def test_another_event_id_or_timestamp_in_the_headers_fails(secret: str) -> None:
    """The id and the timestamp are signed too: neither may be swapped."""
    body = _body()
    headers = _signed(secret, body)
    for name, value in (("webhook-id", "evt_other"), ("webhook-timestamp", str(NOW + 1))):
        with pytest.raises(example.WebhookVerificationError, match="no valid signature"):
            example.verify(secret, headers | {name: value}, body, now=NOW)


@pytest.mark.parametrize(
    ("signed_at", "problem"),
    [(NOW - 360, "old"), (NOW + 360, "in the future")],
    ids=["6-minutes-old", "6-minutes-ahead"],
)
def test_a_timestamp_more_than_5_minutes_off_fails(
    secret: str, signed_at: int, problem: str
) -> None:
    body = _body()
    headers = _signed(secret, body, at=signed_at)  # a valid signature of that time
    with pytest.raises(example.WebhookVerificationError, match=problem):
        example.verify(secret, headers, body, now=NOW)
    # Within the tolerance the same headers pass: the time alone was refused.
    later = NOW - 360 + 299 if signed_at < NOW else NOW + 360 - 299
    assert example.verify(secret, headers, body, now=later)["event_id"] == EVENT_ID


def test_the_clock_is_read_when_now_is_not_given(secret: str) -> None:
    body = _body()
    fresh = _signed(secret, body, at=int(time.time()))
    assert example.verify(secret, fresh, body)["event_id"] == EVENT_ID
    with pytest.raises(example.WebhookVerificationError, match="old"):
        example.verify(secret, _signed(secret, body, at=int(time.time()) - 360), body)


def test_one_valid_signature_among_several_passes(secret: str) -> None:
    body = _body()
    valid = _signed(secret, body)["webhook-signature"]
    other = webhook_secrets.signature(webhook_secrets.new_secret(), EVENT_ID, NOW, body)
    for header in (f"{other} {valid}", f"v2,abc {valid} {other}", f"v1,!!! {valid}"):
        headers = _signed(secret, body) | {"webhook-signature": header}
        assert example.verify(secret, headers, body, now=NOW)["event_id"] == EVENT_ID
    # ... and none valid among several fails; a valid value under another version too.
    _, _, value = valid.partition(",")
    for header in (f"{other} {other}", f"v2,{value}", ""):
        headers = _signed(secret, body) | {"webhook-signature": header}
        with pytest.raises(example.WebhookVerificationError):
            example.verify(secret, headers, body, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails(secret: str, missing: str) -> None:
    body = _body()
    headers = {k: v for k, v in _signed(secret, body).items() if k != missing}
    with pytest.raises(example.WebhookVerificationError, match=f"missing header {missing}"):
        example.verify(secret, headers, body, now=NOW)


@pytest.mark.parametrize("timestamp", ["", "1.7e9", "-5", "+1790000000", "1_790_000_000"])
def test_a_timestamp_that_is_not_unix_seconds_fails(secret: str, timestamp: str) -> None:
    body = _body()
    headers = _signed(secret, body) | {"webhook-timestamp": timestamp}
    with pytest.raises(example.WebhookVerificationError, match="Unix seconds"):
        example.verify(secret, headers, body, now=NOW)


def test_a_signed_body_of_another_event_fails(secret: str) -> None:
    """webhook-id names the event: a body with another event_id is not that event."""
    body = _body(event_id="evt_someone_else")
    headers = _signed(secret, body)  # signed for EVENT_ID
    with pytest.raises(example.WebhookVerificationError, match="not the event"):
        example.verify(secret, headers, body, now=NOW)


def test_a_malformed_secret_is_a_configuration_error() -> None:
    for bad in ("whsec_not base64!", "whsec_", "plain words"):
        with pytest.raises(ValueError, match="not a webhook secret"):
            example.secret_key(bad)
    with pytest.raises(ValueError, match="not a webhook secret"):
        example.make_server("whsec_", port=0)


def test_importing_starts_nothing() -> None:
    before = threading.active_count()
    load_receiver_example()
    assert threading.active_count() == before


# ---------------------------------------------------------------- the small server


@pytest.fixture
def server(secret: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handled: list[dict[str, Any]] = []
    made = example.make_server(secret, "127.0.0.1", 0, on_event=handled.append)
    thread = threading.Thread(target=made.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"127.0.0.1:{made.server_address[1]}", handled
    finally:
        made.shutdown()
        made.server_close()
        thread.join(timeout=5)


def _post(address: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection(address, timeout=5)
    try:
        connection.request("POST", "/hook", body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_server_answers_204_once_per_event_and_400_otherwise(
    secret: str, server: tuple[str, list[dict[str, Any]]]
) -> None:
    address, handled = server
    body = _body()
    headers = _signed(secret, body, at=int(time.time()))
    assert _post(address, body, headers) == 204
    assert [event["event_id"] for event in handled] == [EVENT_ID]
    # A retry of the same event (its 204 was lost): acknowledged, not handled again.
    assert _post(address, body, headers) == 204
    assert len(handled) == 1
    assert _post(address, body + b" ", headers) == 400
    stranger = webhook_secrets.new_secret()
    assert _post(address, body, _signed(stranger, body, at=int(time.time()))) == 400
    assert _post(address, body, {}) == 400
    assert len(handled) == 1
