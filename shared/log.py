"""Structured JSON logs that Cloud Logging understands (``severity``, ``message``).

Extra context travels in ``extra={"task_id": ...}``. Only whitelisted keys are
written, so a careless ``extra`` cannot leak a prompt or a key into the logs.
"""

from __future__ import annotations

import json
import logging
import sys
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
    "duration_ms",
    "outcome",
    "http_status",
    "message_id",
)


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
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: exception texts from client libraries can quote requests.
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


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
