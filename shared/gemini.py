"""Gemini calls through the official ``google-genai`` SDK (SPEC §4).

The SDK retries 408/429/5xx and transport errors itself, with exponential
backoff and jitter from the settings; what still fails comes out of here as a
``GeminiError`` that says whether a later attempt could succeed.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from google.auth import exceptions as google_auth_exceptions
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import ValidationError

from shared import abortable, clients
from shared.log import get_logger
from shared.models import MarketingStrategy, Source, SourceKind, TaskRequest, Usage
from shared.prompts import SYSTEM_INSTRUCTION, build_prompt, image_prompt
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.genai.types import GenerateContentResponse

T = TypeVar("T")
log = get_logger("gemini")
# (stage, message, percent) → None; the worker throttles the writes.
ProgressCallback = Callable[[str, str, int], None]
# A strategy's JSON is a few thousand characters: the scale of the progress estimate.
EXPECTED_STRATEGY_CHARS = 4000
# What the SDK retries, and what a later attempt may retry (499 included).
RETRYABLE_STATUS = clients.RETRYABLE_GEMINI_STATUS
# Error codes are built from the HTTP status, never from the answer's status text: Google's
# front end may answer HTML, and the SDK then takes the reason phrase ("Service
# Unavailable") as the status. The canonical names of google.rpc.Code, by HTTP status.
STATUS_CODE_NAMES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "aborted",
    429: "resource_exhausted",
    499: "cancelled",
    500: "internal",
    501: "unimplemented",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
}
# The code of a call its attempt stopped (the task was cancelled or taken over).
STOPPED = "gemini_call_stopped"
URL_STATUS_NAMES = {
    "URL_RETRIEVAL_STATUS_SUCCESS": "retrieved",
    "URL_RETRIEVAL_STATUS_ERROR": "error",
    "URL_RETRIEVAL_STATUS_PAYWALL": "paywall",
    "URL_RETRIEVAL_STATUS_UNSAFE": "unsafe",
}


class GeminiError(Exception):
    """A Gemini failure after the SDK's own retries, in words a user can read.

    ``retryable``: a later attempt (a Pub/Sub redelivery) may succeed.
    ``once``: retry it at most once per task (an unusable answer is paid for, and
    one that comes twice is likely to come again).
    """

    def __init__(self, code: str, message: str, *, retryable: bool, once: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.once = once
        # Set when Gemini answered (and billed) but the answer was unusable.
        self.usage: Usage | None = None


@dataclass(frozen=True)
class StrategyAnswer:
    strategy: MarketingStrategy
    usage: Usage
    model: str
    sources: list[Source] = field(default_factory=list)
    search_entry_point: str | None = None


def call_options(timeout_s: float, attempts: int) -> types.HttpOptions:
    """One call's deadline (the SDK sends it as X-Server-Timeout) and its tries."""
    return clients.gemini_http_options(timeout_s=timeout_s, attempts=attempts)


