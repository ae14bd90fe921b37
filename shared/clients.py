"""The one place that builds Google clients: lazily, once per process.

Nothing connects at import time, and each function imports only the client
libraries it uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from shared.settings import get_settings

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.firestore import Client as FirestoreClient
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.storage import Client as StorageClient
    from google.genai import Client as GenaiClient
    from google.genai.types import HttpOptions

T = TypeVar("T")
_instances: dict[str, Any] = {}
_lock = threading.Lock()


def _once(name: str, build: Callable[[], T]) -> T:
    instance = _instances.get(name)
    if instance is None:
        with _lock:
            instance = _instances.get(name)
            if instance is None:
                instance = _instances[name] = build()
    return cast(T, instance)


def firestore() -> FirestoreClient:
    def build() -> FirestoreClient:
        from google.cloud import firestore as fs

        return fs.Client(project=get_settings().google_cloud_project)

    return _once("firestore", build)


def storage() -> StorageClient:
    def build() -> StorageClient:
        import os

        from google.cloud import storage as gcs

        project = get_settings().google_cloud_project
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return gcs.Client(project=project, credentials=AnonymousCredentials())
        return gcs.Client(project=project)

    return _once("storage", build)


def publisher() -> PublisherClient:
    def build() -> PublisherClient:
        from google.cloud import pubsub_v1

        # One message per batch: the accept path waits for its publish, and the
        # default batching window would add ~10 ms to every request.
        return pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
        )

    return _once("publisher", build)


# The Gemini answers worth another try: the SDK's own list (408, 429, 500, 502, 503, 504)
# and 499 CANCELLED, which Gemini answers under heavy load and which is as transient as a
# 503 (docs/gemini.md, "Errors").
RETRYABLE_GEMINI_STATUS = frozenset({408, 429, 499, 500, 502, 503, 504})

# Gemini needs some key even when it talks to a stand-in that ignores it.
PLACEHOLDER_GEMINI_KEY = "standin-placeholder-key"


def gemini_http_options(*, timeout_s: float, attempts: int) -> HttpOptions:
    """The SDK's options for one kind of call: a whole-request deadline (which the SDK
    also sends as X-Server-Timeout) and its tries, with backoff and jitter."""
    from google.genai import types

    settings = get_settings()
    return types.HttpOptions(
        timeout=int(timeout_s * 1000),  # the SDK counts milliseconds
        retry_options=types.HttpRetryOptions(
            attempts=attempts,
            initial_delay=settings.gemini_retry_initial_delay_s,
            max_delay=settings.gemini_retry_max_delay_s,
            exp_base=2,
            jitter=settings.gemini_retry_jitter_s,
            http_status_codes=sorted(RETRYABLE_GEMINI_STATUS),
        ),
    )


def gemini() -> GenaiClient:
    """The Gemini client, for the backend the settings choose (GEMINI_BACKEND). Its own
    deadline and tries (those of a File API request) apply to the small calls; the
    strategy and image calls pass their own."""

    def build() -> GenaiClient:
        import httpx
        from google import genai

        from shared import abortable

        settings = get_settings()
        options = gemini_http_options(
            timeout_s=settings.gemini_upload_timeout_s, attempts=settings.gemini_max_attempts
        )
        options.base_url = settings.gemini_base_url
        options.api_version = settings.gemini_version
        # httpx's pool holds 100 connections (20 kept alive) by default: an instance that
        # runs more tasks at once would queue their calls behind it (docs/capacity.md).
        connections = max(100, 2 * settings.worker_concurrency)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        # Its reads can be stopped from outside: a cancelled task's stream is closed
        # at once, not generated (and billed) to its end (shared/abortable.py).
        options.client_args = {"transport": abortable.transport(limits)}
        if settings.uses_vertex:
            return genai.Client(
                vertexai=True,
                project=settings.vertex_project,
                location=settings.gemini_vertex_location,
                credentials=vertex_credentials(settings.gemini_base_url),
                http_options=options,
            )
        key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None
        if key is None and settings.gemini_base_url is None:
            raise RuntimeError("GEMINI_API_KEY is not configured")
        return genai.Client(api_key=key or PLACEHOLDER_GEMINI_KEY, http_options=options)

    def build_complete() -> GenaiClient:
        client = build()
        complete_sdk_models()
        return client

    return _once("gemini", build_complete)


def complete_sdk_models() -> None:
    """Build every pydantic model of ``google.genai.types`` now, once (~0.5 s).

    pydantic defers them (450 of them) to their first use, and first uses from several
    threads at once race: one thread may validate with the base class's validator
    before the model's own is set. A worker running 50 tasks at once in CI had the SDK
    refuse our response schema with "Extra inputs are not permitted" for every field of
    ``Schema``. Called under the clients' lock, before any call."""
    import pydantic
    from google.genai import types

    models = [v for v in vars(types).values() if isinstance(v, type)]
    for model in models:
        if issubclass(model, pydantic.BaseModel) and not model.__pydantic_complete__:
            model.model_rebuild()


# A stand-in's bearer token: any value passes there, and no real token leaves the process.
PLACEHOLDER_VERTEX_TOKEN = "standin-placeholder-token"  # noqa: S105 (not a secret)
GOOGLE_API_HOST_SUFFIX = ".googleapis.com"


def vertex_credentials(base_url: str | None) -> Credentials | None:
    """None (the SDK then uses Application Default Credentials: on Cloud Functions the
    function's service account) for Google's own endpoints; a static placeholder token
    for any other GEMINI_BASE_URL, so that a real access token is only ever sent to
    *.googleapis.com and the stand-in needs no credentials on the machine."""
    if base_url is None:
        return None
    host = (urlsplit(base_url).hostname or "").lower()
    if host.endswith(GOOGLE_API_HOST_SUFFIX):
        return None
    from google.oauth2.credentials import Credentials as StaticToken

    return StaticToken(token=PLACEHOLDER_VERTEX_TOKEN)
