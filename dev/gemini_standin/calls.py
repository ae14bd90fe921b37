"""Reading a generateContent request: what it asks for, what the real API refuses, and how
a fault rule may bend the answer."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .common import GENERATE, IMAGE, JSON, STREAM, ApiError, get_any, snake
from .models import ServedModel

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
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGE_FORMATS = ("jpeg", "png")


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
    # This answer's stream, in these many events so far apart (else the config's).
    stream_pieces: int | None = None
    stream_pause_s: float | None = None

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
