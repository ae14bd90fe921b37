"""Building a GenerateContentResponse for a call, and cutting it into stream events."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import secrets
from urllib.parse import urlsplit

from .calls import GenerateCall, Shaping, find_urls, violate_schema
from .common import JSON, MARKER
from .images import image_dimensions, make_jpeg, make_png
from .models import ServedModel
from .schema_sample import SampleMaker
from .strategy_sample import is_strategy_schema, strategy_sample

# Safety ratings as the real API sends them with a SAFETY block (one category over the line).
BLOCKED_SAFETY_RATINGS: tuple[JSON, ...] = (
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
)
IMAGE_OUTPUT_TOKENS = 1290  # what one generated image costs as output tokens
GROUNDING_REDIRECT = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
SEARCH_SITES = ("standin-sample.example", "blog.standin-sample.example")


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