def generate_strategy(
    request: TaskRequest,
    *,
    file_parts: list[types.Part] | None = None,
    on_progress: ProgressCallback | None = None,
    on_text: Callable[[str], None] | None = None,
    deadline: float | None = None,
) -> StrategyAnswer:
    """The strategy call, streamed so that progress follows the model's output."""
    settings = get_settings()
    tools: list[Any] = []
    if request.urls:
        tools.append(types.Tool(url_context=types.UrlContext()))
    if request.grounding:
        tools.append(types.Tool(google_search=types.GoogleSearch()))
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM_INSTRUCTION,
        response_mime_type="application/json",
        response_schema=MarketingStrategy,
        tools=tools or None,
        # Bounds thinking and answer together: the task's worst-case cost (shared/costs.py).
        max_output_tokens=settings.gemini_max_output_tokens,
        # SDK 3.x would otherwise resend a stream that ended for CONTINUATION, silently,
        # with a fresh deadline that no budget counts: check_answer fails it instead.
        automatic_continuation=False,
        http_options=call_options(
            settings.gemini_strategy_timeout_s, settings.gemini_strategy_max_attempts
        ),
    )
    contents: list[Any] = [*(file_parts or []), build_prompt(request)]
    ended = threading.Event()  # the timer gave up on this call: report nothing more

    def stream() -> list[GenerateContentResponse]:
        chunks = []
        written = 0
        for chunk in clients.gemini().models.generate_content_stream(
            model=settings.gemini_text_model, contents=contents, config=config
        ):
            if ended.is_set():
                break
            chunks.append(chunk)
            if deadline is not None and time.monotonic() > deadline:
                # The server ends a call at its X-Server-Timeout; this guards the
                # attempt's lease against one that keeps a stream trickling.
                raise GeminiError(
                    "gemini_deadline_exceeded",
                    "Gemini took longer than this attempt may; trying again shortly",
                    retryable=True,
                )
            text = _text_of(chunk)
            written += len(text)
            if on_text is not None:
                on_text(text)
            if on_progress is not None:
                share = min(written / EXPECTED_STRATEGY_CHARS, 1.0)
                on_progress("writing_strategy", "Writing the strategy", 20 + round(45 * share))
        return chunks

    limit = time.monotonic() + settings.strategy_call_worst_case_s()
    chunks = call_gemini(
        lambda: within(stream, min(limit, deadline or limit), ended),
        model=settings.gemini_text_model,
        setting="GEMINI_TEXT_MODEL",
    )
    strategy = _paid_for(chunks, lambda: _parsed_strategy(chunks))
    last = chunks[-1] if chunks else None
    return StrategyAnswer(
        strategy=strategy,
        usage=usage_of(_last_with_usage(chunks)),
        model=(last.model_version if last else None) or settings.gemini_text_model,
        sources=_merged_sources(chunks),
        search_entry_point=_search_entry_point(chunks),
    )


def _paid_for(chunks: list[GenerateContentResponse], use: Callable[[], T]) -> T:
    """``use()`` of an answer Gemini billed; an unusable one's error says what it cost."""
    try:
        return use()
    except GeminiError as exc:
        exc.usage = usage_of(_last_with_usage(chunks))
        raise


def within(send: Callable[[], T], limit: float, ended: threading.Event | None = None) -> T:
    """`send()`, given up at `limit` (monotonic). httpx's timeouts bound each read, not
    a whole call: a stream that trickles, or stalls and resumes, could outlast the
    attempt. The call runs in a thread of its own; past the limit the attempt moves on
    (retryable), `ended` tells the call to stop reporting, and the call's reads are
    stopped (shared/abortable.py): its connection closes then, and Gemini stops
    generating (and billing) for it, rather than at its next event or its own deadline
    (X-Server-Timeout)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, send()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))
        finally:
            abortable.thread_done()

    # In the caller's context: its log fields (task_id) and anything else set there.
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(run,), name="gemini-call", daemon=True)
    # The attempt's stopper (a cancel while it streams) ends this call's reads at once.
    stopper = abortable.current.get()
    worker.start()
    if stopper is not None:
        stopper.enter(worker)
    try:
        worker.join(max(0.0, limit - time.monotonic()))
    finally:
        if stopper is not None:
            stopper.leave(worker)
    if not outcome:
        if ended is not None:
            ended.set()
        abortable.abort(worker)
        raise GeminiError(
            "gemini_deadline_exceeded",
            "Gemini took longer than this attempt may; trying again shortly",
            retryable=True,
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result


def _answer_parts(response: GenerateContentResponse) -> list[types.Part]:
    """The answer's parts; parts marked ``thought`` are the model's thinking, not it."""
    candidate = response.candidates[0] if response.candidates else None
    parts = (candidate.content.parts if candidate and candidate.content else None) or []
    return [part for part in parts if not part.thought]


def _text_of(response: GenerateContentResponse) -> str:
    return "".join(part.text for part in _answer_parts(response) if part.text)


def _last_with_usage(chunks: list[GenerateContentResponse]) -> GenerateContentResponse | None:
    with_usage = [c for c in chunks if c.usage_metadata is not None]
    return with_usage[-1] if with_usage else None


def _merged_sources(chunks: list[GenerateContentResponse]) -> list[Source]:
    merged: dict[str, Source] = {}
    for chunk in chunks:
        for source in sources_of(chunk):
            merged.setdefault(source.url, source)
    return list(merged.values())


def _search_entry_point(chunks: list[GenerateContentResponse]) -> str | None:
    """Google's rendered search suggestions: its terms require showing them with a
    grounded answer."""
    for chunk in reversed(chunks):
        candidate = chunk.candidates[0] if chunk.candidates else None
        grounding = candidate.grounding_metadata if candidate else None
        entry = grounding.search_entry_point if grounding else None
        if entry is not None and entry.rendered_content:
            return entry.rendered_content
    return None


@dataclass(frozen=True)
class ImageAnswer:
    data: bytes
    mime_type: str
    width: int | None
    height: int | None
    usage: Usage
    model: str


def generate_image(strategy: MarketingStrategy) -> ImageAnswer:
    """One call to the image-output model, prompted with the strategy's visual brief."""
    settings = get_settings()
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio=settings.gemini_image_aspect_ratio),
        max_output_tokens=settings.gemini_max_output_tokens,
        automatic_continuation=False,
        http_options=call_options(settings.gemini_image_timeout_s, settings.gemini_max_attempts),
    )
    limit = time.monotonic() + settings.image_call_worst_case_s()
    response = call_gemini(
        lambda: within(
            lambda: clients.gemini().models.generate_content(
                model=settings.gemini_image_model, contents=image_prompt(strategy), config=config
            ),
            limit,
        ),
        model=settings.gemini_image_model,
        setting="GEMINI_IMAGE_MODEL",
    )

    def usable() -> tuple[bytes, str]:
        check_answer([response])
        return preview_of(_answer_parts(response))

    data, mime_type = _paid_for([response], usable)
    width, height = image_size(data)
    return ImageAnswer(
        data=data,
        mime_type=mime_type,
        width=width,
        height=height,
        usage=usage_of(response),
        model=response.model_version or settings.gemini_image_model,
    )


