"""Injected behaviours (``/_standin/faults``): latency, hangs, errors, shaped answers."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from .calls import BLOCK_REASONS, FINISH_REASONS, IMAGE_FORMATS, Shaping
from .common import FAULT_ENDPOINTS, JSON, ApiError, as_float, endpoint_matches

# What a File API chunk's haystack starts with (the start request's is its JSON body).
CHUNK_HAYSTACK = "upload chunk\n"


@dataclass
class FaultRule:
    """One injected behaviour, from the body of ``POST /_standin/faults``.

    ``match`` (substring of the raw request body and path; for files the display name and
    path; "" matches all), ``endpoint`` (one of FAULT_ENDPOINTS, default "any"), ``times``
    (uses, null = for ever), then what happens, in this order: ``latency_s`` (replaces the
    global latency; past the request's ``X-Server-Timeout`` the answer is 504 at the
    deadline), ``hang_s`` (sleep, then close the connection without an answer), ``status`` +
    optional ``message`` (error answer), or a shaped 200 answer: ``finish_reason`` (one of
    FINISH_REASONS; all but STOP and MAX_TOKENS come without content, SAFETY with
    safetyRatings; MAX_TOKENS cuts the text), ``block_reason`` (one of BLOCK_REASONS:
    promptFeedback without candidates), ``bad_json`` (text cut in half), ``schema_invalid``
    (valid JSON without the schema's required fields), ``image_format`` ("jpeg" or "png" for
    this answer's image), ``stream_pieces``/``stream_pause_s`` (this stream's events and the
    pause between them); ``CONTINUATION`` cuts the text and adds a ``continuationToken``.
    With a status: ``html`` answers Google's HTML error page instead of the JSON error,
    ``no_upload_status`` leaves ``X-Goog-Upload-Status`` off a File API chunk answer.
    ``gather`` (N): each matching request waits until N of them are
    waiting at once, at most ``latency_s`` (default 10 s), then all go on together: proof
    that a client keeps N requests in flight, whatever the spread of their arrival.
    """

    FIELDS = frozenset(
        {"match", "endpoint", "status", "times", "latency_s", "hang_s", "message", "gather"}
        | {"finish_reason", "block_reason", "bad_json", "schema_invalid", "image_format"}
        | {"html", "no_upload_status", "stream_pieces", "stream_pause_s"}
    )

    id: str
    match: str
    endpoint: str
    status: int | None
    times: int | None
    latency_s: float | None
    hang_s: float
    message: str | None
    shaping: Shaping
    gather: int | None = None
    html: bool = False
    no_upload_status: bool = False
    applied: int = 0
    arrived: int = 0
    gathered: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def from_body(cls, body: JSON) -> FaultRule:
        if unknown := set(body) - cls.FIELDS:  # a typo must not silently disable a test
            raise ApiError(400, f"unknown fault fields: {sorted(unknown)}")
        endpoint = body.get("endpoint") or "any"
        if endpoint not in FAULT_ENDPOINTS:
            raise ApiError(400, f"endpoint must be one of {list(FAULT_ENDPOINTS)}")
        status, times = body.get("status"), body.get("times")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise ApiError(400, "status must be an HTTP error code (400-599)")
        if times is not None and (not isinstance(times, int) or times < 0):
            raise ApiError(400, "times must be an integer >= 0, or null for ever")
        latency = as_float(body.get("latency_s"))
        hang = as_float(body.get("hang_s")) or 0.0
        if (latency is not None and latency < 0) or hang < 0:
            raise ApiError(400, "latency_s and hang_s must be >= 0")
        shaping = Shaping(
            finish_reason=cls._name(body, "finish_reason", FINISH_REASONS),
            block_reason=cls._name(body, "block_reason", BLOCK_REASONS),
            bad_json=bool(body.get("bad_json")),
            schema_invalid=bool(body.get("schema_invalid")),
            image_format=cls._name(body, "image_format", IMAGE_FORMATS),
            stream_pieces=cls._stream_pieces(body),
            stream_pause_s=cls._stream_pause(body),
        )
        gather = body.get("gather")
        if gather is not None and (not isinstance(gather, int) or gather < 1):
            raise ApiError(400, "gather must be an integer >= 1")
        if status is None and latency is None and not hang and not gather and shaping == Shaping():
            raise ApiError(400, "a fault needs status, latency_s, hang_s or an answer shaping")
        html, no_upload_status = bool(body.get("html")), bool(body.get("no_upload_status"))
        if (html or no_upload_status) and status is None:
            raise ApiError(400, "html and no_upload_status shape an error answer: give a status")
        return cls(
            id=secrets.token_hex(6),
            match=str(body.get("match") or ""),
            endpoint=endpoint,
            status=status,
            times=times,
            latency_s=latency,
            hang_s=hang,
            message=body.get("message"),
            shaping=shaping,
            gather=gather,
            html=html,
            no_upload_status=no_upload_status,
        )

    @staticmethod
    def _stream_pieces(body: JSON) -> int | None:
        pieces = body.get("stream_pieces")
        if pieces is not None and (not isinstance(pieces, int) or not 1 <= pieces <= 1000):
            raise ApiError(400, "stream_pieces must be an integer from 1 to 1000")
        return pieces

    @staticmethod
    def _stream_pause(body: JSON) -> float | None:
        pause = as_float(body.get("stream_pause_s"))
        if body.get("stream_pause_s") is not None and (pause is None or not 0 <= pause <= 10):
            raise ApiError(400, "stream_pause_s must be between 0 and 10")
        return pause

    @staticmethod
    def _name(body: JSON, key: str, allowed: tuple[str, ...]) -> str | None:
        """An optional enum-like field; a typo must fail here, not shape nothing."""
        value = body.get(key)
        if value is not None and value not in allowed:
            raise ApiError(400, f"{key} must be one of {list(allowed)}, not {value!r}")
        return value

    def wait_for_company(self, timeout_s: float) -> None:
        with self.gathered:
            self.arrived += 1
            self.gathered.notify_all()
            self.gathered.wait_for(lambda: self.arrived >= (self.gather or 0), timeout_s)

    def matches(self, kind: str, haystack: str) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        if self.no_upload_status and not haystack.startswith(CHUNK_HAYSTACK):
            return False  # only a chunk's answer carries X-Goog-Upload-Status
        return endpoint_matches(self.endpoint, kind) and self.match in haystack

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "match": self.match,
            "endpoint": self.endpoint,
            "status": self.status,
            "times": self.times,
            "latency_s": self.latency_s,
            "hang_s": self.hang_s,
            "message": self.message,
            "finish_reason": self.shaping.finish_reason,
            "block_reason": self.shaping.block_reason,
            "bad_json": self.shaping.bad_json,
            "schema_invalid": self.shaping.schema_invalid,
            "image_format": self.shaping.image_format,
            "stream_pieces": self.shaping.stream_pieces,
            "stream_pause_s": self.shaping.stream_pause_s,
            "gather": self.gather,
            "html": self.html,
            "no_upload_status": self.no_upload_status,
            "applied": self.applied,
        }
