"""SPEC §5 secrets stay out of logs: ``shared.log.JsonFormatter`` writes one JSON
line with whitelisted keys only."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import datetime
from typing import Any

import pytest

from shared.log import LOGGED_KEYS, JsonFormatter


def record(
    msg: str = "task claimed",
    *args: Any,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    logger = logging.getLogger("tinkerbell.unit")
    return logger.makeRecord(
        logger.name, level, __file__, 1, msg, args, exc_info, extra=extra or None
    )


def format_line(rec: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    line = JsonFormatter().format(rec)
    return line, json.loads(line)


def test_basic_line() -> None:
    line, entry = format_line(record(extra={"task_id": "t-1"}))
    assert "\n" not in line
    assert entry["severity"] == "INFO"
    assert entry["message"] == "task claimed"
    assert entry["task_id"] == "t-1"
    assert entry["logger"] == "tinkerbell.unit"
    assert datetime.fromisoformat(entry["time"]).utcoffset() is not None


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        pytest.param(logging.DEBUG, "DEBUG", id="debug"),
        pytest.param(logging.INFO, "INFO", id="info"),
        pytest.param(logging.WARNING, "WARNING", id="warning"),
        pytest.param(logging.ERROR, "ERROR", id="error"),
        pytest.param(logging.CRITICAL, "CRITICAL", id="critical"),
    ],
)
def test_severity_is_a_cloud_logging_level(level: int, severity: str) -> None:
    assert format_line(record(level=level))[1]["severity"] == severity


def test_message_arguments_are_interpolated() -> None:
    _, entry = format_line(record("attempt %d of %s", 2, "3"))
    assert entry["message"] == "attempt 2 of 3"


def test_multiline_message_stays_one_line() -> None:
    line, entry = format_line(record("first\nsecond"))
    assert "\n" not in line
    assert entry["message"] == "first\nsecond"


def test_non_ascii_is_kept_readable() -> None:
    line, entry = format_line(record("gata: Brașov"))
    assert "Brașov" in line
    assert entry["message"] == "gata: Brașov"


def test_every_whitelisted_key_is_written() -> None:
    extra = {key: f"value-{key}" for key in LOGGED_KEYS}
    _, entry = format_line(record(extra=extra))
    for key in LOGGED_KEYS:
        assert entry[key] == f"value-{key}"


def test_none_values_are_left_out() -> None:
    _, entry = format_line(record(extra={"task_id": "t", "uid": None}))
    assert "uid" not in entry


def test_non_json_values_are_stringified() -> None:
    _, entry = format_line(record(extra={"duration_ms": 12.5, "task_id": datetime(2026, 1, 1)}))
    assert entry["duration_ms"] == 12.5
    assert entry["task_id"] == "2026-01-01 00:00:00"


def test_keys_outside_the_whitelist_are_dropped() -> None:
    extra = {
        "task_id": "t-2",
        "prompt": "secret brief about a product launch",
        "api_key": "AIza-secret-key",
        "request": {"brief": "secret brief"},
        "headers": {"Authorization": "Bearer token-123"},
    }
    line, entry = format_line(record(extra=extra))
    assert set(entry) == {"severity", "message", "time", "logger", "task_id"}
    for secret in ("secret brief", "AIza-secret-key", "token-123"):
        assert secret not in line


def test_an_exception_gives_its_stack_trace_without_its_message() -> None:
    try:
        raise ValueError("the brief says: secret launch plan, key=AIza-secret")
    except ValueError:
        exc_info = sys.exc_info()
    line, entry = format_line(record("call failed", level=logging.ERROR, exc_info=exc_info))
    assert entry["error_type"] == "ValueError"
    assert entry["message"] == "call failed"
    trace = entry["stack_trace"]
    # Python's own format, which Error Reporting parses: header, frames, type.
    assert trace.startswith("Traceback (most recent call last):\n  File ")
    assert __file__ in trace and "test_an_exception_gives_its_stack_trace" in trace
    assert trace.splitlines()[-1] == "ValueError: <message withheld: 51 characters>"
    assert "secret launch plan" not in line
    assert "AIza-secret" not in line


def test_our_errors_and_google_api_errors_keep_their_message_without_keys() -> None:
    from google.api_core.exceptions import ServiceUnavailable

    from shared.gemini import GeminiError

    try:
        try:
            # A key-shaped value, built so that no key-shaped literal sits in the repo.
            fake_key = "AIza" + "SyA1234567890abcdefghijklmno"
            raise ServiceUnavailable(f"Firestore unavailable (key {fake_key})")
        except ServiceUnavailable as cause:
            raise GeminiError("gemini_unavailable", "Gemini is busy", retryable=True) from cause
    except GeminiError:
        exc_info = sys.exc_info()
    line, entry = format_line(record("attempt failed", level=logging.WARNING, exc_info=exc_info))
    trace = entry["stack_trace"]
    first, _ = trace.split("The above exception was the direct cause")
    assert "google.api_core.exceptions.ServiceUnavailable: 503 Firestore unavailable" in first
    assert "<redacted>" in first and "AIzaSy" not in line
    assert trace.splitlines()[-1] == "shared.gemini.GeminiError: Gemini is busy"


def test_the_trace_of_a_request_or_event() -> None:
    from shared.log import trace_context, trace_of

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    expected = f"projects/p/traces/{trace_id}"
    assert trace_of("p", f"00-{trace_id}-00f067aa0ba902b7-01") == expected
    assert trace_of("p", f"{trace_id.upper()}/1;o=1") == expected
    for bad in (None, "", "not-a-trace", "00-xyz-00f067aa0ba902b7-01"):
        assert trace_of("p", bad) is None
    with trace_context(expected):
        _, entry = format_line(record())
    assert entry["logging.googleapis.com/trace"] == expected
    assert "logging.googleapis.com/trace" not in format_line(record())[1]


def test_no_error_type_without_exception() -> None:
    assert "error_type" not in format_line(record())[1]
    assert "error_type" not in format_line(record(exc_info=(None, None, None)))[1]


def test_through_a_real_logger_exception_call() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tinkerbell.unit.exception")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        try:
            raise KeyError("prompt: secret brief")
        except KeyError:
            logger.exception("failed", extra={"task_id": "t-3", "prompt": "secret brief"})
    finally:
        logger.handlers[:] = []
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["severity"] == "ERROR"
    assert entry["task_id"] == "t-3"
    assert entry["error_type"] == "KeyError"
    assert entry["stack_trace"].endswith("KeyError: <message withheld: 22 characters>")
    assert "secret brief" not in lines[0]
