"""The webhook POST against real local receivers: status, redirects, the cut, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import webhook_http
from shared.models import WebhookAttempt
from tests.receivers import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as made:
        yield made


def _post(url: str, *, timeout_s: float = 2.0, allow_loopback: bool = True) -> WebhookAttempt:
    return webhook_http.post(
        url,
        b'{"type": "task.completed"}',
        {"webhook-id": "evt_1"},
        timeout_s=timeout_s,
        allow_loopback=allow_loopback,
        max_url_chars=2048,
    )


def test_a_2xx_is_delivered_with_the_body_and_headers(receiver: Receiver) -> None:
    answer = _post(f"{receiver.url}/hook")
    assert answer.delivered and answer.status_code == 204 and answer.error is None
    (call,) = receiver.calls
    assert (call.path, call.body) == ("/hook", b'{"type": "task.completed"}')
    assert call.headers["webhook-id"] == "evt_1"
    assert call.headers["content-type"] == "application/json"


def test_a_5xx_is_an_attempt_that_failed(receiver: Receiver) -> None:
    receiver.answer(503)
    answer = _post(f"{receiver.url}/hook")
    assert not answer.delivered and answer.status_code == 503


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.answer((307, 0.0, {"location": f"{receiver.url}/elsewhere"}))
    answer = _post(f"{receiver.url}/hook")
    assert not answer.delivered
    assert answer.status_code == 307 and answer.error == "redirect not followed"
    assert [call.path for call in receiver.calls] == ["/hook"]


def test_a_slow_receiver_is_cut_at_the_timeout(receiver: Receiver) -> None:
    receiver.answer((200, 3.0))
    answer = _post(f"{receiver.url}/slow", timeout_s=0.5)
    assert not answer.delivered and answer.status_code is None
    assert answer.error == "no answer within 0.5 s"
    assert 450 <= answer.latency_ms < 2000


def test_loopback_is_refused_unless_allowed(receiver: Receiver) -> None:
    answer = _post(f"{receiver.url}/hook", allow_loopback=False)
    assert answer.status_code is None and answer.error is not None
    assert answer.error.startswith("refused")
    assert receiver.calls == []


def test_a_public_name_that_resolves_inside_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: the name passed the check at submit, its address is private now.
    def resolve(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(2, 1, 6, "", ("10.0.0.7", port)), (2, 1, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(webhook_http.socket, "getaddrinfo", resolve)
    answer = _post("https://hooks.example.com/x", allow_loopback=False)
    assert answer.status_code is None
    assert answer.error == "refused: the host resolves to a private or reserved address"


def test_a_refused_url_is_never_called() -> None:
    answer = _post("http://hooks.example.com/x", allow_loopback=False)
    assert answer.error == "refused: the URL must use https"
