"""Local stand-in for the Gemini REST API, for the local stack and the tests.

Why it exists: the functions talk to Gemini through the unmodified ``google-genai`` SDK. Pointing
the SDK's ``base_url`` here lets the whole pipeline run offline and without an API key, and lets
tests inject latency and errors. The wire facts it follows are in ``GEMINI_WIRE.md``. It is as
strict as the real Developer API where our worker could trip: unknown model ids answer 404,
image models refuse JSON mode, text models refuse image output, unsupported aspect ratios
answer 400, and a request deadline (``X-Server-Timeout``) ends in 504 DEADLINE_EXCEEDED.

Everything it makes up is marked ``[stand-in sample]`` so that nobody can mistake it for a real
model's answer. Answers are deterministic: the same request gives the same content.

API routes (under ``/v1beta/`` and ``/v1/``; header ``x-goog-api-key`` required, any value):

- ``POST /{ver}/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``;
  ``{model}`` must be in ``SERVED_MODELS`` (or config ``extra_models``), else 404 NOT_FOUND.
  Text answers report ``thoughtsTokenCount``; image models answer a thought text part and a
  thought PNG (``"thought": true``), then a text part and a JPEG (config ``image_format``);
  ``googleSearch`` answers carry redirect-link ``groundingChunks`` and ``searchEntryPoint``.
- ``POST /{ver}/models/{model}:countTokens`` -> ``{"totalTokens": N}``
- ``GET /{ver}/models?pageSize=&pageToken=`` and ``GET /{ver}/models/{model}`` (Model resource)
- ``POST /upload/{ver}/files`` (resumable start), then ``POST`` chunks to the upload URL
- ``GET /{ver}/files``, ``GET /{ver}/files/{id}``, ``DELETE /{ver}/files/{id}``

Vertex AI routes (under ``/v1/`` and ``/v1beta1/``; header ``Authorization: Bearer <token>``
required, any token; without one 401 UNAUTHENTICATED, an API key instead is refused too):

- ``POST /{ver}/projects/{project}/locations/{location}/publishers/google/models/{model}:``
  ``generateContent`` and ``:streamGenerateContent?alt=sse``, ``:countTokens``: the same
  served-model table, but a model Vertex AI does not serve at that location (every Gemini 3
  model at "global", the GA Flash ones at "us"/"eu" too) answers Vertex AI's 404. Prompts
  name PDFs as ``gs://bucket/object``: an object that does not exist in the Cloud Storage
  emulator (``--storage-emulator-host``, default ``$STORAGE_EMULATOR_HOST``) answers 400
  INVALID_ARGUMENT; File API URIs answer 400. Answers carry Vertex AI's ``createTime``,
  ``usageMetadata.trafficType`` and ``groundingChunks[].web.domain``.
- ``GET /v1beta1/publishers/google/models`` (``publisherModels``; v1 has no listing) and
  ``GET /{ver}/publishers/google/models/{model}`` (PublisherModel resource)

Each logged request says which API it spoke (``"backend": "developer"|"vertex"``).

Every API route honours the ``X-Server-Timeout`` header (seconds, as the SDK sends it): injected
latency longer than the deadline waits until the deadline, then answers 504.

Control routes (no key), for tests and the local stack:

- ``GET /_standin/health`` -> ``{"ok": true, "pid": ..., "started_at": ...}``
- ``GET|POST|DELETE /_standin/faults`` -> list the rules / add one (``{"id": ...}``) / clear them;
  the fields are documented on ``FaultRule`` (shapings: ``finish_reason``, ``block_reason``,
  ``bad_json``, ``schema_invalid``, ``image_format``)
- ``GET|POST /_standin/config`` -> ``{"latency_s", "file_processing_s", "image_size",
  "image_format" ("jpeg"|"png"), "extra_models" (ids served besides SERVED_MODELS),
  "storage_emulator_host", ...}`` (all fields: ``Config``)
- ``POST /_standin/reset`` -> faults, config, request log and files back to the start
- ``GET /_standin/requests?contains=&endpoint=`` -> ``{"requests": [...]}``
- ``GET /_standin/requests/max_concurrency?contains=&endpoint=`` -> peak number of overlapping
  requests, so that a test can prove concurrency without asserting timings

Run: ``python -m dev.gemini_standin --host 127.0.0.1 --port 8090 [--storage-emulator-host URL]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import os
import random
import re
import secrets
import signal
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, quote, urlsplit
from urllib.request import ProxyHandler, build_opener

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

# --------------------------------------------------------------------------------------------
# What the real Developer API serves (GEMINI_WIRE.md, "Current model ids")
# --------------------------------------------------------------------------------------------

TEXT_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
IMAGE_METHODS = ("generateContent", "countTokens", "batchGenerateContent")


@dataclass(frozen=True)
class ServedModel:
    """One model id the API serves, and what its Model resource says."""

    model_id: str
    display_name: str
    description: str
    image_output: bool = False
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    thinking: bool = True
    version: str = "001"

    def resource(self) -> JSON:
        """The Model resource as ``GET /{ver}/models/{id}`` answers it."""
        return {
            "name": f"models/{self.model_id}",
            "baseModelId": self.model_id,
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(
                IMAGE_METHODS if self.image_output else TEXT_METHODS
            ),
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2.0,
            "thinking": self.thinking,
        }


def _text_model(model_id: str, name: str, version: str = "001") -> ServedModel:
    return ServedModel(
        model_id, name, f"{name}, as served by the Gemini stand-in.", version=version
    )


def _image_model(model_id: str, name: str, note: str = "") -> ServedModel:
    description = f"{name} (image output), as served by the Gemini stand-in.{note}"
    return ServedModel(model_id, name, description, True, 65_536, 32_768)


# Ids the real API serves now, in its listing order (../shared/GEMINI_WIRE.md, "Current
# model ids"). Retired ids (gemini-2.0-*, gemini-2.5-*, *-image-preview, the shut-down
# gemini-3.1-flash-image) and the never-served gemini-3.1-flash are absent on purpose:
# asking for them answers 404, as the real API does.
SERVED_MODELS: dict[str, ServedModel] = {
    model.model_id: model
    for model in (
        _text_model("gemini-3.8-flash", "Gemini 3.8 Flash"),
        _text_model("gemini-3.7-flash", "Gemini 3.7 Flash"),
        _text_model("gemini-3.6-flash", "Gemini 3.6 Flash"),
        _text_model("gemini-3.5-flash", "Gemini 3.5 Flash"),
        _text_model("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite"),
        _text_model("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite"),
        _text_model("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", "3.1-pro-preview"),
        _image_model("gemini-nano-banana-2.1", "Nano Banana 2.1"),
        _image_model("gemini-3-pro-image", "Nano Banana Pro"),
        _image_model("gemini-3.1-flash-lite-image", "Nano Banana 2 Lite"),
    )
}
# Deprecated on the Developer API, its requests answered by the newer model (the answer's
# modelVersion says which); Vertex AI still serves it as itself.
ROUTED_MODELS = {"gemini-3.7-flash": "gemini-3.8-flash"}
MODEL_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")


def extra_model(model_id: str) -> ServedModel:
    """A test-only id from config ``extra_models``: image output if its id says image/banana."""
    if "image" in model_id or "banana" in model_id:
        return _image_model(model_id, f"Extra stand-in model {model_id}")
    return _text_model(model_id, f"Extra stand-in model {model_id}")


def model_not_found(model_id: str, api_version: str, method: str = GENERATE) -> str:
    """The real 404 message for an id that is not served (or was retired)."""
    return (
        f"models/{model_id} is not found for API version {api_version}, or is not supported "
        f"for {method}. Call ListModels to see the list of available models and their "
        "supported methods."
    )


# --------------------------------------------------------------------------------------------
# Vertex AI (docs/gemini.md, "Vertex AI"): the same model ids, project-scoped paths, OAuth
# bearer tokens instead of API keys, and Cloud Storage URIs instead of the File API
# --------------------------------------------------------------------------------------------

VERTEX_API_VERSIONS = ("v1", "v1beta1")  # v1: GA features; v1beta1: previews (and the listing)
# Where Vertex AI serves the Gemini 3 models: all at "global"; the GA Flash models also at
# the "us" and "eu" multi-regions; none of them in a single region (such as europe-west1).
VERTEX_GLOBAL = "global"
VERTEX_MULTI_REGIONS = ("us", "eu")
VERTEX_MULTI_REGION_MODELS = frozenset(
    {
        "gemini-3.8-flash",
        "gemini-3.7-flash",
        "gemini-3.6-flash",
        "gemini-3.5-flash",
        "gemini-3.5-flash-lite",
        "gemini-3.1-flash-lite",
    }
)
VERTEX_LOCATION_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,62}")
VERTEX_UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
VERTEX_NO_API_KEYS = (
    "API keys are not supported by this API. Expected OAuth2 access token or other "
    "authentication credentials that assert a principal. See "
    "https://cloud.google.com/docs/authentication"
)


def vertex_serves(model_id: str, location: str, extra: bool = False) -> bool:
    """Whether Vertex AI serves a (served) model id at a location; config extras anywhere."""
    if extra or location == VERTEX_GLOBAL:
        return True
    return location in VERTEX_MULTI_REGIONS and model_id in VERTEX_MULTI_REGION_MODELS


def vertex_model_not_found(project: str, location: str, model_id: str) -> str:
    """Vertex AI's 404 for a model it does not serve there (or at all)."""
    return (
        f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/"
        f"{model_id}` was not found or your project does not have access to it. Please ensure "
        "you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
    )


def vertex_resource(model: ServedModel) -> JSON:
    """The PublisherModel resource, as ``GET /{ver}/publishers/google/models/{id}`` answers it."""
    preview = "preview" in model.model_id
    return {
        "name": f"publishers/google/models/{model.model_id}",
        "versionId": model.version,
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "PUBLIC_PREVIEW" if preview else "GA",
        "versionState": "VERSION_STATE_STABLE",
    }


GCS_URI_PATTERN = re.compile(r"gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,221}[a-z0-9])/(?P<name>.+)")
# What Vertex AI answers (400) for a gs:// object it cannot read because it does not exist
# (no documented text was found; this follows the issue's wording), and (403) for one its
# service agent may not read (as reported in googleapis/js-genai#666).
GCS_NOT_FOUND = "Cannot fetch content from the provided URL: {uri}"
GCS_FORBIDDEN = (
    "Permission denied while accessing input file. Learn more about providing the appropriate "
    "credentials: https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/"
    "document-understanding"
)


# Names a fault rule may shape an answer with (a subset of the SDK's enums).
FINISH_REASONS = (
    "STOP",
    "MAX_TOKENS",
    "CONTINUATION",
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "IMAGE_OTHER",
    "NO_IMAGE",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
)
BLOCK_REASONS = ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY")
# Safety ratings as the real API sends them with a SAFETY block (one category over the line).
BLOCKED_SAFETY_RATINGS: tuple[JSON, ...] = (
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
)
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGE_FORMATS = ("jpeg", "png")
IMAGE_OUTPUT_TOKENS = 1290  # what one generated image costs as output tokens
GROUNDING_REDIRECT = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
SEARCH_SITES = ("standin-sample.example", "blog.standin-sample.example")

_LOG_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Schema -> sample value (OpenAPI subset as sent for ``response_schema``, and JSON Schema)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """Numeric bounds of a schema; ``*_open`` means exclusive."""

    low: float | None
    low_open: bool
    high: float | None
    high_open: bool

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def bounds_of(schema: Mapping[str, Any]) -> Bounds:
    """Read minimum/maximum and both spellings of exclusive bounds (draft 4 bool, 2020 number)."""
    low, high = as_float(get_any(schema, "minimum")), as_float(get_any(schema, "maximum"))
    low_open = high_open = False
    ex_min, ex_max = get_any(schema, "exclusiveMinimum"), get_any(schema, "exclusiveMaximum")
    if isinstance(ex_min, bool):
        low_open = ex_min
    elif (value := as_float(ex_min)) is not None and (low is None or value >= low):
        low, low_open = value, True
    if isinstance(ex_max, bool):
        high_open = ex_max
    elif (value := as_float(ex_max)) is not None and (high is None or value <= high):
        high, high_open = value, True
    return Bounds(low, low_open, high, high_open)


def schema_type(schema: Mapping[str, Any]) -> str | None:
    """Lower-case type name; handles upper-case OpenAPI types and JSON Schema type lists."""
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [str(k) for k in kind if str(k).lower() != "null"]
        kind = concrete[0] if concrete else "null"
    if isinstance(kind, str) and kind and kind.upper() != "TYPE_UNSPECIFIED":
        return kind.lower()
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


