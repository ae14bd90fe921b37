"""A receiver of Tinkerbell's signed webhooks (docs/webhooks.md): copy it and adapt it.

Python 3.11+, standard library only. ``verify()`` is all a receiver must do before
trusting an event; the small server below shows where it goes:

    export TINKERBELL_WEBHOOK_SECRET="$(tinkerbell webhook-secret)"
    python docs/examples/webhook_receiver.py --port 8787

It answers 204 to a verified event (at once: do slow work after answering, or Tinkerbell
counts the attempt as failed after 10 s and sends the event again) and 400 to anything
else. Events come at least once: the same ``webhook-id`` again is answered 204 and not
handled twice.

Importing this file starts nothing; the tests import it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_ENV = "TINKERBELL_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix)
TOLERANCE_S = 300  # a timestamp further than this from now is refused (a replay)
# An event is a few KiB (a strategy at most a few hundred); anything much larger is not one.
MAX_BODY_BYTES = 1024 * 1024
SEEN_IDS = 10_000  # event ids remembered to drop repeats (in memory: use your database)
_TIMESTAMP = re.compile(r"[0-9]{1,15}", re.ASCII)


class WebhookVerificationError(Exception):
    """Not a genuine, fresh Tinkerbell event: answer 400 and do nothing with it."""


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 after ``whsec_``. A malformed secret is a configuration
    mistake (ValueError), not a bad request."""
    try:
        key = base64.b64decode(secret.strip().removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not a webhook secret: expected {SECRET_PREFIX}<base64>") from None
    if not key:
        raise ValueError(f"not a webhook secret: expected {SECRET_PREFIX}<base64>")
    return key


def sign(secret: str, event_id: str, timestamp: str, body: bytes) -> bytes:
    """The v1 signature (Standard Webhooks): HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    return hmac.new(secret_key(secret), signed, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    # Header names are case-insensitive, and frameworks spell them differently.
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    raise WebhookVerificationError(f"missing header {name}")


def _signatures(header: str) -> Iterable[bytes]:
    """The ``v1,<base64>`` entries of the header (space-separated: there may be several,
    e.g. of other versions); anything else in it is skipped."""
    for entry in header.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            yield base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):  # ValueError: not ASCII
            continue


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> dict[str, Any]:
    """The event in ``body``, once its signature and timestamp are checked.

    ``body`` must be the raw bytes received (not JSON parsed and dumped again).
    Raises WebhookVerificationError when a header is missing, the timestamp is more
    than ``tolerance_s`` from ``now`` (either way), or no ``v1`` signature matches.
    """
    event_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds")
    age = (time.time() if now is None else now) - int(timestamp)
    if age > tolerance_s:
        raise WebhookVerificationError(f"the timestamp is {age:.0f} s old (a replay?)")
    if age < -tolerance_s:
        raise WebhookVerificationError(f"the timestamp is {-age:.0f} s in the future")
    expected = sign(secret, event_id, timestamp, body)
    # Every candidate is compared, each in constant time: no early exit tells how
    # close a forgery came.
    matched = False
    for candidate in _signatures(signatures):
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise WebhookVerificationError("no valid signature (a wrong secret, or a changed body)")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict) or event.get("event_id") != event_id:
        raise WebhookVerificationError("the body is not the event webhook-id names")
    return event


# ---------------------------------------------------------------- a small server


class SeenIds:
    """The last ``size`` event ids: a repeat is acknowledged but not handled again."""

    def __init__(self, size: int = SEEN_IDS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True


def print_event(event: dict[str, Any]) -> None:
    """The default handler: one line per event. Replace it with your own work."""
    strategy = event.get("strategy") or {}
    error = event.get("error") or {}
    detail = strategy.get("strategy_name") or error.get("code") or ""
    sys.stdout.write(f"{event.get('type')} {event.get('task_id')} {detail}\n")
    sys.stdout.flush()


def make_server(
    secret: str,
    host: str = "127.0.0.1",
    port: int = 8787,
    on_event: Callable[[dict[str, Any]], None] = print_event,
) -> ThreadingHTTPServer:
    """An HTTP server that verifies every POST; call ``serve_forever()`` on it."""
    secret_key(secret)  # a malformed secret fails here, not on every request
    seen = SeenIds()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = self.headers.get("content-length", "")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self._answer(HTTPStatus.BAD_REQUEST, "send a body of at most 1 MiB")
                return
            body = self.rfile.read(int(length))
            try:
                event = verify(secret, dict(self.headers.items()), body)
            except WebhookVerificationError as error:
                self._answer(HTTPStatus.BAD_REQUEST, str(error))
                return
            if seen.first_time(str(event["event_id"])):
                on_event(event)
            self._answer(HTTPStatus.NO_CONTENT)

        def _answer(self, status: HTTPStatus, reason: str = "") -> None:
            body = reason.encode()
            self.send_response(status)
            if status != HTTPStatus.NO_CONTENT:
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(body)))
            # A refused request's body may be unread: this connection is not reused.
            self.send_header("connection", "close")
            self.end_headers()
            if status != HTTPStatus.NO_CONTENT:
                self.wfile.write(body)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Receive Tinkerbell's signed webhooks.")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="default: 8787")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        sys.stderr.write(f"set {SECRET_ENV} (tinkerbell webhook-secret prints it)\n")
        return 2
    try:
        server = make_server(secret, args.host, args.port)
    except ValueError as error:
        sys.stderr.write(f"{SECRET_ENV}: {error}\n")
        return 2
    sys.stderr.write(f"listening on http://{args.host}:{server.server_address[1]}/\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