def preview_of(parts: list[types.Part]) -> tuple[bytes, str]:
    """The image to keep: the last one (image models may show interim drafts), of a type
    browsers show without running anything (JPEG, PNG, WebP: never SVG, which carries
    script), whose bytes are what its type says. Else ``gemini_no_image``."""
    images = [
        part.inline_data
        for part in parts
        if part.inline_data is not None
        and part.inline_data.data
        and (part.inline_data.mime_type or "").startswith("image/")
    ]
    if not images:
        raise GeminiError("gemini_no_image", "Gemini answered without an image", retryable=False)
    blob = images[-1]
    assert blob.data is not None
    mime_type = (blob.mime_type or "").split(";")[0].strip().lower()
    if PREVIEW_MAGIC.get(mime_type) is None or not PREVIEW_MAGIC[mime_type](blob.data):
        raise GeminiError(
            "gemini_no_image",
            f"Gemini answered with an image we do not show ({mime_type or 'no type'})",
            retryable=False,
        )
    return blob.data, mime_type


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers (baseline, progressive, lossless...) carry the size;
# 0xC4 (Huffman tables), 0xC8 (reserved) and 0xCC (arithmetic coding) do not.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


# The preview types we store and serve, each with the check that its bytes are of it.
PREVIEW_MAGIC: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda data: data.startswith(JPEG_SOI),
    "image/png": lambda data: data.startswith(PNG_SIGNATURE),
    "image/webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
}


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from a PNG or JPEG header (other formats: unknown)."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(JPEG_SOI):
        return _jpeg_size(data)
    return None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    """Walk the JPEG's marker segments to its start-of-frame."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None, None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if marker in JPEG_FRAME_MARKERS:
            frame = data[offset + 4 : offset + 9]
            if len(frame) < 5:
                return None, None
            height = int.from_bytes(frame[1:3], "big")
            width = int.from_bytes(frame[3:5], "big")
            return width, height
        if marker == 0xDA or length < 2:  # image data before any frame: malformed
            return None, None
        offset += 2 + length
    return None, None


def call_gemini(
    send: Callable[[], T], *, model: str | None = None, setting: str | None = None
) -> T:
    """Run one SDK call; its failures come out as ``GeminiError``.

    ``model`` and ``setting`` name the configured model id, so that a 404 (the API
    does not serve that id) tells the operator what to change.
    """
    try:
        return send()
    except genai_errors.APIError as exc:
        status = int(exc.code or 0)
        if status == 404 and model is not None and names_the_model(exc, model):
            # Vertex AI serves a model at some locations only (docs/gemini.md, "Vertex AI").
            where = (
                " or GEMINI_VERTEX_LOCATION to a location that serves it"
                if get_settings().uses_vertex
                else ""
            )
            log.error(
                f"Gemini does not serve the model {model!r}: set {setting} to a served id{where}",
                extra={"model": model, "setting": setting, "outcome": "gemini_model_not_found"},
            )
            raise GeminiError(
                "gemini_model_not_found",
                f"Gemini does not serve the model '{model}'. An operator must set {setting} "
                f"to a model id the API serves{where} (`make check-gemini` checks them).",
                retryable=False,
            ) from exc
        retryable = status in RETRYABLE_STATUS
        raise GeminiError(
            error_code(status),
            f"Gemini answered {status} {STATUS_CODE_NAMES.get(status, '').upper()}".strip()
            + ("; the service is busy or failing, try again later" if retryable else ""),
            retryable=retryable,
        ) from exc
    except google_auth_exceptions.GoogleAuthError as exc:
        # Vertex AI: the service's own credentials (ADC) could not be had or refreshed, e.g.
        # the metadata server did not answer. Never the caller's fault; an operator's if it
        # lasts (no ADC at all outside Google Cloud).
        log.error(
            f"no access token for Vertex AI (Application Default Credentials): "
            f"{type(exc).__name__}",
            extra={"outcome": "gemini_credentials"},
        )
        raise GeminiError(
            "gemini_credentials",
            "The service could not authenticate to Gemini; try again later",
            retryable=True,
        ) from exc
    except abortable.CallAborted as exc:
        raise GeminiError(
            STOPPED, "The call was stopped: the task was cancelled", retryable=False
        ) from exc
    except Exception as exc:
        if _is_transport_error(exc):
            raise GeminiError(
                "gemini_unreachable",
                "Gemini did not answer in time; try again later",
                retryable=True,
            ) from exc
        raise


def error_code(status: int) -> str:
    """``gemini_<canonical status>`` from the HTTP status alone (``gemini_http_418``
    for one without a canonical name)."""
    return f"gemini_{STATUS_CODE_NAMES.get(status, f'http_{status}')}"


def names_the_model(exc: genai_errors.APIError, model: str) -> bool:
    """Whether a 404 is about the model id: ``models/{id} is not found ...`` on the
    Developer API, ``Publisher Model ... {id} was not found`` on Vertex AI. Any other
    404 (a file, a path) is not a configuration error."""
    message = str(exc.message or "")
    return f"models/{model}" in message or ("Publisher Model" in message and model in message)


def _is_transport_error(exc: Exception) -> bool:
    # The SDK surfaces timeouts and connection errors as the transport's own
    # exceptions (httpx or its fork httpx2), not as APIError.
    module = type(exc).__module__.split(".")[0]
    return module in {"httpx", "httpx2", "httpcore", "aiohttp"} or isinstance(exc, TimeoutError)


# Finish reasons that mean Gemini's safety or policy filters withheld the answer.
BLOCKED_FINISH_REASONS = frozenset(
    {
        types.FinishReason.SAFETY,
        types.FinishReason.PROHIBITED_CONTENT,
        types.FinishReason.BLOCKLIST,
        types.FinishReason.SPII,
        types.FinishReason.RECITATION,
        types.FinishReason.IMAGE_SAFETY,
        types.FinishReason.IMAGE_PROHIBITED_CONTENT,
        types.FinishReason.IMAGE_RECITATION,
        types.FinishReason.MODEL_ARMOR,
    }
)


def check_answer(chunks: list[GenerateContentResponse]) -> None:
    """Refuse an answer that Gemini blocked, cut short or ended for another reason."""
    for chunk in chunks:
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise GeminiError(
                "content_blocked",
                "Gemini's safety filters refused this brief "
                f"({_reason_name(feedback.block_reason)}). Rephrase it and submit again.",
                retryable=False,
            )
    finishes = [c.candidates[0].finish_reason for c in chunks if c.candidates]
    finish = next((f for f in reversed(finishes) if f is not None), None)
    if finish is None or finish == types.FinishReason.STOP:
        return
    if finish in BLOCKED_FINISH_REASONS:
        raise GeminiError(
            "content_blocked",
            f"Gemini's safety filters withheld the answer ({_reason_name(finish)}). "
            "Rephrase the brief and submit again.",
            retryable=False,
        )
    if finish == types.FinishReason.CONTINUATION:
        # automatic_continuation is off: the rest would be another paid request with a
        # deadline of its own, past what the attempt counts.
        raise GeminiError(
            "answer_truncated",
            "Gemini stopped at its per-request limit before the answer was complete. "
            "A shorter or more focused brief should fit.",
            retryable=False,
        )
    if finish == types.FinishReason.MAX_TOKENS:
        raise GeminiError(
            "answer_truncated",
            "Gemini's answer was longer than it may write and was cut off. "
            "A shorter or more focused brief should fit.",
            retryable=False,
        )
    raise GeminiError(
        "gemini_unusable_answer",
        f"Gemini stopped without a usable answer ({_reason_name(finish)})",
        retryable=True,
        once=True,
    )


def _reason_name(reason: Any) -> str:
    return str(getattr(reason, "name", reason))


def _parsed_strategy(chunks: list[GenerateContentResponse]) -> MarketingStrategy:
    check_answer(chunks)
    try:
        return MarketingStrategy.model_validate_json("".join(_text_of(c) for c in chunks))
    except ValidationError:
        raise GeminiError(
            "gemini_schema_mismatch",
            "Gemini's answer did not match the strategy schema",
            retryable=True,
            once=True,
        ) from None


def usage_of(response: GenerateContentResponse | None) -> Usage:
    """Billed tokens. Thoughts are billed as output and tool-use prompts (the pages
    url_context read, search results) as input, so prompt + output = total."""
    meta = response.usage_metadata if response is not None else None
    if meta is None:
        return Usage()
    tool_use = meta.tool_use_prompt_token_count or 0
    prompt = (meta.prompt_token_count or 0) + tool_use
    thoughts = meta.thoughts_token_count or 0
    output = (meta.candidates_token_count or 0) + thoughts
    images = sum(
        detail.token_count or 0
        for detail in meta.candidates_tokens_details or []
        if detail.modality == types.MediaModality.IMAGE
    )
    return Usage(
        prompt_tokens=prompt,
        output_tokens=output,
        thoughts_tokens=thoughts,
        total_tokens=prompt + output,
        tool_use_prompt_tokens=tool_use,
        image_tokens=images,
    )


def sources_of(response: GenerateContentResponse) -> list[Source]:
    """Sources from URL context metadata and search grounding, without repeats.

    Search sources are what Google gives: an expiring redirect link, titled with
    the site's domain.
    """
    found: dict[str, Source] = {}
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None:
        return []
    url_meta = candidate.url_context_metadata
    for item in (url_meta.url_metadata if url_meta else None) or []:
        if item.retrieved_url:
            status = str(item.url_retrieval_status.value) if item.url_retrieval_status else ""
            found[item.retrieved_url] = Source(
                url=item.retrieved_url,
                status=URL_STATUS_NAMES.get(status, "unknown"),
                kind=SourceKind.URL_CONTEXT,
            )
    grounding = candidate.grounding_metadata
    for chunk in (grounding.grounding_chunks if grounding else None) or []:
        web = chunk.web
        if web and web.uri and web.uri not in found:
            found[web.uri] = Source(
                url=web.uri,
                status="cited",
                kind=SourceKind.SEARCH,
                domain=web.domain or web.title,
            )
    return list(found.values())