class SampleMaker:
    """Builds a value that satisfies a response schema, deterministically from a request digest.

    Every property (required or not) is filled so that consumers see a complete document.
    Bounded numbers land in the lower third of their range, so that shares of a whole (e.g.
    three ``budget_share`` values in 0..1) still add up to at most 1.
    """

    def __init__(self, root: JSON, digest: bytes, language: str | None) -> None:
        self._root = root
        # Seeded, reproducible sample values; nothing here is a secret.
        self._rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311
        self._prefix = f"[stand-in sample, {language}]" if language else MARKER
        self._token = digest.hex()[:6]

    def resolve(self, schema: JSON) -> JSON:
        """``schema`` with its ``$ref`` chain followed (against this maker's root)."""
        return self._resolve(schema)

    def make(self, schema: Any, label: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict):  # ``true`` or a missing schema: anything goes
            return self._string({}, label)
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            values = [v for v in enum if v is not None] or enum
            return values[self._rng.randrange(len(values))]
        for key in ("anyOf", "oneOf"):
            options = get_any(schema, key)
            if isinstance(options, list) and options:
                return self.make(self._choose(options), label, depth)
        all_of = get_any(schema, "allOf")
        if isinstance(all_of, list) and all_of:
            schema = self._merge(schema, all_of)
        kind = schema_type(schema)
        if kind == "object":
            return self._object(schema, label, depth)
        if kind == "array":
            return self._array(schema, label, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, label)

    # -- references and combinators ----------------------------------------------------------

    def _resolve(self, schema: JSON) -> JSON:
        """Follow ``$ref`` chains (JSON Schema); sibling keywords override the target's."""
        for _ in range(32):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self._lookup(ref), **siblings}
        return schema

    def _lookup(self, ref: str) -> JSON:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, dict) else {}

    def _choose(self, options: list[Any]) -> Any:
        """Prefer the first non-null branch: a filled value is more useful than ``null``."""
        for option in options:
            if isinstance(option, dict) and schema_type(self._resolve(option)) != "null":
                return option
        return options[0]

    def _merge(self, schema: JSON, parts: list[Any]) -> JSON:
        merged = {k: v for k, v in schema.items() if k not in ("allOf", "all_of")}
        for part in parts:
            if not isinstance(part, dict):
                continue
            for key, value in self._resolve(part).items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    # -- per type ------------------------------------------------------------------------------

    def _object(self, schema: JSON, label: str, depth: int) -> JSON:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        ordering = get_any(schema, "propertyOrdering") or []
        names = [n for n in ordering if n in properties]
        names += [n for n in properties if n not in names]
        required = set(schema.get("required") or [])
        too_deep = depth >= MAX_SCHEMA_DEPTH  # recursive schemas: stop at required fields
        result: JSON = {}
        for name in names:
            if too_deep and name not in required:
                continue
            child = f"{label}.{name}" if label else name
            result[name] = self.make(properties[name], child, depth + 1)
        extra = get_any(schema, "additionalProperties")
        if not properties and isinstance(extra, dict) and not too_deep:
            result["sample_key"] = self.make(extra, f"{label}.sample_key", depth + 1)
        return result

    def _array(self, schema: JSON, label: str, depth: int) -> list[Any]:
        min_items = int(as_float(get_any(schema, "minItems")) or 0)
        max_items = as_float(get_any(schema, "maxItems"))
        count = max(min_items, self._rng.randint(2, 3))
        if max_items is not None:
            count = min(count, int(max_items))
        if depth >= MAX_SCHEMA_DEPTH:
            count = min_items
        prefix = get_any(schema, "prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        values = [self.make(s, f"{label}[{i}]", depth + 1) for i, s in enumerate(prefix)]
        if items is not False:
            for index in range(len(values), count):
                values.append(self.make(items or {}, f"{label}[{index}]", depth + 1))
        return values

    def _integer(self, schema: JSON) -> int:
        bounds = bounds_of(schema)
        low = high = None
        if bounds.low is not None:
            low = math.floor(bounds.low) + 1 if bounds.low_open else math.ceil(bounds.low)
        if bounds.high is not None:
            high = math.ceil(bounds.high) - 1 if bounds.high_open else math.floor(bounds.high)
        if low is not None and high is not None:
            return low + self._rng.randint(0, max(0, min(high - low, 23)))
        if low is not None:
            return low + self._rng.randint(0, 11)
        if high is not None:
            return high - self._rng.randint(0, 11)
        return self._rng.randint(1, 24)

    def _number(self, schema: JSON) -> float:
        bounds, rng = bounds_of(schema), self._rng
        if bounds.low is not None and bounds.high is not None:
            span = bounds.high - bounds.low
            candidate = round(bounds.low + span * rng.uniform(0.05, 0.33), 2)
            fallback = bounds.low + span / 2
        elif bounds.low is not None:
            candidate = round(bounds.low + rng.uniform(100, 10_000), 2)
            fallback = bounds.low + 1
        elif bounds.high is not None:
            candidate = round(bounds.high - rng.uniform(1, 100), 2)
            fallback = bounds.high - 1
        else:
            candidate = fallback = round(rng.uniform(1, 1000), 2)
        return candidate if bounds.admits(candidate) else fallback

    def _string(self, schema: JSON, label: str) -> str:
        text = self._formatted(schema.get("format"), label)
        if text is None:
            text = f"{self._prefix} {label or 'text'} {self._token}"
        min_length = int(as_float(get_any(schema, "minLength")) or 0)
        max_length = as_float(get_any(schema, "maxLength"))
        while len(text) < min_length:
            text += " sample"
        return text[: int(max_length)] if max_length is not None else text

    def _formatted(self, fmt: Any, label: str) -> str | None:
        """Values for string formats that a marked sentence would not satisfy."""
        day = 1_767_225_600 + self._rng.randrange(365) * 86_400  # a day in 2026
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "item"
        samples = {
            "date-time": rfc3339(day),
            "date": rfc3339(day)[:10],
            "time": "12:00:00Z",
            "uri": f"https://standin.example/sample/{slug}",
            "url": f"https://standin.example/sample/{slug}",
            "email": f"{slug}@standin.example",
            "uuid": f"{self._rng.getrandbits(128):032x}",
        }
        if fmt == "uuid":
            raw = samples["uuid"]
            return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:]}"
        return samples.get(fmt) if isinstance(fmt, str) else None


# --------------------------------------------------------------------------------------------
# Images (real, valid, tiny) from the prompt digest: PNG and baseline JPEG, pure Python
# --------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _palette(digest: bytes) -> tuple[bytes, bytes, bytes]:
    """Base colour, a darker shade of it, and its complement as accent (RGB triples)."""
    base = bytes(digest[:3])
    return base, bytes(c // 2 for c in base), bytes(255 - c for c in base)


def make_png(width: int, height: int, digest: bytes) -> bytes:
    """A ``width``×``height`` RGB PNG: a checkerboard in a digest colour with a diagonal.

    The pattern is visible on purpose, so a person looking at the preview sees a placeholder.
    """
    base, shade, accent = _palette(digest)
    cell = max(1, max(width, height) // 8)
    stripe = max(1, max(width, height) // 32)
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type "None" for every scanline
        for x in range(width):
            if abs(x * height - y * width) <= stripe * max(width, height):
                raw += accent
            else:
                raw += base if (x // cell + y // cell) % 2 == 0 else shade
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _png_chunk(b"IEND", b"")
    )


def _std_ac_values(head: bytes) -> bytes:
    """An Annex K AC table's symbols: an irregular head, then every other symbol in order."""
    symbols = {0x00, 0xF0} | {(run << 4) | size for run in range(16) for size in range(1, 11)}
    return head + bytes(sorted(symbols - set(head)))


# ITU-T T.81 Annex K.3 (the tables libjpeg writes): code counts per length 1..16, symbols.
JPEG_DC_LUMA = (bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]), bytes(range(12)))
JPEG_DC_CHROMA = (bytes([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]), bytes(range(12)))
JPEG_AC_LUMA = (
    bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]),
    _std_ac_values(
        bytes.fromhex(
            "01 02 03 00 04 11 05 12 21 31 41 06 13 51 61 07 22 71 14 32 81 91 a1 08"
            "23 42 b1 c1 15 52 d1 f0 24 33 62 72 82"
        )
    ),
)
JPEG_AC_CHROMA = (
    bytes([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]),
    _std_ac_values(
        bytes.fromhex(
            "00 01 02 03 11 04 05 21 31 06 12 41 51 07 61 71 13 22 32 81 08 14 42 91"
            "a1 b1 c1 09 23 33 52 f0 15 62 72 d1 0a 16 24 34 e1 25 f1"
        )
    ),
)
JPEG_QUANT = 8  # a flat table; with 8 the quantised DC of a flat block is its level (-128..127)
JPEG_EOB = 0x00


def huffman_codes(table: tuple[bytes, bytes]) -> dict[int, tuple[int, int]]:
    """Symbol -> (code, length) for a DHT table (T.81 Annex C)."""
    counts, symbols = table
    codes: dict[int, tuple[int, int]] = {}
    code = index = 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return codes


