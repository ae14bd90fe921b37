"""Signed webhooks' pure rules (issue 19): the outbox field a task's end writes, the
signature, the event, the retry schedule, the webhook_url policy and its settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared import webhook_secrets, webhooks
from shared.endings import terminal_fields
from shared.errors import InvalidArgument
from shared.models import (
    StrategyRequest,
    TaskRecord,
    TaskRequest,
    TaskStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookState,
)
from shared.settings import EMULATOR_VARIABLES, Settings, get_settings
from shared.validation import to_task_request

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HOOK = "https://hooks.example.com/tinkerbell"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (TaskStatus.COMPLETED, "task.completed"),
        (TaskStatus.FAILED, "task.failed"),
        (TaskStatus.CANCELLED, "task.cancelled"),
    ],
)
def test_an_end_with_a_webhook_writes_its_pending_delivery(
    status: TaskStatus, event_type: str
) -> None:
    fields = terminal_fields(status, NOW, webhook_url=HOOK)
    delivery = WebhookDelivery.model_validate(fields["webhook"])
    assert delivery.event_type == event_type
    assert delivery.state is WebhookState.PENDING
    assert delivery.due_at == NOW and delivery.attempts == []
    assert delivery.event_id.startswith("evt_") and len(delivery.event_id) == 36


def test_an_end_without_a_webhook_writes_no_delivery() -> None:
    assert "webhook" not in terminal_fields(TaskStatus.COMPLETED, NOW)


def test_each_end_is_its_own_event() -> None:
    first = terminal_fields(TaskStatus.COMPLETED, NOW, webhook_url=HOOK)["webhook"]
    second = terminal_fields(TaskStatus.COMPLETED, NOW, webhook_url=HOOK)["webhook"]
    assert first["event_id"] != second["event_id"]


def test_the_signature_is_standard_webhooks_hmac_sha256() -> None:
    secret = webhook_secrets.new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert len(key) >= 24
    body = b'{"type":"task.completed"}'
    expected = hmac.new(key, b"evt_1.1700000000." + body, hashlib.sha256).digest()
    header = webhook_secrets.signature(secret, "evt_1", 1_700_000_000, body)
    assert header == "v1," + base64.b64encode(expected).decode()
    other = webhook_secrets.signature(webhook_secrets.new_secret(), "evt_1", 1_700_000_000, body)
    assert other != header


def test_secrets_are_random_and_prefixed() -> None:
    made = {webhook_secrets.new_secret() for _ in range(50)}
    assert len(made) == 50
    assert all(secret.startswith("whsec_") for secret in made)


def test_the_headers_carry_id_timestamp_and_signature() -> None:
    secret = webhook_secrets.new_secret()
    headers = webhooks.signed_headers(secret, "evt_9", b"{}", 1_700_000_123)
    assert headers["webhook-id"] == "evt_9"
    assert headers["webhook-timestamp"] == "1700000123"
    assert headers["webhook-signature"] == webhook_secrets.signature(
        secret, "evt_9", 1_700_000_123, b"{}"
    )


def _task(status: TaskStatus, **fields: object) -> TaskRecord:
    return TaskRecord.model_validate(
        {
            "task_id": "t1",
            "uid": "u1",
            "status": status,
            "created_at": NOW,
            "updated_at": NOW,
            "completed_at": NOW,
            "request": TaskRequest(brief="b", language="ro", webhook_url=HOOK),
            **fields,
        }
    )


def test_the_event_carries_no_private_field() -> None:
    delivery = WebhookDelivery(event_id="evt_1", event_type="task.failed", due_at=NOW)
    error = {"code": "gemini_refused", "message": "no", "retryable": False}
    task = _task(TaskStatus.FAILED, error=error, spent_micros=5, lease_owner="x")
    event = webhooks.event_of(task, delivery)
    body = event.model_dump(mode="json")
    assert body["type"] == "task.failed" and body["event_id"] == "evt_1"
    assert body["error"]["code"] == "gemini_refused" and body["strategy"] is None
    assert body["language"] == "ro"
    assert body["status_url"].endswith("/v1/tasks/t1")
    for private in ("uid", "request", "brief", "spent_micros", "lease_owner", "webhook_url"):
        assert private not in body


def _attempt(status: int | None, seconds: float = 0) -> WebhookAttempt:
    return WebhookAttempt(at=NOW + timedelta(seconds=seconds), status_code=status, latency_ms=100)


def test_a_failed_attempt_is_due_again_after_its_wait() -> None:
    delivery = WebhookDelivery(event_id="e", event_type="task.completed", due_at=NOW)
    after = webhooks.after_attempt(delivery, _attempt(500), [10, 60])
    assert after.state is WebhookState.PENDING
    assert after.due_at == NOW + timedelta(seconds=10, milliseconds=100)
    again = webhooks.after_attempt(after, _attempt(None, 20), [10, 60])
    assert again.due_at == NOW + timedelta(seconds=80, milliseconds=100)
    assert [a.status_code for a in again.attempts] == [500, None]


def test_every_retry_failed_gives_up() -> None:
    delivery = WebhookDelivery(event_id="e", event_type="task.completed", due_at=NOW)
    for index in range(3):
        delivery = webhooks.after_attempt(delivery, _attempt(503, index), [1, 1])
    assert delivery.state is WebhookState.FAILED
    assert delivery.due_at is None and delivery.finished_at is not None
    assert len(delivery.attempts) == 3


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_delivers(status: int) -> None:
    delivery = WebhookDelivery(event_id="e", event_type="task.completed", due_at=NOW)
    after = webhooks.after_attempt(delivery, _attempt(status), [1])
    assert after.state is WebhookState.DELIVERED and after.due_at is None


@pytest.mark.parametrize("status", [301, 302, 307, 400, 410, 429, 500])
def test_anything_else_is_a_failure(status: int) -> None:
    delivery = WebhookDelivery(event_id="e", event_type="task.completed", due_at=NOW)
    assert webhooks.after_attempt(delivery, _attempt(status), [1]).state is WebhookState.PENDING


def test_the_default_schedule_spans_about_a_day() -> None:
    factory = Settings.model_fields["webhook_retry_schedule_s"].default_factory
    assert factory is not None
    waits = factory()  # type: ignore[call-arg]
    assert 20 * 3600 <= sum(waits) <= 30 * 3600


def _request(url: str, *, loopback: bool = False) -> TaskRequest:
    settings = Settings(webhook_allow_loopback=loopback)
    return to_task_request(StrategyRequest(brief="b", webhook_url=url), settings)


def test_a_public_https_webhook_url_is_kept() -> None:
    assert _request(HOOK).webhook_url == HOOK


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://10.0.0.1/x", "private"),
        ("https://169.254.169.254/computeMetadata", "private"),
        ("https://metadata.google.internal/x", "internal host"),
        ("https://localhost:8080/x", "internal host"),
        ("https://user:pw@hooks.example.com/x", "user information"),
        ("ftp://hooks.example.com/x", "must use https"),
        ("http://127.0.0.1:9999/x", "must use https"),
    ],
)
def test_a_webhook_url_off_policy_is_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason) as refused:
        _request(url)
    assert refused.value.field == "webhook_url"


def test_loopback_receivers_only_when_allowed() -> None:
    assert _request("http://127.0.0.1:9999/hook", loopback=True).webhook_url is not None
    with pytest.raises(InvalidArgument, match="private"):
        _request("https://10.0.0.1:9999/hook", loopback=True)


def test_loopback_is_refused_for_a_real_project(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EMULATOR_VARIABLES:  # a real project refuses them first
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="WEBHOOK_ALLOW_LOOPBACK"):
        Settings(google_cloud_project="tinkerbell-prod", webhook_allow_loopback=True)


def test_negative_waits_are_refused() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_RETRY_SCHEDULE_S"):
        Settings(webhook_retry_schedule_s=[10, -1])


def test_a_failed_announcement_never_fails_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task has ended either way: the sweeper republishes a lost announcement."""
    from shared import endings, queue

    published: list[str] = []

    def unreachable(task_id: str) -> str:
        published.append(task_id)
        raise TimeoutError("Pub/Sub did not answer")

    monkeypatch.setattr(queue, "publish_webhook", unreachable)
    endings.announce("t1")  # does not raise
    assert published == ["t1"]
