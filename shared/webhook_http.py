"""One POST of a webhook event to a user's receiver, made safe to aim anywhere.

The URL was checked at submit, but a public name can resolve to a private address at
delivery time (DNS rebinding, or a name pointed inside later). So the connection is made
here, to an address this module resolved and checked, while TLS still verifies the URL's
host name. Redirects are never followed (a 3xx is a failed attempt: following it would
aim the request somewhere unchecked), and the whole exchange is cut at ``timeout_s``,
however slowly the receiver trickles: a timer shuts the socket. The answer's body is not
read: its status is all a delivery needs.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpcore

from shared.models import WebhookAttempt
from shared.urls import UrlRejected, check_webhook_url, is_public_address

USER_AGENT = "Tinkerbell-Webhooks/1"


class AddressRefused(httpcore.ConnectError):
    """The receiver's host resolves to an address no delivery may call."""


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to a checked address of the host, and can shut what it opened."""

    def __init__(self, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback
        self._streams: list[httpcore.NetworkStream] = []
        self._lock = threading.Lock()
        self._cut = False

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        address = self._checked_address(host, port)
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        with self._lock:
            self._streams.append(stream)
            cut = self._cut
        if cut:
            self.cut()
        return stream

    def _checked_address(self, host: str, port: int) -> str:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the host: {exc}") from None
        addresses = [str(info[4][0]) for info in found]
        # Every address must pass: a name with one private address among public ones
        # would otherwise reach inside whenever the connection falls back to it.
        if not addresses or not all(
            is_public_address(a, allow_loopback=self._allow_loopback) for a in addresses
        ):
            raise AddressRefused("the host resolves to a private or reserved address")
        return addresses[0]

    def cut(self) -> None:
        """End the exchange now: a blocked read wakes at once (TLS or not)."""
        with self._lock:
            self._cut = True
            streams = list(self._streams)
        for stream in streams:
            sock = stream.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    allow_loopback: bool,
    max_url_chars: int,
) -> WebhookAttempt:
    """POST ``body`` to ``url`` once: the attempt as the task records it; never raises
    for anything the receiver does."""
    at = datetime.now(UTC)
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    def attempt(status_code: int | None, error: str | None = None) -> WebhookAttempt:
        return WebhookAttempt(at=at, status_code=status_code, latency_ms=took(), error=error)

    try:
        check_webhook_url(url, max_chars=max_url_chars, allow_loopback=allow_loopback)
    except UrlRejected as exc:
        return attempt(None, f"refused: the URL {exc}")
    backend = _CheckedBackend(allow_loopback)
    timer = threading.Timer(timeout_s, backend.cut)
    timer.daemon = True
    timer.start()
    timeouts = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    sent = {**headers, "content-type": "application/json", "user-agent": USER_AGENT}
    try:
        # httpcore, not httpx: it takes our connecting backend, and follows no redirect.
        with (
            httpcore.ConnectionPool(network_backend=backend, max_connections=1) as pool,
            pool.stream(
                "POST",
                url,
                headers=list(sent.items()),
                content=body,
                extensions={"timeout": timeouts},
            ) as response,
        ):
            status = response.status
    except AddressRefused as exc:
        return attempt(None, f"refused: {exc}")
    except httpcore.TimeoutException:
        return attempt(None, f"no answer within {timeout_s:g} s")
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        reason = "connection failed" if isinstance(exc, httpcore.ConnectError) else "no answer"
        return attempt(None, _timed_out_or(took(), timeout_s, reason))
    finally:
        timer.cancel()
    if 300 <= status < 400:
        return attempt(status, "redirect not followed")
    return attempt(status)


def _timed_out_or(took_ms: int, timeout_s: float, error: str) -> str:
    # The timer's cut surfaces as a read or connect error: name it for what it was.
    return f"no answer within {timeout_s:g} s" if took_ms >= timeout_s * 1000 else error