class _BitWriter:
    """MSB-first bit packing with JPEG byte stuffing (0xFF is followed by 0x00)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._acc = 0
        self._bits = 0

    def write(self, value: int, length: int) -> None:
        self._acc = (self._acc << length) | (value & ((1 << length) - 1))
        self._bits += length
        while self._bits >= 8:
            self._bits -= 8
            byte = (self._acc >> self._bits) & 0xFF
            self.data.append(byte)
            if byte == 0xFF:
                self.data.append(0x00)
        self._acc &= (1 << self._bits) - 1

    def flush(self) -> bytes:
        if self._bits:
            self.write((1 << (8 - self._bits)) - 1, 8 - self._bits)  # pad with 1-bits
        return bytes(self.data)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _ycbcr(rgb: bytes) -> tuple[int, int, int]:
    """JFIF RGB -> YCbCr, each level-shifted to -128..127 (the quantised DC of a flat block)."""
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    luma, blue, red = (max(-128, min(127, round(v) - 128)) for v in (y, cb, cr))
    return luma, blue, red


def make_jpeg(width: int, height: int, digest: bytes) -> bytes:
    """A ``width``×``height`` baseline JPEG (JFIF, YCbCr 4:4:4, standard Huffman tables).

    Every 8×8 block is flat (DC only, all AC zero: one EOB), in the same checkerboard and
    diagonal as ``make_png``, block by block. Decoders see an ordinary camera-style JPEG.
    """
    base, shade, accent = _palette(digest)
    blocks_x, blocks_y = math.ceil(width / 8), math.ceil(height / 8)
    cell = max(1, max(blocks_x, blocks_y) // 4)
    tables = [
        (huffman_codes(JPEG_DC_LUMA), huffman_codes(JPEG_AC_LUMA)),
        (huffman_codes(JPEG_DC_CHROMA), huffman_codes(JPEG_AC_CHROMA)),
        (huffman_codes(JPEG_DC_CHROMA), huffman_codes(JPEG_AC_CHROMA)),
    ]
    writer = _BitWriter()
    previous = [0, 0, 0]
    for by in range(blocks_y):
        for bx in range(blocks_x):
            if abs(bx * blocks_y - by * blocks_x) < max(blocks_x, blocks_y):
                colour = accent
            else:
                colour = base if (bx // cell + by // cell) % 2 == 0 else shade
            for component, level in enumerate(_ycbcr(colour)):
                dc_codes, ac_codes = tables[component]
                diff = level - previous[component]
                previous[component] = level
                size = abs(diff).bit_length()
                writer.write(*dc_codes[size])
                if size:
                    writer.write(diff if diff >= 0 else diff + (1 << size) - 1, size)
                writer.write(*ac_codes[JPEG_EOB])
    jfif = b"JFIF\x00\x01\x01\x00" + struct.pack(">HHBB", 1, 1, 0, 0)
    quant = bytes([0]) + bytes([JPEG_QUANT] * 64)  # table 0, 8-bit precision
    frame = struct.pack(">BHHB", 8, height, width, 3)
    frame += b"".join(bytes([cid, 0x11, 0]) for cid in (1, 2, 3))
    huffman = b"".join(
        bytes([kind << 4 | slot]) + counts + symbols
        for kind, slot, (counts, symbols) in (
            (0, 0, JPEG_DC_LUMA),
            (1, 0, JPEG_AC_LUMA),
            (0, 1, JPEG_DC_CHROMA),
            (1, 1, JPEG_AC_CHROMA),
        )
    )
    scan = bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
    return (
        b"\xff\xd8"
        + _segment(0xE0, jfif)
        + _segment(0xDB, quant)
        + _segment(0xC0, frame)
        + _segment(0xC4, huffman)
        + _segment(0xDA, scan)
        + writer.flush()
        + b"\xff\xd9"
    )


def image_dimensions(aspect_ratio: str | None, longer_side: int) -> tuple[int, int]:
    """Width and height for an ``imageConfig.aspectRatio``; the longer side is ``longer_side``."""
    across, down = (int(n) for n in (aspect_ratio or "1:1").split(":"))
    if across >= down:
        return longer_side, max(1, round(longer_side * down / across))
    return max(1, round(longer_side * across / down)), longer_side


# --------------------------------------------------------------------------------------------
# generateContent: reading the request, building the answer
# --------------------------------------------------------------------------------------------

URL_PATTERN = re.compile(r"https?://[^\s<>\"'`\])}]+")
LANGUAGE_PATTERN = re.compile(
    r"\blanguage\s*[:=]\s*[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\b", re.IGNORECASE
)
FILE_ID_PATTERN = re.compile(r"(?:^|/)files/([^/?#]+)")


def request_parts(body: JSON) -> list[JSON]:
    """All parts of ``contents`` then of ``systemInstruction``, in order."""
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    blocks = list(contents) if isinstance(contents, list) else []
    system = get_any(body, "systemInstruction")
    if isinstance(system, dict):
        blocks.append(system)
    parts: list[JSON] = []
    for block in blocks:
        if isinstance(block, dict) and isinstance(block.get("parts"), list):
            parts.extend(p for p in block["parts"] if isinstance(p, dict))
    return parts


def find_urls(text: str) -> list[str]:
    """http(s) URLs in the prompt, without trailing punctuation, first occurrence order."""
    urls = [u.rstrip(".,;:!?") for u in URL_PATTERN.findall(text)]
    return list(dict.fromkeys(urls))


@dataclass(frozen=True)
class GenerateCall:
    """What the stand-in needs to know about one generateContent request."""

    model: str
    stream: bool
    text: str
    file_uris: list[str]
    has_file_part: bool
    tools: list[str]
    modalities: list[str]
    schema: JSON | None
    mime_type: str | None
    aspect_ratio: str | None
    include_thoughts: bool
    image_model: bool
    digest: bytes
    routed_to: str | None = None  # the model that answers a deprecated id (ROUTED_MODELS)

    @property
    def answering_model(self) -> str:
        return self.routed_to or self.model

    @classmethod
    def parse(cls, model: str, stream: bool, body: JSON, image_model: bool) -> GenerateCall:
        if not isinstance(body.get("contents"), list | dict) or not body.get("contents"):
            raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
        parts = request_parts(body)
        texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
        file_uris = [
            str(get_any(data, "fileUri") or "")
            for p in parts
            if isinstance(data := get_any(p, "fileData"), dict)
        ]
        has_inline = any(isinstance(get_any(p, "inlineData"), dict) for p in parts)
        config = get_any(body, "generationConfig")
        config = config if isinstance(config, dict) else {}
        schema = get_any(config, "responseJsonSchema") or get_any(config, "responseSchema")
        modalities = get_any(config, "responseModalities") or []
        image_config = get_any(config, "imageConfig")
        ratio = get_any(image_config, "aspectRatio") if isinstance(image_config, dict) else None
        thinking = get_any(config, "thinkingConfig")
        include = get_any(thinking, "includeThoughts") if isinstance(thinking, dict) else None
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        return cls(
            model=model,
            stream=stream,
            text="\n".join(texts),
            file_uris=file_uris,
            has_file_part=bool(file_uris) or has_inline,
            tools=[snake(k) for t in body.get("tools") or [] if isinstance(t, dict) for k in t],
            modalities=[str(m).upper() for m in modalities if isinstance(m, str)],
            schema=schema if isinstance(schema, dict) else None,
            mime_type=get_any(config, "responseMimeType"),
            aspect_ratio=None if ratio is None else str(ratio),
            include_thoughts=include is True,
            image_model=image_model,
            digest=hashlib.sha256(f"{model}\n{canonical}".encode()).digest(),
        )

    @property
    def image_output(self) -> bool:
        """Image models answer an image unless asked for text only."""
        return self.image_model and (not self.modalities or "IMAGE" in self.modalities)

    @property
    def kind(self) -> str:
        if self.stream:
            return STREAM
        return IMAGE if self.image_output or "IMAGE" in self.modalities else GENERATE

    @property
    def language(self) -> str | None:
        found = LANGUAGE_PATTERN.search(self.text)
        return found.group(1) if found else None


def check_call(call: GenerateCall, model: ServedModel) -> None:
    """400 for what the real API refuses: JSON mode on image models, images from text models."""
    structured = call.schema is not None or (call.mime_type or "text/plain") != "text/plain"
    if model.image_output and structured:
        raise ApiError(400, f"JSON mode is not enabled for models/{model.model_id}")
    if not model.image_output and "IMAGE" in call.modalities:
        raise ApiError(400, "Model does not support the requested response modalities: image")
    if call.aspect_ratio is not None and call.aspect_ratio not in ASPECT_RATIOS:
        raise ApiError(
            400,
            f"Unsupported aspect ratio: {call.aspect_ratio}. "
            f"Supported values are {', '.join(ASPECT_RATIOS)}.",
        )


@dataclass(frozen=True)
class Shaping:
    """How a fault rule bends an otherwise normal answer (finish reason, block, broken JSON)."""

    finish_reason: str | None = None
    block_reason: str | None = None
    bad_json: bool = False
    schema_invalid: bool = False
    image_format: str | None = None

    @property
    def has_content(self) -> bool:
        """Blocked output (any finish but STOP and MAX_TOKENS) comes without content."""
        return self.finish_reason in (None, "STOP", "MAX_TOKENS", "CONTINUATION")


def violate_schema(value: Any, schema: JSON) -> Any:
    """Valid JSON that breaks the schema: required fields left out, else a wrong type."""
    required = schema.get("required")
    if isinstance(value, dict) and isinstance(required, list) and required:
        return {k: v for k, v in value.items() if k not in required}
    return [] if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------------
# A hand-written sample strategy: what the offline demo shows instead of labelled filler
# --------------------------------------------------------------------------------------------

# The fields that make a response schema the worker's MarketingStrategy (shared/models.py).
STRATEGY_REQUIRED = frozenset({"strategy_name", "target_audience", "required_budget", "steps"})
BRIEF_PATTERN = re.compile(r"<brief>\s*(.*?)\s*</brief>", re.DOTALL)
PLACE_PATTERN = re.compile(
    r"\b(?:in|at|from|în|din|la)\s+"
    r"([A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+(?:-[A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+)*"
    r"(?:\s+[A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+)?)"
)
BUDGET_PATTERN = re.compile(
    r"(?:€\s*(\d[\d.,\s]*\d|\d)|(\d[\d.,\s]*\d|\d)\s*(?:eur|euro|€))", re.IGNORECASE
)
DURATION_PATTERN = re.compile(
    r"\b(\d{1,2}|[a-zăâîșşțţ]+)\s+(weeks?|săptămâni|saptamani|months?|luni|lună|luna)\b",
    re.IGNORECASE,
)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10,
    "twelve": 12, "o": 1, "una": 1, "două": 2, "doua": 2, "trei": 3, "patru": 4, "cinci": 5,
    "șase": 6, "sase": 6, "opt": 8, "zece": 10,
}  # fmt: skip


@dataclass(frozen=True)
class BusinessKind:
    """A kind of business, recognised by word stems of the brief, in both languages."""

    stems: tuple[str, ...]
    noun: str  # English
    noun_ro: str  # Romanian, with its article
    feminine_ro: bool  # for the Romanian participles that follow the noun
    audience: str
    audience_ro: str
    picture: str  # what the preview image shows
    picture_ro: str


BUSINESS_KINDS = (
    BusinessKind(
        ("coffee", "café", "cafe", "cafene", "cafea", "espresso"),
        "coffee shop",
        "cafeneaua",
        True,
        "students and young professionals who want a place to meet, read and work",
        "studenți și tineri profesioniști care caută un loc de întâlnire, lectură și lucru",
        "a warm, sunlit coffee shop seen from the street, people talking over cups at a long "
        "wooden table",
        "o cafenea caldă, luminată de soare, văzută din stradă, cu oameni care stau de vorbă la "
        "o masă lungă de lemn",
    ),
    BusinessKind(
        ("bakery", "bread", "pastr", "brutări", "pâine", "paine", "patiser", "cofetări"),
        "bakery",
        "brutăria",
        True,
        "young families and neighbours who buy fresh bread several times a week",
        "familii tinere și vecini care cumpără pâine proaspătă de câteva ori pe săptămână",
        "a baker's counter at dawn, fresh loaves on wooden shelves, flour in the light",
        "tejgheaua unei brutării în zori, pâini proaspete pe rafturi de lemn, făină în lumină",
    ),
    BusinessKind(
        ("book", "librări", "carte", "cărți", "carti"),
        "bookshop",
        "librăria",
        True,
        "readers aged 20 to 45 who like recommendations, readings and quiet places",
        "cititori între 20 și 45 de ani care apreciază recomandări, lecturi și locuri liniștite",
        "tall shelves of books, a reading corner with an armchair and a lamp, evening light",
        "rafturi înalte cu cărți, un colț de lectură cu fotoliu și lampă, lumină de seară",
    ),
    BusinessKind(
        ("honey", "miere", "jam", "cheese", "brânz", "branz", "wine", "farm", "ferm"),
        "local food brand",
        "brandul local",
        False,
        "families and food lovers who pay more for local, traceable products",
        "familii și iubitori de mâncare bună care plătesc mai mult pentru produse locale",
        "jars and produce on a rustic table in a meadow, soft morning light",
        "borcane și produse pe o masă rustică într-o pajiște, lumină blândă de dimineață",
    ),
    BusinessKind(
        ("restaurant", "bistro", "pizz", "burger", "mâncare", "mancare", "bucătări"),
        "restaurant",
        "restaurantul",
        False,
        "couples, friends and office teams looking for a dependable place to eat out",
        "cupluri, grupuri de prieteni și echipe de birou care caută un loc bun de mâncat în oraș",
        "a lively dining room at dusk, shared plates on the tables, warm lights",
        "o sală de restaurant plină la apus, farfurii împărțite pe mese, lumini calde",
    ),
    BusinessKind(
        ("flower", "flori", "florări"),
        "flower shop",
        "florăria",
        True,
        "people buying gifts for birthdays, anniversaries and holidays such as 8 March",
        "oameni care cumpără cadouri de zile de naștere, aniversări și sărbători precum 8 Martie",
        "buckets of fresh flowers on a pavement in spring, a florist tying a bouquet",
        "găleți cu flori proaspete pe trotuar primăvara, o florăreasă legând un buchet",
    ),
    BusinessKind(
        ("gym", "fitness", "yoga", "pilates"),
        "fitness studio",
        "sala de fitness",
        True,
        "working adults aged 25 to 45 who want a routine close to home or work",
        "adulți între 25 și 45 de ani care vor o rutină aproape de casă sau de birou",
        "a bright studio with people mid-workout, large windows, plants, morning energy",
        "o sală luminoasă cu oameni în mijlocul antrenamentului, ferestre mari, plante",
    ),
    BusinessKind(
        ("app", "software", "saas", "platform", "aplicați", "aplicati"),
        "app",
        "aplicația",
        True,
        "small-business owners and team leads who try new tools on their phone first",
        "proprietari de firme mici și șefi de echipă care încearcă unelte noi întâi pe telefon",
        "a hand holding a phone over a busy desk, colourful abstract shapes around it",
        "o mână care ține un telefon deasupra unui birou aglomerat, forme abstracte colorate",
    ),
    BusinessKind(
        ("hotel", "pensiun", "guesthouse", "travel", "turism", "tourism", "caban"),
        "guesthouse",
        "pensiunea",
        True,
        "city couples and families planning weekend breaks within three hours' drive",
        "cupluri și familii de la oraș care plănuiesc weekenduri la cel mult trei ore de mers",
        "a wooden guesthouse terrace at sunset with mountains behind, two chairs and a blanket",
        "terasa de lemn a unei pensiuni la apus, cu munți în spate, două scaune și o pătură",
    ),
    BusinessKind(
        ("fashion", "clothing", "modă", "haine", "boutique", "shoe", "pantofi"),
        "boutique",
        "magazinul",
        False,
        "style-conscious shoppers aged 20 to 40 who discover brands on social media",
        "cumpărători atenți la stil, între 20 și 40 de ani, care descoperă branduri pe rețele",
        "a bright shop window with clothes on simple rails, a street reflected in the glass",
        "o vitrină luminoasă cu haine pe umerașe simple, strada reflectată în geam",
    ),
)
GENERIC_KIND = BusinessKind(
    (),
    "business",
    "afacerea",
    True,
    "local customers aged 25 to 45 who look for a dependable, friendly place nearby",
    "clienți locali între 25 și 45 de ani care caută un loc de încredere, aproape de ei",
    "a welcoming shopfront on a busy street in warm afternoon light, people walking in",
    "o intrare primitoare într-o stradă animată, în lumina caldă a după-amiezii",
)
SUBJECT_STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "at", "for", "with", "and", "to", "near", "on", "our", "my",
    "o", "un", "de", "din", "în", "la", "cu", "pentru", "și", "lângă", "pe", "al", "ale",
})  # fmt: skip
# Capitalised words after "in" that are not places.
NOT_PLACES = frozenset({
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Ianuarie", "Februarie", "Martie", "Aprilie", "Mai",
    "Iunie", "Iulie", "Septembrie", "Octombrie", "Noiembrie", "Decembrie", "English",
    "Romanian", "Română", "Engleză",
})  # fmt: skip
BUDGET_CHOICES = (4_800, 6_500, 8_200, 9_600, 12_500, 15_000, 18_400, 24_000)
SHARE_CHOICES = ((0.35, 0.25, 0.25, 0.15), (0.4, 0.25, 0.2, 0.15), (0.3, 0.3, 0.25, 0.15))
SAMPLE_CHANNELS = {
    "en": (
        ("Instagram and TikTok", "Short videos and photos reach the audience where it spends "
         "its evenings; a small paid boost targets people within 3 km."),
        ("Google Search and Maps", "People nearby search before they visit: a complete profile "
         "and search ads catch them at the moment of choice."),
        ("Local partnerships and events", "Neighbouring businesses, universities and community "
         "groups lend trust and bring the first crowds."),
        ("Email and loyalty programme", "The cheapest visit is the second one: a monthly "
         "newsletter and a stamp card bring people back."),
    ),
    "ro": (
        ("Instagram și TikTok", "Clipurile scurte și fotografiile ajung la public acolo unde "
         "își petrece serile; o promovare plătită mică țintește oamenii pe o rază de 3 km."),
        ("Google Search și Maps", "Oamenii din zonă caută înainte să vină: un profil complet și "
         "reclamele în căutare îi prind în momentul alegerii."),
        ("Parteneriate locale și evenimente", "Afacerile vecine, universitățile și comunitățile "
         "locale aduc încredere și primii clienți."),
        ("Email și program de fidelitate", "Cea mai ieftină vizită este a doua: un newsletter "
         "lunar și un card de fidelitate îi aduc pe oameni înapoi."),
    ),
}  # fmt: skip


def is_strategy_schema(schema: JSON) -> bool:
    """Is this response schema the worker's strategy (by its required fields)?"""
    required = schema.get("required")
    return isinstance(required, list) and set(required) >= STRATEGY_REQUIRED


