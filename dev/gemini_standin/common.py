"""What every part of the stand-in shares: request kinds, limits, Google's error shape and
the JSON log line."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

MARKER = "[stand-in sample]"
API_VERSIONS = ("v1beta", "v1", "v1alpha")
# Request kinds, as logged and as matched by fault rules ("any" matches every kind).
GENERATE = "generateContent"
STREAM = "streamGenerateContent"
IMAGE = "image"
UPLOAD = "upload"
FILES = "files"
MODELS = "models"  # GET /{ver}/models and /{ver}/models/{id}
COUNT = "countTokens"
UNKNOWN = "unknown"
# Which API a request spoke (its log entry's "backend").
DEVELOPER = "developer"
VERTEX = "vertex"
FAULT_ENDPOINTS = (GENERATE, STREAM, IMAGE, UPLOAD, FILES, MODELS, COUNT, "any")


def endpoint_matches(wanted: str, kind: str) -> bool:
    """``generateContent`` names text generation, streamed or not; the others are exact."""
    return wanted in ("", "any", kind) or (wanted == GENERATE and kind == STREAM)


MAX_JSON_BODY = 64 * 1024 * 1024  # inline data can be large, but not unbounded
READ_PIECE = 64 * 1024
MATCH_TEXT_CHARS = 4000
MAX_LOG_ENTRIES = 20_000
MAX_SCHEMA_DEPTH = 8
FILE_LIFETIME_S = 48 * 3600
STREAM_EVENT_PAUSE_S = 0.005

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission.",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

DEADLINE_MESSAGE = DEFAULT_MESSAGES[504]


_LOG_LOCK = threading.Lock()


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one JSON log line to stderr (Cloud Logging style). Never pass the API key here."""
    record = {"severity": severity, "message": message, **fields}
    line = json.dumps(record, ensure_ascii=False, default=str)
    with _LOG_LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def snake(name: str) -> str:
    """``fileUri`` -> ``file_uri``: the SDK mixes both spellings, so we accept both."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get_any(obj: Mapping[str, Any], camel: str) -> Any:
    """Read a field by its camelCase name or its snake_case twin (first one present wins)."""
    if camel in obj and obj[camel] is not None:
        return obj[camel]
    return obj.get(snake(camel))


def as_float(value: Any) -> float | None:
    """A JSON number (or numeric string, as proto int64 fields arrive) as float, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rfc3339(timestamp: float) -> str:
    """Format a unix time the way Google APIs do (UTC, microseconds, ``Z``)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(code: int, message: str | None = None) -> JSON:
    """The Gemini error shape: ``{"error": {"code", "message", "status"}}``."""
    status = STATUS_NAMES.get(code, "UNKNOWN")
    error: JSON = {"code": code, "message": message or DEFAULT_MESSAGES.get(code, status)}
    error["status"] = status
    if code == 429:  # the real API adds RetryInfo; the SDK ignores it, clients may not
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
        ]
    return {"error": error}


class ApiError(Exception):
    """Raised anywhere while handling a request; the dispatcher turns it into an error answer."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        html: bool = False,
        no_upload_status: bool = False,
    ) -> None:
        super().__init__(message or DEFAULT_MESSAGES.get(code, ""))
        self.code = code
        self.message = message
        self.html = html  # answered as Google's front end does: an HTML page, not JSON
        self.no_upload_status = no_upload_status  # a chunk answer without X-Goog-Upload-Status


def error_page(code: int) -> bytes:
    """What Google's front end answers on some 5xx: an HTML page, no JSON error at all.
    (The SDK then takes the HTTP reason phrase, "Service Unavailable", as the status.)"""
    return (
        "<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error "
        f"{code} (Server Error)!!1</title><p><b>{code}.</b> <ins>That’s an error.</ins>"
        "<p>The server cannot process the request right now. Please try again later. "
        "<ins>That’s all we know.</ins></html>\n"
    ).encode()


class DropConnection(Exception):
    """Raised to close the connection without any answer (a hung or dead upstream)."""


def make_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"standin-page:{offset}".encode()).decode("ascii")


def page_token_offset(token: str) -> int:
    """The offset inside an opaque page token; a token we did not issue answers 400."""
    if not token:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "standin-page" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise ApiError(400, "Invalid page token.")
