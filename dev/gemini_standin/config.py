"""The stand-in's global knobs (``/_standin/config``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .calls import IMAGE_FORMATS
from .common import JSON, STREAM_EVENT_PAUSE_S, ApiError, as_float
from .models import MODEL_ID_PATTERN, SERVED_MODELS, ServedModel, extra_model


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
    """Global knobs; ``latency_s`` applies to every generate call, give or take up to
    ``latency_jitter_s`` (uniformly drawn for each call: a load model such as 15 s ± 5 s).

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
            "latency_jitter_s",
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
    latency_jitter_s: float = 0.0
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
        jitter = as_float(body.get("latency_jitter_s", self.latency_jitter_s))
        processing = as_float(body.get("file_processing_s", self.file_processing_s))
        size = as_float(body.get("image_size", self.image_size))
        image_format = body.get("image_format", self.image_format)
        extra = body.get("extra_models", list(self.extra_models))
        withdrawn = body.get("withdrawn_models", list(self.withdrawn_models))
        if latency is None or latency < 0 or processing is None or processing < 0:
            raise ApiError(400, "latency_s and file_processing_s must be numbers >= 0")
        if jitter is None or not 0 <= jitter <= latency:
            raise ApiError(400, "latency_jitter_s must be a number from 0 to latency_s")
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
            jitter,
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
            "latency_jitter_s": self.latency_jitter_s,
            "file_processing_s": self.file_processing_s,
            "image_size": self.image_size,
            "image_format": self.image_format,
            "extra_models": list(self.extra_models),
            "withdrawn_models": list(self.withdrawn_models),
            "stream_pieces": self.stream_pieces,
            "stream_pause_s": self.stream_pause_s,
            "storage_emulator_host": self.storage_emulator_host,
        }

    def call_latency(self) -> float:
        """The latency of one generate call: ``latency_s`` give or take the jitter."""
        if not self.latency_jitter_s:
            return self.latency_s
        jitter = self.latency_jitter_s
        return self.latency_s + random.uniform(-jitter, jitter)  # noqa: S311 (a load model)

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