def brief_of(call: GenerateCall) -> str:
    found = BRIEF_PATTERN.search(call.text)
    text = found.group(1) if found else LANGUAGE_PATTERN.sub(" ", call.text)
    # Test markers and other ids (letters and digits mixed, long) say nothing about the subject.
    words = [w for w in text.split() if not (len(w) >= 8 and re.search(r"\d", w) and
                                              re.search(r"[^\W\d_]", w))]  # fmt: skip
    return " ".join(words)


def _kind_of(brief: str) -> BusinessKind:
    lowered = brief.lower()
    for kind in BUSINESS_KINDS:
        if any(re.search(rf"\b{re.escape(stem)}", lowered) for stem in kind.stems):
            return kind
    return GENERIC_KIND


def _subject_of(brief: str) -> str:
    """The first words of the brief's first clause (for a business of no known kind)."""
    clause = re.split(r"[.,;:!?\n()]", brief.strip(), maxsplit=1)[0]
    words = clause.split()[:6]
    while words and words[-1].lower() in SUBJECT_STOPWORDS:
        words.pop()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _place_in(brief: str) -> str | None:
    for match in PLACE_PATTERN.finditer(brief):
        if match.group(1).split()[0] not in NOT_PLACES:
            return match.group(1)
    return None


def _budget_in(brief: str) -> int | None:
    for match in BUDGET_PATTERN.finditer(brief):
        digits = re.sub(r"\D", "", match.group(1) or match.group(2) or "")
        if digits and 300 <= int(digits) <= 5_000_000:
            return int(digits)
    return None


def _weeks_in(brief: str) -> int | None:
    for match in DURATION_PATTERN.finditer(brief):
        raw, unit = match.group(1).lower(), match.group(2).lower()
        count = int(raw) if raw.isdigit() else NUMBER_WORDS.get(raw)
        if not count:
            continue
        weeks = count if unit.startswith(("week", "săpt", "sapt")) else round(count * 52 / 12)
        if 2 <= weeks <= 52:
            return weeks
    return None


def _thousands(amount: float, language: str) -> str:
    text = f"{round(amount):,}"
    return text.replace(",", ".") if language == "ro" else text


def strategy_sample(call: GenerateCall, generic: JSON, schema: JSON) -> JSON:
    """A realistic, hand-written strategy in the requested language (English unless it is
    Romanian), shaped by the brief: its kind of business, its place, its budget and length.

    Still marked as a sample (the ``[stand-in sample, xx]`` prefix of the name and the
    summary) and deterministic (choices from the request digest). Fields of the schema that
    this sample does not know keep the generic filler; fields the schema lacks are left out.
    """
    requested = call.language
    language = "ro" if (requested or "").lower().startswith("ro") else "en"
    prefix = f"[stand-in sample, {requested}]" if requested else MARKER
    brief = brief_of(call)
    token = call.digest.hex()[:6]
    rng = random.Random(int.from_bytes(call.digest[8:16], "big"))  # noqa: S311 - not a secret
    kind = _kind_of(brief)
    place = _place_in(brief)
    budget = _budget_in(brief) or rng.choice(BUDGET_CHOICES)
    weeks = _weeks_in(brief) or 12
    shares = rng.choice(SHARE_CHOICES)
    visitors = max(300, round(budget / 8 / 50) * 50)
    signups = max(100, round(visitors * 0.4 / 10) * 10)
    if language == "ro":
        where = f" din {place}" if place else ""
        noun = kind.noun_ro[0].upper() + kind.noun_ro[1:]
        known_as = "cunoscută" if kind.feminine_ro else "cunoscut"
        subject = _subject_of(brief) if kind is GENERIC_KIND else ""
        title = f"„{subject}”" if subject else f"{noun}{where}"
        name = f"{title}: {weeks} săptămâni până la clienți fideli"
        audience = kind.audience_ro[0].upper() + kind.audience_ro[1:]
        audience += f", din {place} și împrejurimi" if place else ""
        summary = (
            f"Un plan de {weeks} săptămâni prin care {kind.noun_ro}{where} devine {known_as} "
            f"publicului potrivit, iar primele vizite se transformă în obiceiuri: o lansare "
            f"puternică, prezență săptămânală pe rețelele sociale și în căutările locale, și "
            f"motive clare de a reveni. Exemplu scris de mână de stand-in-ul local Gemini, nu "
            f"răspunsul unui model real."
        )
        steps = [
            "Înainte de lansare: clarificați oferta și povestea în trei fotografii și o singură "
            "propoziție pe care o repetă toată echipa.",
            "Puneți la punct bazele: profilul Google Business cu program și fotografii, un "
            "profil de Instagram cu primele nouă postări și o pagină simplă cu adresa și un "
            "formular de abonare.",
            "Săptămâna lansării: un eveniment de deschidere cu o ofertă mică pentru primii 200 "
            "de vizitatori, anunțat cu două săptămâni înainte, online și prin partenerii locali.",
            "În fiecare săptămână după lansare: două clipuri scurte (din culise, clienți fideli, "
            "produse noi), promovate cu un buget mic către oamenii din zonă.",
            "Din a doua lună: programul de fidelitate (a șasea vizită gratuită) și un newsletter "
            "lunar pentru toți cei abonați.",
            f"În ultimele două săptămâni din cele {weeks}: comparați rezultatele cu indicatorii, "
            f"renunțați la canalul cel mai slab, dublați-l pe cel mai bun și planificați "
            f"trimestrul următor.",
        ]
        messages = [
            f"{noun}{where}: aproape de tine, în fiecare zi.",
            "Calitate pe care o simți de la prima vizită.",
            "A șasea vizită e din partea casei.",
        ]
        kpis = [
            f"{_thousands(visitors, 'ro')} de vizitatori în prima lună",
            f"{_thousands(signups, 'ro')} de abonați la newsletter până în săptămâna {weeks}",
            "Nota medie 4,6 sau mai mult pe Google, din cel puțin 100 de recenzii",
            "30% dintre clienți revin în cel mult o lună",
        ]
        picture = kind.picture_ro[0].upper() + kind.picture_ro[1:] + "; fără text și fără logo."
    else:
        at = f" in {place}" if place else ""
        noun = kind.noun
        title = " ".join(w[:1].upper() + w[1:] for w in noun.split())
        subject = _subject_of(brief) if kind is GENERIC_KIND else ""
        if subject:
            title = f"“{subject}”"
        elif place:
            title = f"{place} {title}"
        name = f"{title}: {weeks} Weeks to Loyal Customers"
        audience = kind.audience[0].upper() + kind.audience[1:]
        audience += f", in and around {place}" if place else ""
        summary = (
            f"A {weeks}-week plan to make the {noun}{at} known to the right people and turn "
            f"first visits into habits: a strong opening, a weekly presence on social media "
            f"and in local search, and clear reasons to come back. Hand-written sample from "
            f"the local Gemini stand-in, not a real model's answer."
        )
        steps = [
            "Before the launch: sharpen the offer and the story into three photos and one "
            "sentence that everyone on the team repeats.",
            "Set up the basics: a Google Business Profile with hours and photos, an Instagram "
            "profile with its first nine posts, and a simple page with the address and a "
            "sign-up form.",
            "Launch week: an opening event with a small offer for the first 200 visitors, "
            "announced two weeks ahead online and through local partners.",
            "Every week after the launch: two short videos (behind the scenes, regulars, new "
            "products), boosted with a small budget to people nearby.",
            "From the second month: the loyalty programme (the sixth visit free) and a monthly "
            "newsletter to everyone who signed up.",
            f"In the last two of the {weeks} weeks: compare the results with the KPIs, drop the "
            f"weakest channel, double the best one, and plan the next quarter.",
        ]
        messages = [
            f"Your everyday {noun}{at}.",
            "Quality you notice on the first visit.",
            "The sixth visit is on us.",
        ]
        kpis = [
            f"{_thousands(visitors, 'en')} visitors in the first month",
            f"{_thousands(signups, 'en')} newsletter sign-ups by week {weeks}",
            "An average Google rating of 4.6 or more, from at least 100 reviews",
            "30% of customers come back within a month",
        ]
        picture = kind.picture[0].upper() + kind.picture[1:] + "; no text and no logos."
    channels = [
        {"name": channel, "rationale": why, "budget_share": share}
        for (channel, why), share in zip(SAMPLE_CHANNELS[language], shares, strict=True)
    ]
    sample: JSON = {
        "strategy_name": f"{prefix} {name} (#{token})",
        "target_audience": audience,
        "required_budget": float(budget),
        "steps": [{"step_number": i, "description": text} for i, text in enumerate(steps, 1)],
        "summary": f"{prefix} {summary}",
        "key_messages": messages,
        "channels": channels,
        "kpis": kpis,
        "timeline_weeks": weeks,
        "visual_brief": picture,
    }
    properties = schema.get("properties")
    known = set(properties) if isinstance(properties, dict) else set(sample)
    return {**generic, **{k: v for k, v in sample.items() if k in known}}


def answer_text(call: GenerateCall, shaping: Shaping) -> str:
    """JSON satisfying the schema when one is given (for the strategy schema, a hand-written
    sample strategy), else a marked plain-text answer."""
    language = call.language
    if call.schema is not None:
        maker = SampleMaker(call.schema, call.digest, language)
        value = maker.make(call.schema)
        resolved = maker.resolve(call.schema)
        if is_strategy_schema(resolved) and isinstance(value, dict):
            value = strategy_sample(call, value, resolved)
        if shaping.schema_invalid:
            value = violate_schema(value, resolved)
        if call.mime_type == "text/x.enum":
            return str(value)
        return json.dumps(value, ensure_ascii=False)
    prefix = f"[stand-in sample, {language}]" if language else MARKER
    return (
        f"{prefix} Plain-text answer from the local Gemini stand-in, not from a real model. "
        f"Request digest {call.digest.hex()[:12]}."
    )


