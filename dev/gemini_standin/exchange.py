"""One request as the handlers see it, on werkzeug: its body, its deadline and log entry, the
faults it meets, and the answers they give (JSON, Google's HTML error page, server-sent events).

The deadline is the SDK's ``X-Server-Timeout`` header: a slow answer (injected latency) that
would pass it waits until the deadline, then answers 504, as Gemini does.
"""

from __future__ import annotations

import json
import math
import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from .calls import Shaping
from .common import (
    DEADLINE_MESSAGE,
    DEFAULT_MESSAGES,
    JSON,
    MAX_JSON_BODY,
    READ_PIECE,
    STREAM_EVENT_PAUSE_S,
    ApiError,
    DropConnection,
    as_float,
    error_body,
    error_page,
)
from .state import StandinState

JSON_TYPE = "application/json; charset=UTF-8"
# Google's front end sends the standard reason phrases ("Service Unavailable"; the SDK shows
# it when the body is not JSON); werkzeug's own are upper-case.
REASONS = {status.value: status.phrase for status in HTTPStatus}
HTML_TYPE = "text/html; charset=UTF-8"


def server_timeout(header: str | None) -> float | None:
    """The request deadline in seconds from ``X-Server-Timeout`` (the SDK sends whole seconds)."""
    value = as_float(header)
    return value if value is not None and value > 0 and math.isfinite(value) else None


class Exchange:
    """A request in flight; ``entry`` is its request-log entry (API routes only)."""

    def __init__(self, request: Request, state: StandinState) -> None:
        self.request = request
        self.state = state
        self.entry: JSON | None = None
        self.deadline_s = server_timeout(request.headers.get("X-Server-Timeout"))
        self._deadline = None if self.deadline_s is None else time.monotonic() + self.deadline_s

    # -- the request ---------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """Path and query, as fault rules match them (model ids, upload ids)."""
        query = self.request.query_string.decode("latin-1")
        return f"{self.request.path}?{query}" if query else self.request.path

    def arg(self, name: str, default: str = "") -> str:
        return self.request.args.get(name, default)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def base_url(self) -> str:
        """Scheme+host the client used (the SDK rewrites upload URLs to its base_url anyway)."""
        return f"http://{self.request.host}"

    def note(self, **fields: Any) -> None:
        """Add to this request's log entry."""
        if self.entry is not None:
            self.state.log_update(self.entry, **fields)

    def body_pieces(self) -> Iterator[bytes]:
        """The body in pieces (werkzeug undoes chunked encoding), never all in memory."""
        stream = self.request.stream
        try:
            while piece := stream.read(READ_PIECE):
                yield piece
        except ClientDisconnected:
            raise ConnectionResetError("client closed mid-body") from None

    def read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        data = bytearray()
        for piece in self.body_pieces():
            data += piece
            if len(data) > limit:
                raise ApiError(400, "request body too large for the stand-in")
        return bytes(data)

    def read_raw_json(self) -> tuple[bytes, JSON]:
        """The body as bytes (fault rules match on it) and as a JSON object."""
        raw = self.read_body()
        if not raw.strip():
            return raw, {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"Invalid JSON payload received. {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        return raw, body

    def read_json(self) -> JSON:
        return self.read_raw_json()[1]

    def drain(self) -> None:
        """Read what is left of the body, so that a client still sending it gets the answer."""
        for _ in self.body_pieces():
            pass

    # -- time and faults -----------------------------------------------------------------------

    def remaining(self) -> float | None:
        """Seconds left before the request's deadline, if it set one."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def wait(self, seconds: float) -> None:
        """Sleep like a slow model, but never past the deadline: then answer 504."""
        remaining = self.remaining()
        if remaining is not None and seconds > remaining:
            time.sleep(max(0.0, remaining))
            raise ApiError(504, DEADLINE_MESSAGE)
        time.sleep(seconds)

    def apply_fault(self, kind: str, haystack: str, default_latency: float = 0.0) -> Shaping:
        """Sleep, hang, or fail as the first matching rule says; return how to shape the answer."""
        rule = self.state.take_fault(kind, haystack)
        latency = default_latency
        if rule is not None and rule.latency_s is not None:
            latency = rule.latency_s  # a rule's own latency replaces the global one
        if rule is not None and rule.gather:
            remaining = self.remaining()
            wait = latency or 10.0
            rule.wait_for_company(wait if remaining is None else max(0.0, min(wait, remaining)))
            if (remaining := self.remaining()) is not None and remaining <= 0:
                raise ApiError(504, DEADLINE_MESSAGE)
        elif latency > 0:
            self.wait(latency)
        if rule is None:
            return Shaping()
        if rule.hang_s > 0:
            time.sleep(rule.hang_s)
            raise DropConnection
        if rule.status is not None:
            message = rule.message or f"[stand-in fault] {DEFAULT_MESSAGES.get(rule.status, '')}"
            raise ApiError(
                rule.status,
                message.strip(),
                html=rule.html,
                no_upload_status=rule.no_upload_status,
            )
        return rule.shaping


# -- answers -----------------------------------------------------------------------------------


def status_line(code: int) -> str:
    return f"{code} {REASONS.get(code, '')}".rstrip()


def json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(data, status_line(status), dict(headers or {}), content_type=JSON_TYPE)


def error_answer(exc: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    """Gemini's error shape, or Google's front end's HTML page when the fault asks for it."""
    if exc.html:
        page = error_page(exc.code)
        return Response(page, status_line(exc.code), dict(headers or {}), content_type=HTML_TYPE)
    return json_answer(exc.code, error_body(exc.code, exc.message), headers)


class LastEvent(bytes):
    """A stream's last piece: its request's log entry is closed before it is sent (as a
    whole answer's is), so a client that has it and reads the log sees the call ended."""


def client_gone_within(connection: socket.socket | None, seconds: float) -> bool:
    """Wait ``seconds``, or less: True as soon as the client has closed its end. A stream's
    pause watches its socket, so that the log shows a call cut by its client (a cancelled
    task) end when it is cut, as Gemini stops billing then, not at the next event."""
    if connection is None:
        time.sleep(seconds)
        return False
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([connection], [], [], left)
        if not readable:
            return False
        try:
            if not connection.recv(1, socket.MSG_PEEK):
                return True  # end of file: the client closed or shut down its side
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return True  # reset
        time.sleep(max(0.0, deadline - time.monotonic()))  # bytes from a live client
        return False
    return False


def event_stream(
    events: list[JSON],
    pause_s: float = STREAM_EVENT_PAUSE_S,
    on_first_sent: Callable[[], None] | None = None,
    connection: socket.socket | None = None,
) -> Response:
    """Server-sent events with a known Content-Length, sent (and flushed) event by event;
    a client that closes between two ends the stream at once (ConnectionResetError)."""
    encoded = [
        b"data: " + json.dumps(e, ensure_ascii=False).encode("utf-8") + b"\r\n\r\n" for e in events
    ]

    def pieces() -> Iterator[bytes]:
        for index, event in enumerate(encoded):
            if index and client_gone_within(connection, pause_s):
                raise ConnectionResetError("the client closed the stream")
            last = index == len(encoded) - 1
            # werkzeug writes and flushes each before asking for the next.
            yield LastEvent(event) if last else event
            if index == 0 and on_first_sent is not None:
                on_first_sent()

    headers = {"Cache-Control": "no-cache", "Content-Length": str(sum(map(len, encoded)))}
    return Response(
        pieces(), 200, headers, content_type="text/event-stream", direct_passthrough=True
    )
