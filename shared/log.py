"""Structured JSON logs that Cloud Logging understands (``severity``, ``message``).

Extra context travels in ``extra={"task_id": ...}``. Only whitelisted keys are
written, so a careless ``extra`` cannot leak a prompt or a key into the logs.

A logged exception carries its traceback as ``stack_trace``, which Error Reporting
reads (it groups by frames and type). The frames are code, never data; of the
exception messages only those of our own errors and of Google's API errors are
kept (they say what a service answered), others are withheld, since a message can
quote a brief or a request. ``logging.googleapis.com/trace`` ties the lines of one
request or event together (``trace_context``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

# Context keys that may appear in a log line; anything else is dropped.
LOGGED_KEYS = (
    "task_id",
    "uid",
    "status",
    "attempt",
    "delivery_attempt",
    "code",
    "retryable",
    "model",
    "prompt_tokens",
    "output_tokens",
    "total_tokens",
    "thoughts_tokens",
    "resumed",
    "setting",
    "error_code",
    "duration_ms",
    "outcome",
    "http_status",
    "message_id",
    "event_id",
)


# Messages of these exception types are kept in stack traces: they are our own
# user-facing texts, or what a Google API answered (never the request we sent).
SAFE_MESSAGE_MODULES = ("shared.", "google.api_core.", "google.genai.errors")
MAX_EXCEPTION_MESSAGE = 300
KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_-]{20,}|[Bb]earer\s+\S+")
TRACE_FIELD = "logging.googleapis.com/trace"
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key in LOGGED_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        trace = _trace.get()
        if trace is not None:
            entry[TRACE_FIELD] = trace
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["stack_trace"] = stack_trace(record.exc_info[1])
        return json.dumps(entry, ensure_ascii=False, default=str)


def stack_trace(exc: BaseException | None) -> str:
    """Python's own traceback format (what Error Reporting parses), chained
    exceptions included, with every message that may quote data withheld."""
    blocks: list[str] = []
    seen: set[int] = set()
    link = ""
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # Frames without their source lines: file, line and function are what
        # Error Reporting groups by, and a source line could hold a literal.
        frames = "".join(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(exc.__traceback__)
        )
        blocks.append(
            f"Traceback (most recent call last):\n{frames}"
            f"{_qualified_name(exc)}: {_safe_message(exc)}\n{link}"
        )
        if exc.__cause__ is not None:
            exc = exc.__cause__
            link = "\nThe above exception was the direct cause of the following exception:\n\n"
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc = exc.__context__
            link = "\nDuring handling of the above exception, another exception occurred:\n\n"
        else:
            exc = None
    return "".join(reversed(blocks)).rstrip("\n")


def _qualified_name(exc: BaseException) -> str:
    module = type(exc).__module__
    name = type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def _safe_message(exc: BaseException) -> str:
    module = type(exc).__module__ + "."
    if not module.startswith(SAFE_MESSAGE_MODULES):
        return f"<message withheld: {len(str(exc))} characters>"
    text = KEY_PATTERN.sub("<redacted>", " ".join(str(exc).split()))
    return text[:MAX_EXCEPTION_MESSAGE]


def trace_of(project: str, header: str | None) -> str | None:
    """The trace resource of a request, from ``traceparent`` (W3C) or
    ``X-Cloud-Trace-Context`` (``TRACE_ID/SPAN_ID;o=1``)."""
    if not header:
        return None
    found = re.fullmatch(r"\s*00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\s*", header)
    trace_id = found.group(1) if found else header.split("/", 1)[0].strip()
    if not re.fullmatch(r"[0-9a-fA-F]{32}", trace_id):
        return None
    return f"projects/{project}/traces/{trace_id.lower()}"


@contextmanager
def trace_context(trace: str | None) -> Iterator[None]:
    """Every line logged inside carries ``trace`` (a request's or an event's)."""
    token = _trace.set(trace)
    try:
        yield
    finally:
        _trace.reset(token)


_configured = False


def get_logger(name: str) -> logging.Logger:
    """A logger writing JSON lines to stdout (configured once per process)."""
    global _configured
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger("tinkerbell")
        root.handlers[:] = [handler]
        root.propagate = False
        from shared.settings import get_settings

        root.setLevel(get_settings().log_level.upper())
        _configured = True
    return logging.getLogger(f"tinkerbell.{name}")