def url_metadata(call: GenerateCall) -> list[JSON]:
    """One entry per URL; host names tell the stand-in which failure to pretend."""
    entries = []
    for url in find_urls(call.text):
        host = (urlsplit(url).hostname or "").lower()
        status = "URL_RETRIEVAL_STATUS_SUCCESS"
        if "unreachable" in host or "fail" in host:
            status = "URL_RETRIEVAL_STATUS_ERROR"
        elif "paywall" in host:
            status = "URL_RETRIEVAL_STATUS_PAYWALL"
        elif "unsafe" in host:
            status = "URL_RETRIEVAL_STATUS_UNSAFE"
        entries.append({"retrievedUrl": url, "urlRetrievalStatus": status})
    return entries


def redirect_link(digest: bytes, label: str) -> str:
    """An opaque grounding redirect link, as the real API gives instead of the page URL."""
    token = hashlib.sha512(digest + label.encode()).digest()
    return GROUNDING_REDIRECT + base64.urlsafe_b64encode(token).decode("ascii").rstrip("=")


def search_entry_point(query: str, digest: bytes) -> JSON:
    """The "Google Search suggestions" chip (HTML + CSS) that grounded answers must show."""
    link = html.escape(redirect_link(digest, f"query:{query}"), quote=True)
    rendered = (
        "<!-- [stand-in sample] search suggestions from the local Gemini stand-in -->\n"
        "<style>\n"
        ".container { align-items: center; border-radius: 8px; display: flex;"
        " font-family: Roboto, sans-serif; font-size: 14px; line-height: 20px;"
        " padding: 8px 12px; background-color: #fafafa; box-shadow: 0 0 0 1px #0000000f; }\n"
        ".headline { display: flex; margin-right: 4px; color: #1f1f1f; }\n"
        ".carousel { overflow: auto; scrollbar-width: none; white-space: nowrap; }\n"
        ".chip { display: inline-block; border: solid 1px #d2d2d2; border-radius: 16px;"
        " padding: 5px 16px; margin: 0 8px; color: #5e5e5e; text-decoration: none; }\n"
        "</style>\n"
        '<div class="container">\n'
        f'  <div class="headline">{html.escape(MARKER)} Search suggestions</div>\n'
        '  <div class="carousel">\n'
        f'    <a class="chip" href="{link}">{html.escape(query)}</a>\n'
        "  </div>\n"
        "</div>\n"
    )
    return {"renderedContent": rendered}


def grounding_metadata(call: GenerateCall, answer: str) -> JSON:
    """Search grounding as the real API shapes it: redirect links, domains as titles."""
    query = " ".join(call.text.split()[:8]) or "marketing strategy"
    chunks = [
        {"web": {"uri": redirect_link(call.digest, site), "title": site}} for site in SEARCH_SITES
    ]
    metadata: JSON = {
        "searchEntryPoint": search_entry_point(query, call.digest),
        "groundingChunks": chunks,
        "groundingSupports": [],
        "webSearchQueries": [query],
    }
    if answer:
        claim = answer[:120]
        segment = {"endIndex": len(claim.encode("utf-8")), "text": claim}  # UTF-8 byte offsets
        support = {"segment": segment, "groundingChunkIndices": list(range(len(chunks)))}
        metadata["groundingSupports"] = [support]
    return metadata


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def thought_tokens(call: GenerateCall, model: ServedModel) -> int:
    """Deterministic, > 0 for thinking models (all served ones); image models think longer."""
    if not model.thinking:
        return 0
    count = 48 + int.from_bytes(call.digest[8:10], "big") % 464
    return count * 2 if call.image_output else count


def usage_metadata(prompt: int, candidates: int, thoughts: int, tool_use: int = 0) -> JSON:
    """Token counts; zero counts are left out, as proto3 JSON does. ``tool_use``: what
    url_context and google_search read (toolUsePromptTokenCount), billed as input."""
    usage: JSON = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    if tool_use:
        usage["toolUsePromptTokenCount"] = tool_use
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    # Thoughts are billed as output, tool-use prompts as input: all are in the total.
    usage["totalTokenCount"] = prompt + candidates + thoughts + tool_use
    return usage


# What one page read by url_context, and one search by google_search, add to the input.
URL_CONTEXT_TOKENS_PER_URL = 850
SEARCH_TOKENS = 1200


def tool_use_tokens(call: GenerateCall) -> int:
    used = 0
    if any(t in call.tools for t in ("url_context", "url_context_tool")):
        used += URL_CONTEXT_TOKENS_PER_URL * max(1, len(re.findall(r"https?://", call.text)))
    if any(t in call.tools for t in ("google_search", "google_search_retrieval")):
        used += SEARCH_TOKENS
    return used


def _inline(mime_type: str, data: bytes) -> JSON:
    return {"mimeType": mime_type, "data": base64.b64encode(data).decode("ascii")}


