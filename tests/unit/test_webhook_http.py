"""The webhook POST against real local receivers: status, redirects, the cut, refusals."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from shared import webhook_http


class _Receiver(http.server.BaseHTTPRequestHandler):
    # path -> (status, seconds to wait before answering, extra headers)
    routes: ClassVar[dict[str, tuple[int, float, dict[str, str]]]] = {}
    seen: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).seen.append((self.path, dict(self.headers.items()), body))
        status, wait, extra = self.routes.get(self.path, (404, 0.0, {}))
        time.sleep(wait)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, *, timeout_s: float = 2.0, allow_loopback: bool = True) -> webhook_http.Answer:
    return webhook_http.post(
        url,
        b'{"type": "task.completed"}',
        {"webhook-id": "evt_1"},
        timeout_s=timeout_s,
        allow_loopback=allow_loopback,
        max_url_chars=2048,
    )


def test_a_2xx_is_delivered_with_the_body_and_headers(receiver: str) -> None:
    _Receiver.routes = {"/hook": (204, 0.0, {})}
    answer = _post(f"{receiver}/hook")
    assert answer.delivered and answer.status_code == 204 and answer.error is None
    path, headers, body = _Receiver.seen[0]
    assert (path, body) == ("/hook", b'{"type": "task.completed"}')
    assert headers["webhook-id"] == "evt_1"
    assert headers["content-type"] == "application/json"


def test_a_5xx_is_an_attempt_that_failed(receiver: str) -> None:
    _Receiver.routes = {"/hook": (503, 0.0, {})}
    answer = _post(f"{receiver}/hook")
    assert not answer.delivered and answer.status_code == 503


def test_a_redirect_is_not_followed(receiver: str) -> None:
    _Receiver.routes = {"/hook": (307, 0.0, {"location": f"{receiver}/elsewhere"})}
    answer = _post(f"{receiver}/hook")
    assert not answer.delivered
    assert answer.status_code == 307 and answer.error == "redirect not followed"
    assert [path for path, _, _ in _Receiver.seen] == ["/hook"]


def test_a_slow_receiver_is_cut_at_the_timeout(receiver: str) -> None:
    _Receiver.routes = {"/slow": (200, 3.0, {})}
    answer = _post(f"{receiver}/slow", timeout_s=0.5)
    assert not answer.delivered and answer.status_code is None
    assert answer.error == "no answer within 0.5 s"
    assert 450 <= answer.latency_ms < 2000


def test_loopback_is_refused_unless_allowed(receiver: str) -> None:
    _Receiver.routes = {"/hook": (200, 0.0, {})}
    answer = _post(f"{receiver}/hook", allow_loopback=False)
    assert answer.status_code is None and answer.error is not None
    assert answer.error.startswith("refused")
    assert _Receiver.seen == []


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