def answer_parts(
    call: GenerateCall, image_size: int, image_format: str, shaping: Shaping
) -> tuple[list[JSON], list[JSON]]:
    """(thought parts, answer parts). Image models show their thinking, a sketch included."""
    if call.image_output:
        width, height = image_dimensions(call.aspect_ratio, image_size)
        sketch_digest = hashlib.sha256(b"thought\n" + call.digest).digest()
        sketch = make_png(max(1, width // 4), max(1, height // 4), sketch_digest)
        if image_format == "png":
            image = _inline("image/png", make_png(width, height, call.digest))
        else:
            image = _inline("image/jpeg", make_jpeg(width, height, call.digest))
        thoughts = [
            {
                "text": f"**Composing the preview**\n\n{MARKER} Sketching a layout first.",
                "thought": True,
            },
            {"inlineData": _inline("image/png", sketch), "thought": True},
        ]
        return thoughts, [
            {"text": f"{MARKER} preview image: {call.text[:80]}"},
            {"inlineData": image},
        ]
    text = answer_text(call, shaping)
    if shaping.bad_json or shaping.finish_reason in ("MAX_TOKENS", "CONTINUATION"):
        text = text[: max(1, len(text) // 2)]  # cut mid-document, as a truncated answer is
    thoughts = []
    if call.include_thoughts:
        summary = f"**Reading the brief**\n\n{MARKER} Thought summary, not part of the answer."
        thoughts = [{"text": summary, "thought": True}]
    return thoughts, [{"text": text}]


def build_answer(
    call: GenerateCall, model: ServedModel, image_size: int, image_format: str, shaping: Shaping
) -> JSON:
    """The full GenerateContentResponse for a call (streaming splits it afterwards)."""
    thoughts, finals = answer_parts(call, image_size, image_format, shaping)
    candidate: JSON = {}
    if shaping.has_content:
        candidate["content"] = {"role": "model", "parts": [*thoughts, *finals]}
    finish = shaping.finish_reason or "STOP"
    candidate.update({"finishReason": finish, "index": 0})
    if finish in ("SAFETY", "IMAGE_SAFETY"):
        candidate["safetyRatings"] = [dict(r) for r in BLOCKED_SAFETY_RATINGS]
    if finish == "CONTINUATION":
        # The per-request token limit was reached; the rest comes with this token
        # (GenerateContentConfig.continuation_token), which SDK 3.x sends on its own
        # unless automatic_continuation is off.
        token = hashlib.sha256(call.digest + b"continuation").digest()[:18]
        candidate["continuationToken"] = base64.b64encode(token).decode("ascii")
    final_text = "".join(p.get("text", "") for p in finals)
    if shaping.has_content and any(t in call.tools for t in ("url_context", "url_context_tool")):
        candidate["urlContextMetadata"] = {"urlMetadata": url_metadata(call)}
    if shaping.has_content and any(
        t in call.tools for t in ("google_search", "google_search_retrieval")
    ):
        candidate["groundingMetadata"] = grounding_metadata(call, final_text)
    output_tokens = 0
    if shaping.has_content:
        images = sum(1 for p in finals if "inlineData" in p)
        output_tokens = tokens(final_text) + IMAGE_OUTPUT_TOKENS * images
    prompt_tokens = tokens(call.text)
    answer: JSON = {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(
            prompt_tokens,
            output_tokens,
            thought_tokens(call, model),
            tool_use_tokens(call) if shaping.has_content else 0,
        ),
        "modelVersion": f"{call.answering_model}-standin",
        "responseId": secrets.token_urlsafe(16),
    }
    if shaping.block_reason:  # the prompt itself was refused: no candidates, no thinking
        answer.pop("candidates")
        feedback: JSON = {"blockReason": shaping.block_reason}
        if shaping.block_reason == "SAFETY":
            feedback["safetyRatings"] = [dict(r) for r in BLOCKED_SAFETY_RATINGS]
        answer["promptFeedback"] = feedback
        answer["usageMetadata"] = usage_metadata(prompt_tokens, 0, 0)
    return answer


def blocked_stream_prefix(call: GenerateCall, shaping: Shaping) -> str:
    """Text a stream sends before its output is blocked (the final event has no content)."""
    if shaping.has_content or shaping.block_reason or call.image_output:
        return ""
    text = answer_text(call, shaping)
    return text[: max(1, len(text) // 3)]


def split_stream(
    answer: JSON, digest: bytes, blocked_prefix: str = "", pieces_wanted: int = 0
) -> list[JSON]:
    """Cut an answer into SSE events whose answer text parts concatenate to the full text.

    Thought parts come first, in an event of their own; then 2-4 events of answer text. Only
    the last event carries finishReason, usageMetadata and tool metadata, as the real stream
    does; inline images travel in the last event too. A blocked candidate (no content) comes
    after ``blocked_prefix``, the text streamed before the block.
    """
    common = {"modelVersion": answer["modelVersion"], "responseId": answer["responseId"]}
    if "createTime" in answer:  # Vertex AI's answers carry it on every event
        common["createTime"] = answer["createTime"]
    candidates = answer.get("candidates")
    if not candidates or "content" not in candidates[0]:
        if not candidates or not blocked_prefix:
            return [answer]
        parts = [{"text": blocked_prefix}]
        lead = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]}
        return [{**lead, **common}, answer]
    candidate = candidates[0]
    parts = candidate["content"]["parts"]
    thoughts = [p for p in parts if p.get("thought")]
    finals = [p for p in parts if not p.get("thought")]
    text = "".join(p.get("text", "") for p in finals)
    others = [p for p in finals if "text" not in p]
    count = max(1, min(len(text), pieces_wanted or 2 + digest[-1] % 3))
    step = math.ceil(len(text) / count) if text else 1
    pieces = [text[i : i + step] for i in range(0, len(text), step)] or [""]
    events = []
    if thoughts:
        thinking = {"content": {"role": "model", "parts": thoughts}, "index": 0}
        events.append({"candidates": [thinking], **common})
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        event_parts = [{"text": piece}, *(others if last else [])]
        event_candidate: JSON = {"content": {"role": "model", "parts": event_parts}, "index": 0}
        if last:
            extras = {k: v for k, v in candidate.items() if k not in ("content", "index")}
            event_candidate.update(extras)
        event: JSON = {"candidates": [event_candidate], **common}
        if last:
            event["usageMetadata"] = answer["usageMetadata"]
        events.append(event)
    return events


@dataclass(frozen=True)
class VertexTarget:
    """Where a Vertex AI generate call goes: its project and location (from the path)."""

    project: str
    location: str

    def __post_init__(self) -> None:
        if not VERTEX_LOCATION_PATTERN.fullmatch(self.location):
            raise ApiError(400, f"Invalid location: {self.location}")


def as_vertex_answer(answer: JSON) -> JSON:
    """A Developer API answer as Vertex AI words it: a createTime, the billing traffic type
    in the usage, and the site's domain on each search source."""
    answer = json.loads(json.dumps(answer))
    answer["createTime"] = rfc3339(time.time())
    if "usageMetadata" in answer:
        answer["usageMetadata"]["trafficType"] = "ON_DEMAND"
    for candidate in answer.get("candidates") or []:
        grounding = candidate.get("groundingMetadata") or {}
        for chunk in grounding.get("groundingChunks") or []:
            web = chunk.get("web")
            if isinstance(web, dict) and "title" in web:
                web["domain"] = web["title"]
    return answer


GCS_LOOKUP_TIMEOUT_S = 5.0
# The emulator is local: never through a proxy from the environment.
_DIRECT = build_opener(ProxyHandler({}))


def gcs_object_status(storage: str, bucket: str, name: str) -> int:
    """The Cloud Storage (emulator's) status for one object's metadata: 200, 404, ...
    0 when it cannot be reached."""
    url = f"{storage}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    try:
        with _DIRECT.open(url, timeout=GCS_LOOKUP_TIMEOUT_S) as answer:
            return int(answer.status)
    except HTTPError as exc:
        return int(exc.code)
    except (URLError, OSError):
        return 0


# --------------------------------------------------------------------------------------------
# Server state: config, fault rules, files, request log
# --------------------------------------------------------------------------------------------


def storage_base_url(value: Any) -> str:
    """``STORAGE_EMULATOR_HOST`` as a base URL (the client libraries accept it without a
    scheme too); "" for none. Raises ApiError(400) on anything else."""
    if not isinstance(value, str):
        raise ApiError(400, "storage_emulator_host must be a string")
    value = value.strip().rstrip("/")
    if not value:
        return ""
    if "://" not in value:
        value = f"http://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        raise ApiError(400, "storage_emulator_host must be http://host:port")
    return value


@dataclass(frozen=True)
class Config:
    """Global knobs; ``latency_s`` applies to every generate call.

    ``image_size`` is the longer side of generated images (the other follows the requested
    aspect ratio), ``image_format`` their encoding ("jpeg" as current image models answer, or
    "png"), ``extra_models`` ids served besides ``SERVED_MODELS`` (for a test that needs one),
    ``withdrawn_models`` ids of ``SERVED_MODELS`` that answer 404 as if retired (so that a test
    can retire the model a running worker is configured with). ``storage_emulator_host`` is
    the Cloud Storage emulator (``http://host:port``) where Vertex AI routes look up the
    ``gs://`` objects a prompt names; without it they refuse every ``gs://`` URI.
    """

    FIELDS = frozenset(
        {
            "latency_s",
            "file_processing_s",
            "image_size",
            "image_format",
            "extra_models",
            "withdrawn_models",
            "stream_pieces",
            "stream_pause_s",
            "storage_emulator_host",
        }
    )

    latency_s: float = 0.0
    file_processing_s: float = 0.2
    image_size: int = 64
    image_format: str = "jpeg"
    extra_models: tuple[str, ...] = ()
    withdrawn_models: tuple[str, ...] = ()
    # Streamed answers: how many events of answer text (0: 2-4 by the request's digest)
    # and the pause between events, so that a test can watch a strategy being written.
    stream_pieces: int = 0
    stream_pause_s: float = STREAM_EVENT_PAUSE_S
    storage_emulator_host: str = ""

    def updated(self, body: JSON) -> Config:
        """A copy with the given fields changed; raises ApiError(400) on bad values."""
        unknown = set(body) - self.FIELDS
        if unknown:
            raise ApiError(400, f"unknown config fields: {sorted(unknown)}")
        latency = as_float(body.get("latency_s", self.latency_s))
        processing = as_float(body.get("file_processing_s", self.file_processing_s))
        size = as_float(body.get("image_size", self.image_size))
        image_format = body.get("image_format", self.image_format)
        extra = body.get("extra_models", list(self.extra_models))
        withdrawn = body.get("withdrawn_models", list(self.withdrawn_models))
        if latency is None or latency < 0 or processing is None or processing < 0:
            raise ApiError(400, "latency_s and file_processing_s must be numbers >= 0")
        if size is None or not 1 <= size <= 512:
            raise ApiError(400, "image_size must be between 1 and 512")
        if image_format not in IMAGE_FORMATS:
            raise ApiError(400, f"image_format must be one of {list(IMAGE_FORMATS)}")
        if not isinstance(extra, list) or not all(
            isinstance(m, str) and MODEL_ID_PATTERN.fullmatch(m) for m in extra
        ):
            raise ApiError(400, "extra_models must be a list of model ids (without models/)")
        if not isinstance(withdrawn, list) or not all(m in SERVED_MODELS for m in withdrawn):
            raise ApiError(400, "withdrawn_models must be a list of ids from SERVED_MODELS")
        pieces = body.get("stream_pieces", self.stream_pieces)
        pause = as_float(body.get("stream_pause_s", self.stream_pause_s))
        if not isinstance(pieces, int) or not 0 <= pieces <= 1000:
            raise ApiError(400, "stream_pieces must be an integer from 0 to 1000")
        if pause is None or not 0 <= pause <= 10:
            raise ApiError(400, "stream_pause_s must be between 0 and 10")
        storage = storage_base_url(body.get("storage_emulator_host", self.storage_emulator_host))
        return Config(
            latency,
            processing,
            int(size),
            str(image_format),
            tuple(extra),
            tuple(withdrawn),
            pieces,
            pause,
            storage,
        )

    def to_json(self) -> JSON:
        return {
            "latency_s": self.latency_s,
            "file_processing_s": self.file_processing_s,
            "image_size": self.image_size,
            "image_format": self.image_format,
            "extra_models": list(self.extra_models),
            "withdrawn_models": list(self.withdrawn_models),
            "stream_pieces": self.stream_pieces,
            "stream_pause_s": self.stream_pause_s,
            "storage_emulator_host": self.storage_emulator_host,
        }

    def served_model(self, model_id: str) -> ServedModel | None:
        """The model behind an id of a request path, or None: then the API answers 404."""
        if model_id in self.withdrawn_models:
            return None
        if model_id in SERVED_MODELS:
            return SERVED_MODELS[model_id]
        return extra_model(model_id) if model_id in self.extra_models else None

    def served_models(self) -> list[ServedModel]:
        extras = [extra_model(m) for m in self.extra_models if m not in SERVED_MODELS]
        served = [m for m in SERVED_MODELS.values() if m.model_id not in self.withdrawn_models]
        return [*served, *extras]


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
    this answer's image); ``CONTINUATION`` cuts the text and adds a ``continuationToken``.
    With a status: ``html`` answers Google's HTML error page instead of the JSON error,
    ``no_upload_status`` leaves ``X-Goog-Upload-Status`` off a File API chunk answer.
    ``gather`` (N): each matching request waits until N of them are
    waiting at once, at most ``latency_s`` (default 10 s), then all go on together: proof
    that a client keeps N requests in flight, whatever the spread of their arrival.
    """

    FIELDS = frozenset(
        {"match", "endpoint", "status", "times", "latency_s", "hang_s", "message", "gather"}
        | {"finish_reason", "block_reason", "bad_json", "schema_invalid", "image_format"}
        | {"html", "no_upload_status"}
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
            "gather": self.gather,
            "html": self.html,
            "no_upload_status": self.no_upload_status,
            "applied": self.applied,
        }


@dataclass
class FileRecord:
    """An uploaded file. Only size, sha256 and the first bytes are kept, never the content."""

    file_id: str
    display_name: str | None
    mime_type: str
    declared_size: int | None
    api_version: str
    base_url: str
    created: float = field(default_factory=time.time)
    size: int = 0
    magic: bytes = b""
    hasher: Any = field(default_factory=hashlib.sha256)
    finalized: float | None = None
    ready_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def absorb(self, piece: bytes) -> None:
        self.hasher.update(piece)
        self.size += len(piece)
        if len(self.magic) < 8:
            self.magic = (self.magic + piece)[:8]

    def state(self, now: float) -> str:
        if self.ready_at is None or now < self.ready_at:
            return "PROCESSING"
        if self.mime_type == "application/pdf" and not self.magic.startswith(b"%PDF-"):
            return "FAILED"
        return "ACTIVE"

    def resource(self, now: float) -> JSON:
        state = self.state(now)
        updated = self.ready_at if state != "PROCESSING" and self.ready_at else self.finalized
        resource: JSON = {
            "name": f"files/{self.file_id}",
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(updated or self.created),
            "expirationTime": rfc3339(self.created + FILE_LIFETIME_S),
            "sha256Hash": base64.b64encode(self.hasher.copy().digest()).decode("ascii"),
            "uri": f"{self.base_url}/{self.api_version}/files/{self.file_id}",
            "state": state,
            "source": "UPLOADED",
        }
        if self.display_name is not None:
            resource["displayName"] = self.display_name
        if state == "FAILED":
            resource["error"] = {"code": 400, "message": f"{MARKER} the file is not a valid PDF"}
        return resource


class StandinState:
    """Everything the handlers share; one lock guards it (requests are short under the lock)."""

    def __init__(self, defaults: Config) -> None:
        self.pid = os.getpid()
        self.started_at = time.time()
        self._defaults = defaults
        self._lock = threading.Lock()
        self._seq = 0
        self.config = defaults
        self._faults: list[FaultRule] = []
        self._files: dict[str, FileRecord] = {}
        self._uploads: dict[str, FileRecord] = {}
        self._log: list[JSON] = []

    # -- config and faults ---------------------------------------------------------------------

    def set_config(self, body: JSON) -> Config:
        with self._lock:
            self.config = self.config.updated(body)
            return self.config

    def add_fault(self, body: JSON) -> FaultRule:
        rule = FaultRule.from_body(body)
        with self._lock:
            self._faults.append(rule)
        return rule

    def faults(self) -> list[JSON]:
        with self._lock:
            return [rule.to_json() for rule in self._faults]

    def clear_faults(self) -> int:
        with self._lock:
            count, self._faults = len(self._faults), []
            return count

    def take_fault(self, kind: str, haystack: str) -> FaultRule | None:
        """The first rule (insertion order) that matches and has uses left; counts one use."""
        with self._lock:
            for rule in self._faults:
                if rule.matches(kind, haystack):
                    rule.applied += 1
                    return rule
        return None

    def reset(self) -> None:
        with self._lock:
            self.config = self._defaults
            self._faults, self._log = [], []
            self._files, self._uploads = {}, {}

    # -- request log ---------------------------------------------------------------------------

    def log_start(self, method: str, path: str) -> JSON:
        """Open a log entry; all keys exist from the start so readers never see a resize."""
        with self._lock:
            self._seq += 1
            entry: JSON = {
                "seq": self._seq,
                "method": method,
                "path": path,
                "endpoint": UNKNOWN,
                "backend": DEVELOPER,
                "model": None,
                "started_at": time.time(),
                "ended_at": None,
                "status": None,
                "match_text": "",
                "has_file_part": False,
                "file_uris": [],
                "tools": [],
                "response_modalities": [],
                "response_schema": False,
                "display_name": None,
                "deadline_s": None,
                # Streams: when the first event was sent (benchmarks measure from it).
                "first_event_at": None,
            }
            self._log.append(entry)
            if len(self._log) > MAX_LOG_ENTRIES:
                del self._log[: len(self._log) - MAX_LOG_ENTRIES]
            return entry

    def log_update(self, entry: JSON, **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def requests(self, contains: str, endpoint: str | None) -> list[JSON]:
        with self._lock:
            entries = [dict(e) for e in self._log]
        return [
            e
            for e in entries
            if endpoint_matches(endpoint or "", e["endpoint"])
            and (
                contains in e["match_text"]
                or contains in e["path"]
                or contains in (e["display_name"] or "")
            )
        ]

    # -- files ---------------------------------------------------------------------------------

    def open_upload(self, record: FileRecord) -> str:
        upload_id = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads[upload_id] = record
        return upload_id

    def upload(self, upload_id: str) -> FileRecord | None:
        with self._lock:
            return self._uploads.get(upload_id)

    def finalize(self, upload_id: str, record: FileRecord) -> None:
        """Make the file visible; it turns ACTIVE/FAILED after the processing delay."""
        now = time.time()
        with self._lock:
            self._uploads.pop(upload_id, None)
            record.finalized = now
            record.ready_at = now + self.config.file_processing_s
            self._files[record.file_id] = record

    def file(self, file_id: str) -> FileRecord | None:
        with self._lock:
            return self._files.get(file_id)

    def delete_file(self, file_id: str) -> bool:
        with self._lock:
            return self._files.pop(file_id, None) is not None

    def files(self) -> list[FileRecord]:
        with self._lock:
            return list(self._files.values())

    def file_id_taken(self, file_id: str) -> bool:
        with self._lock:
            in_uploads = any(r.file_id == file_id for r in self._uploads.values())
            return file_id in self._files or in_uploads


def max_overlap(entries: list[JSON]) -> int:
    """Largest number of [started_at, ended_at] intervals open at one instant (sweep line)."""
    now = time.time()
    events: list[tuple[float, int]] = []
    for entry in entries:
        events.append((entry["started_at"], 1))
        events.append((entry["ended_at"] or now, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end at the same instant closes first
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

_VER = "|".join(API_VERSIONS)
GENERATE_ROUTE = re.compile(
    rf"^/(?P<ver>{_VER})/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)
COUNT_ROUTE = re.compile(rf"^/(?P<ver>{_VER})/models/(?P<model>[^/:]+):countTokens$")
MODELS_ROUTE = re.compile(rf"^/(?P<ver>{_VER})/models$")
MODEL_ROUTE = re.compile(rf"^/(?P<ver>{_VER})/models/(?P<model>[^/:]+)$")
UPLOAD_ROUTE = re.compile(rf"^/upload/(?P<ver>{_VER})/files$")
FILES_ROUTE = re.compile(rf"^/(?P<ver>{_VER})/files$")
FILE_ROUTE = re.compile(rf"^/(?P<ver>{_VER})/files/(?P<file_id>[^/]+)$")
# Vertex AI: generation is project- and location-scoped; publisher models are not.
_VVER = "|".join(VERTEX_API_VERSIONS)
_VERTEX_MODEL = (
    rf"^/(?P<ver>{_VVER})/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+)"
)
VERTEX_GENERATE_ROUTE = re.compile(
    _VERTEX_MODEL + r":(?P<method>generateContent|streamGenerateContent)$"
)
VERTEX_COUNT_ROUTE = re.compile(_VERTEX_MODEL + r":countTokens$")
# ``publishers.models.list`` exists in v1beta1 only; ``get`` in both versions.
VERTEX_MODELS_ROUTE = re.compile(r"^/(?P<ver>v1beta1)/publishers/google/models$")
VERTEX_MODEL_ROUTE = re.compile(rf"^/(?P<ver>{_VVER})/publishers/google/models/(?P<model>[^/:]+)$")
VERTEX_PATH = re.compile(rf"^/(?:{_VVER})/(?:projects|publishers)/")


def server_timeout(header: str | None) -> float | None:
    """The request deadline in seconds from ``X-Server-Timeout`` (the SDK sends whole seconds)."""
    value = as_float(header)
    return value if value is not None and value > 0 and math.isfinite(value) else None


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


def route_kind(path: str) -> str:
    """The request kind by path alone (generate calls are refined once the body is read)."""
    if match := GENERATE_ROUTE.match(path) or VERTEX_GENERATE_ROUTE.match(path):
        return STREAM if match["method"] == STREAM else GENERATE
    if COUNT_ROUTE.match(path) or VERTEX_COUNT_ROUTE.match(path):
        return COUNT
    if any(r.match(path) for r in (MODELS_ROUTE, MODEL_ROUTE, VERTEX_MODELS_ROUTE)):
        return MODELS
    if VERTEX_MODEL_ROUTE.match(path):
        return MODELS
    if UPLOAD_ROUTE.match(path):
        return UPLOAD
    if FILES_ROUTE.match(path) or FILE_ROUTE.match(path):
        return FILES
    return UNKNOWN


class StandinServer(ThreadingHTTPServer):
    """Threaded server: one daemon thread per connection, a deep accept queue for bursts."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: StandinState, log_requests: bool) -> None:
        super().__init__(address, StandinHandler)
        self.state = state
        self.log_requests = log_requests

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal here (timeouts, retries): log one line, no trace."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            log("ERROR", "stand-in connection failed", error=repr(error))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class StandinHandler(BaseHTTPRequestHandler):
    """Routes one request; API errors are raised as ApiError and answered in Gemini's shape."""

    protocol_version = "HTTP/1.1"  # keep-alive needs exact Content-Length on every answer
    server_version = "GeminiStandin/1.0"
    timeout = 300  # idle keep-alive connections give their thread back eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: StandinServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's access log: ours is JSON, and its lines could carry ``?key=``."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def state(self) -> StandinState:
        return self.server.state

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        self._status = 0
        self._body_read = False
        self._deadline_s = server_timeout(self.headers.get("X-Server-Timeout"))
        self._deadline = None if self._deadline_s is None else started + self._deadline_s
        url = urlsplit(self.path)
        entry: JSON | None = None
        try:
            if url.path.startswith("/_standin/"):
                self._control(method, url.path, parse_qs(url.query))
            else:
                entry = self.state.log_start(method, url.path)
                self._api(method, url.path, parse_qs(url.query), entry)
        except ApiError as exc:
            self._send_error(exc)
        except DropConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            log("ERROR", "stand-in failed to handle a request", path=url.path, error=repr(exc))
            if self._status:  # headers already sent: the answer cannot be repaired
                self.close_connection = True
            else:
                self._send_json(500, error_body(500))
        finally:
            self._drain()
            if entry is not None:
                self.state.log_update(entry, ended_at=time.time(), status=self._status or None)
            if self.server.log_requests or self._status >= 500:
                log(
                    "INFO" if self._status < 500 else "WARNING",
                    "request",
                    method=method,
                    path=url.path,  # never the query: it may hold ?key=
                    status=self._status or None,
                    duration_ms=round((time.monotonic() - started) * 1000, 1),
                )

    def _body_pieces(self) -> Iterator[bytes]:
        """The request body in pieces (Content-Length or chunked), never all in memory."""
        self._body_read = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(READ_PIECE, remaining))
            if not piece:
                raise ConnectionResetError("client closed mid-body")
            remaining -= len(piece)
            yield piece

    def _read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        data = bytearray()
        for piece in self._body_pieces():
            data += piece
            if len(data) > limit:
                self.close_connection = True  # the rest of the body is not worth reading
                raise ApiError(400, "request body too large for the stand-in")
        return bytes(data)

    def _read_json(self) -> JSON:
        return self._read_raw_json()[1]

    def _read_raw_json(self) -> tuple[bytes, JSON]:
        """The body as bytes (fault rules match on it) and as a JSON object."""
        raw = self._read_body()
        if not raw.strip():
            return raw, {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"Invalid JSON payload received. {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        return raw, body

    def _drain(self) -> None:
        """Read what is left of an unread body, so the keep-alive connection stays in sync."""
        if self._body_read:
            return
        try:
            for _ in self._body_pieces():
                pass
        except (OSError, ValueError):
            self.close_connection = True

    def _send_error(self, exc: ApiError, headers: Mapping[str, str] | None = None) -> None:
        if exc.html:
            self._send(exc.code, error_page(exc.code), "text/html; charset=UTF-8", headers)
        else:
            self._send_json(exc.code, error_body(exc.code, exc.message), headers)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, data, "application/json; charset=UTF-8", headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None
    ) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _base_url(self) -> str:
        """Scheme+host the client used (the SDK rewrites upload URLs to its base_url anyway)."""
        host = self.headers.get("Host")
        if not host:
            address, port = self.server.server_address[:2]
            host = f"{address!s}:{port}"
        return f"http://{host}"

    # -- control API ---------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        route = (method, path.rstrip("/"))
        state = self.state
        contains = (query.get("contains") or [""])[0]
        endpoint = (query.get("endpoint") or [""])[0]
        if route == ("GET", "/_standin/health"):
            payload: Any = {"ok": True, "pid": state.pid, "started_at": state.started_at}
        elif route == ("GET", "/_standin/faults"):
            payload = {"faults": state.faults()}
        elif route == ("POST", "/_standin/faults"):
            payload = {"id": state.add_fault(self._read_json()).id}
        elif route == ("DELETE", "/_standin/faults"):
            payload = {"cleared": state.clear_faults()}
        elif route == ("GET", "/_standin/config"):
            payload = state.config.to_json()
        elif route == ("POST", "/_standin/config"):
            payload = state.set_config(self._read_json()).to_json()
        elif route == ("POST", "/_standin/reset"):
            state.reset()
            payload = {"ok": True}
        elif route == ("GET", "/_standin/requests"):
            payload = {"requests": state.requests(contains, endpoint)}
        elif route == ("GET", "/_standin/requests/max_concurrency"):
            matched = state.requests(contains, endpoint)
            payload = {"max_concurrency": max_overlap(matched), "count": len(matched)}
        else:
            raise ApiError(404, f"no stand-in control route {method} {path}")
        self._send_json(200, payload)

    # -- Gemini API ----------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, list[str]], entry: JSON) -> None:
        self.state.log_update(entry, endpoint=route_kind(path), deadline_s=self._deadline_s)
        if VERTEX_PATH.match(path):
            self.state.log_update(entry, backend=VERTEX)
            self._vertex_api(method, path, query, entry)
            return
        upload_id = (query.get("upload_id") or [""])[0]
        key = self.headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if not key and not upload_id:  # an upload URL carries its own credential
            raise ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity.",
            )
        if (match := GENERATE_ROUTE.match(path)) and method == "POST":
            self._generate(match["ver"], match["model"], match["method"] == STREAM, entry)
        elif (match := COUNT_ROUTE.match(path)) and method == "POST":
            self._count_tokens(match["ver"], match["model"], entry)
        elif (match := MODELS_ROUTE.match(path)) and method == "GET":
            self._list_models(query)
        elif (match := MODEL_ROUTE.match(path)) and method == "GET":
            self._get_model(match["ver"], match["model"], entry)
        elif UPLOAD_ROUTE.match(path) and method == "POST":
            if upload_id:
                self._upload_chunk(upload_id, entry)
            else:
                self._upload_start(path.split("/")[2], entry)
        elif (match := FILES_ROUTE.match(path)) and method == "GET":
            self._list_files(query)
        elif (match := FILE_ROUTE.match(path)) and method in ("GET", "DELETE"):
            self._file(method, match["file_id"], entry)
        else:
            raise ApiError(404, f"Method not found: {method} {path}")

    def _vertex_api(self, method: str, path: str, query: dict[str, list[str]], entry: JSON) -> None:
        """Vertex AI's routes: an OAuth bearer token (any value) instead of an API key."""
        authorization = self.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            has_key = self.headers.get("x-goog-api-key") or query.get("key")
            raise ApiError(401, VERTEX_NO_API_KEYS if has_key else VERTEX_UNAUTHENTICATED)
        if (match := VERTEX_GENERATE_ROUTE.match(path)) and method == "POST":
            target = VertexTarget(match["project"], match["location"])
            stream = match["method"] == STREAM
            self._generate(match["ver"], match["model"], stream, entry, target)
        elif (match := VERTEX_COUNT_ROUTE.match(path)) and method == "POST":
            target = VertexTarget(match["project"], match["location"])
            self._count_tokens(match["ver"], match["model"], entry, target)
        elif VERTEX_MODELS_ROUTE.match(path) and method == "GET":
            self._list_models(query, vertex=True)
        elif (match := VERTEX_MODEL_ROUTE.match(path)) and method == "GET":
            self._get_vertex_model(match["model"], entry)
        else:
            raise ApiError(404, f"Method not found: {method} {path}")

    def _remaining(self) -> float | None:
        """Seconds left before the request's deadline (``X-Server-Timeout``), if it set one."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _wait(self, seconds: float) -> None:
        """Sleep like a slow model, but never past the deadline: then answer 504."""
        remaining = self._remaining()
        if remaining is not None and seconds > remaining:
            time.sleep(max(0.0, remaining))
            raise ApiError(504, DEADLINE_MESSAGE)
        time.sleep(seconds)

    def _apply_fault(self, kind: str, haystack: str, default_latency: float = 0.0) -> Shaping:
        """Sleep, hang, or fail as the first matching rule says; return how to shape the answer."""
        rule = self.state.take_fault(kind, haystack)
        latency = default_latency
        if rule is not None and rule.latency_s is not None:
            latency = rule.latency_s  # a rule's own latency replaces the global one
        if rule is not None and rule.gather:
            remaining = self._remaining()
            wait = latency or 10.0
            rule.wait_for_company(wait if remaining is None else max(0.0, min(wait, remaining)))
            if (remaining := self._remaining()) is not None and remaining <= 0:
                raise ApiError(504, DEADLINE_MESSAGE)
        elif latency > 0:
            self._wait(latency)
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

    def _served_model(
        self, ver: str, model_id: str, method: str = GENERATE, vertex: VertexTarget | None = None
    ) -> ServedModel:
        config = self.state.config
        model = config.served_model(model_id)
        if vertex is not None:
            extra = model_id in config.extra_models
            if model is None or not vertex_serves(model_id, vertex.location, extra):
                message = vertex_model_not_found(vertex.project, vertex.location, model_id)
                raise ApiError(404, message)
            return model
        if model is None:
            raise ApiError(404, model_not_found(model_id, ver, method))
        return model

    def _generate(
        self, ver: str, model_id: str, stream: bool, entry: JSON, vertex: VertexTarget | None = None
    ) -> None:
        self.state.log_update(entry, model=model_id)
        raw, body = self._read_raw_json()
        config = self.state.config
        model = config.served_model(model_id)
        image_model = model is not None and model.image_output
        call = GenerateCall.parse(model_id, stream, body, image_model)
        if vertex is None and model_id in ROUTED_MODELS:
            call = replace(call, routed_to=ROUTED_MODELS[model_id])
        self.state.log_update(
            entry,
            endpoint=call.kind,
            match_text=call.text[:MATCH_TEXT_CHARS],
            has_file_part=call.has_file_part,
            file_uris=call.file_uris,
            tools=call.tools,
            response_modalities=call.modalities,
            response_schema=call.schema is not None,
        )
        model = self._served_model(ver, model_id, vertex=vertex)
        check_call(call, model)
        # The model id in the path is matchable too, e.g. to fail only the image model.
        haystack = f"{raw.decode('utf-8', errors='replace')}\n{urlsplit(self.path).path}"
        shaping = self._apply_fault(call.kind, haystack, config.latency_s)
        if vertex is None:
            self._check_files(call.file_uris)
        else:
            self._check_gcs_files(call.file_uris)
        image_format = shaping.image_format or config.image_format
        answer = build_answer(call, model, config.image_size, image_format, shaping)
        if vertex is not None:
            answer = as_vertex_answer(answer)
        if stream:
            prefix = blocked_stream_prefix(call, shaping)
            events = split_stream(answer, call.digest, prefix, config.stream_pieces)
            self._send_stream(events, config.stream_pause_s, entry)
        else:
            self._send_json(200, answer)

    def _count_tokens(
        self, ver: str, model_id: str, entry: JSON, vertex: VertexTarget | None = None
    ) -> None:
        self.state.log_update(entry, model=model_id)
        raw, body = self._read_raw_json()
        text = "\n".join(p["text"] for p in request_parts(body) if isinstance(p.get("text"), str))
        self.state.log_update(entry, match_text=text[:MATCH_TEXT_CHARS])
        self._served_model(ver, model_id, COUNT, vertex)
        self._apply_fault(COUNT, f"{raw.decode('utf-8', errors='replace')}\n{self.path}")
        self._send_json(200, {"totalTokens": tokens(text)})

    # -- Models API ----------------------------------------------------------------------------

    def _list_models(self, query: dict[str, list[str]], vertex: bool = False) -> None:
        """``GET /{ver}/models``: paged (pageSize default 50, at most 1000; opaque pageToken).

        On Vertex AI (``GET /v1beta1/publishers/google/models``) the page is
        ``publisherModels``, PublisherModel resources."""
        self._read_body()
        self._apply_fault(MODELS, self.path)
        page_size = as_float((query.get("pageSize") or ["50"])[0])
        if page_size is None or page_size < 0:
            raise ApiError(400, "page_size must be a non-negative integer")
        size = min(1000, int(page_size) or 50)
        token = (query.get("pageToken") or [""])[0]
        start = page_token_offset(token)
        models = self.state.config.served_models()
        page = models[start : start + size]
        payload: JSON = (
            {"publisherModels": [vertex_resource(m) for m in page]}
            if vertex
            else {"models": [m.resource() for m in page]}
        )
        if start + len(page) < len(models):
            payload["nextPageToken"] = make_page_token(start + len(page))
        self._send_json(200, payload)

    def _get_model(self, ver: str, model_id: str, entry: JSON) -> None:
        self._read_body()
        self.state.log_update(entry, model=model_id)
        model = self._served_model(ver, model_id)
        self._apply_fault(MODELS, self.path)
        self._send_json(200, model.resource())

    def _get_vertex_model(self, model_id: str, entry: JSON) -> None:
        """``GET /{ver}/publishers/google/models/{id}``: not location-scoped."""
        self._read_body()
        self.state.log_update(entry, model=model_id)
        model = self.state.config.served_model(model_id)
        if model is None:
            raise ApiError(404, f"Publisher Model `publishers/google/models/{model_id}` not found.")
        self._apply_fault(MODELS, self.path)
        self._send_json(200, vertex_resource(model))

    def _check_gcs_files(self, file_uris: list[str]) -> None:
        """Vertex AI reads ``gs://`` objects itself: one that does not exist in the Cloud
        Storage emulator is refused, as Vertex AI fails to read it; File API URIs are the
        Developer API's and mean nothing here."""
        storage = self.state.config.storage_emulator_host
        for uri in file_uris:
            found = GCS_URI_PATTERN.fullmatch(uri)
            if found is None:
                raise ApiError(400, f"Unsupported file uri: {uri}")
            if not storage:
                raise ApiError(
                    400,
                    f"{GCS_NOT_FOUND.format(uri=uri)} [stand-in: no Cloud Storage emulator "
                    "configured (--storage-emulator-host or STORAGE_EMULATOR_HOST)]",
                )
            status = gcs_object_status(storage, found["bucket"], found["name"])
            if status == 404:
                raise ApiError(400, GCS_NOT_FOUND.format(uri=uri))
            if status in (401, 403):
                raise ApiError(403, GCS_FORBIDDEN)
            if status != 200:
                raise ApiError(500, f"[stand-in] the Cloud Storage emulator answered {status}")

    def _check_files(self, file_uris: list[str]) -> None:
        """A prompt may only use files that exist here and are ACTIVE, as on the real API."""
        now = time.time()
        for uri in file_uris:
            found = FILE_ID_PATTERN.search(urlsplit(uri).path or uri)
            record = self.state.file(found.group(1)) if found else None
            if record is None:
                raise ApiError(400, f"The file {uri} does not exist or was deleted.")
            state = record.state(now)
            if state != "ACTIVE":
                raise ApiError(
                    400,
                    f"The File {record.file_id} is not in an ACTIVE state (it is {state}) "
                    "and usage is not allowed.",
                )

    def _send_stream(
        self, events: list[JSON], pause_s: float = STREAM_EVENT_PAUSE_S, entry: JSON | None = None
    ) -> None:
        """SSE with a known Content-Length (keep-alive stays simple), flushed event by event."""
        encoded = [
            b"data: " + json.dumps(e, ensure_ascii=False).encode("utf-8") + b"\r\n\r\n"
            for e in events
        ]
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(sum(len(e) for e in encoded)))
        self.end_headers()
        for index, event in enumerate(encoded):
            if index:
                time.sleep(pause_s)
            self.wfile.write(event)
            self.wfile.flush()
            if index == 0 and entry is not None:
                self.state.log_update(entry, first_event_at=time.time())

    # -- Files API -----------------------------------------------------------------------------

    def _upload_start(self, ver: str, entry: JSON) -> None:
        raw, body = self._read_raw_json()
        file_meta = body.get("file")
        file_meta = file_meta if isinstance(file_meta, dict) else {}
        display_name = get_any(file_meta, "displayName")
        self.state.log_update(entry, display_name=display_name)
        protocol = (self.headers.get("X-Goog-Upload-Protocol") or "").lower()
        command = (self.headers.get("X-Goog-Upload-Command") or "").lower()
        if protocol != "resumable" or command != "start":
            raise ApiError(400, "the stand-in supports only resumable uploads (command start)")
        self._apply_fault(UPLOAD, f"{raw.decode('utf-8', errors='replace')}\n{self.path}")
        mime_type = (
            get_any(file_meta, "mimeType")
            or self.headers.get("X-Goog-Upload-Header-Content-Type")
            or "application/octet-stream"
        )
        declared = as_float(self.headers.get("X-Goog-Upload-Header-Content-Length"))
        record = FileRecord(
            file_id=self._new_file_id(file_meta.get("name")),
            display_name=display_name,
            mime_type=str(mime_type),
            declared_size=int(declared) if declared is not None else None,
            api_version=ver,
            base_url=self._base_url(),
        )
        upload_id = self.state.open_upload(record)
        upload_url = f"{record.base_url}/upload/{ver}/files?upload_id={upload_id}"
        headers = {
            "X-Goog-Upload-URL": upload_url,
            "X-Goog-Upload-Status": "active",
            "X-Goog-Upload-Chunk-Granularity": str(8 * 1024 * 1024),
        }
        self._send_json(200, {}, headers)

    def _new_file_id(self, requested: Any) -> str:
        if isinstance(requested, str) and requested.strip():
            file_id = requested.removeprefix("files/")
            if not re.fullmatch(r"[a-z0-9-]{1,40}", file_id):
                raise ApiError(400, "file name must be lower-case letters, digits or dashes")
            if self.state.file_id_taken(file_id):
                raise ApiError(409, f"File files/{file_id} already exists.")
            return file_id
        return secrets.token_hex(6)

    def _upload_chunk(self, upload_id: str, entry: JSON) -> None:
        """One chunk of a resumable upload. Every answer says X-Goog-Upload-Status.

        Errors say ``final`` too: without the header the SDK re-posts with 1/2/4 s sleeps.
        """
        record = self.state.upload(upload_id)
        try:
            if record is None:
                raise ApiError(404, "unknown or finished upload session")
            self.state.log_update(entry, display_name=record.display_name)
            self._apply_fault(UPLOAD, f"{CHUNK_HAYSTACK}{record.display_name or ''}\n{self.path}")
            with record.lock:  # chunks of one session must not interleave
                status, payload, headers = self._receive_chunk(upload_id, record)
        except ApiError as exc:
            self._drain()
            # A fault may leave the header out, as real answers sometimes do: the SDK then
            # re-posts the chunk up to 3 times, sleeping 1, 2 and 4 s.
            self._send_error(exc, {} if exc.no_upload_status else {"X-Goog-Upload-Status": "final"})
            return
        self._send_json(status, payload, headers)

    def _receive_chunk(
        self, upload_id: str, record: FileRecord
    ) -> tuple[int, JSON, dict[str, str]]:
        """Hash the chunk into the record; on ``finalize`` publish the file resource."""
        header = self.headers.get("X-Goog-Upload-Command") or ""
        command = {part.strip().lower() for part in header.split(",")}
        progress = {"X-Goog-Upload-Status": "active"}
        if "query" in command:
            return 200, {}, {**progress, "X-Goog-Upload-Size-Received": str(record.size)}
        offset = as_float(self.headers.get("X-Goog-Upload-Offset"))
        if offset is not None and int(offset) != record.size:
            raise ApiError(400, f"offset {int(offset)} does not match {record.size} bytes received")
        for piece in self._body_pieces():
            record.absorb(piece)
        if "finalize" not in command:
            return 200, {}, {**progress, "X-Goog-Upload-Size-Received": str(record.size)}
        if record.declared_size is not None and record.size != record.declared_size:
            raise ApiError(400, f"received {record.size} bytes, announced {record.declared_size}")
        self.state.finalize(upload_id, record)
        final = {"X-Goog-Upload-Status": "final"}
        return 200, {"file": record.resource(time.time())}, final

    def _list_files(self, query: dict[str, list[str]]) -> None:
        self._read_body()
        self._apply_fault(FILES, self.path)
        page_size = int(as_float((query.get("pageSize") or ["10"])[0]) or 10)
        start = int(as_float((query.get("pageToken") or ["0"])[0]) or 0)
        records = sorted(self.state.files(), key=lambda r: r.created, reverse=True)
        now = time.time()
        page = [r.resource(now) for r in records[start : start + max(1, page_size)]]
        payload: JSON = {"files": page} if page else {}
        if start + len(page) < len(records):
            payload["nextPageToken"] = str(start + len(page))
        self._send_json(200, payload)

    def _file(self, method: str, file_id: str, entry: JSON) -> None:
        self._read_body()
        record = self.state.file(file_id)
        display_name = record.display_name if record else None
        self.state.log_update(entry, display_name=display_name)
        self._apply_fault(FILES, f"{display_name or ''}\n{self.path}")
        if record is None or (method == "DELETE" and not self.state.delete_file(file_id)):
            raise ApiError(
                403,
                f"You do not have permission to access the File {file_id} or it may not exist.",
            )
        self._send_json(200, {} if method == "DELETE" else record.resource(time.time()))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: Config | None = None,
    log_requests: bool = True,
) -> tuple[StandinServer, threading.Thread]:
    """Start the stand-in in a daemon thread (port 0 = any free port; see ``server.url``).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = StandinServer((host, port), StandinState(config or Config()), log_requests)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # so that shutdown() returns quickly in tests
        name="gemini-standin",
        daemon=True,
    )
    thread.start()
    return server, thread


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stand-in for the Gemini REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay of generate calls")
    parser.add_argument("--file-processing-s", type=float, default=0.2)
    parser.add_argument("--image-size", type=int, default=64, help="longer side of images")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpeg")
    parser.add_argument(
        "--extra-model", action="append", default=[], help="serve this model id too"
    )
    parser.add_argument("--quiet", action="store_true", help="log only errors, not requests")
    parser.add_argument(
        "--storage-emulator-host",
        default=os.environ.get("STORAGE_EMULATOR_HOST", ""),
        help="the Cloud Storage emulator that Vertex AI routes read gs:// objects from "
        "(default: $STORAGE_EMULATOR_HOST)",
    )
    args = parser.parse_args(argv)
    try:
        config = Config().updated(
            {
                "latency_s": args.latency_s,
                "file_processing_s": args.file_processing_s,
                "image_size": args.image_size,
                "image_format": args.image_format,
                "extra_models": args.extra_model,
                "storage_emulator_host": args.storage_emulator_host,
            }
        )
    except ApiError as exc:
        parser.error(str(exc.message))
    server = StandinServer((args.host, args.port), StandinState(config), not args.quiet)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    ready = {
        "severity": "INFO",
        "message": "gemini stand-in listening",
        "host": args.host,
        "port": server.server_address[1],
        "pid": os.getpid(),
    }
    print(json.dumps(ready), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log("INFO", "gemini stand-in stopped", pid=os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
