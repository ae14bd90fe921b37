"""How ``shared.gemini`` reads Gemini's answers: usage, images, sources, finish reasons.

The answers are the SDK's own types, shaped as the real API sends them (GEMINI_WIRE.md):
thinking tokens, JPEG images with thought parts, search grounding with redirect links.
"""

from __future__ import annotations

import io

import pytest
from google.genai import types
from PIL import Image

from shared.gemini import GeminiError, check_answer, image_size, sources_of, usage_of
from shared.models import SourceKind, Usage


def encoded(width: int, height: int, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, image_format, **options)
    return buffer.getvalue()


def answer(
    *,
    parts: list[types.Part] | None = None,
    finish: types.FinishReason | None = types.FinishReason.STOP,
    usage: types.GenerateContentResponseUsageMetadata | None = None,
    grounding: types.GroundingMetadata | None = None,
    url_context: types.UrlContextMetadata | None = None,
    block_reason: types.BlockedReason | None = None,
) -> types.GenerateContentResponse:
    candidate = types.Candidate(
        content=types.Content(role="model", parts=parts) if parts is not None else None,
        finish_reason=finish,
        grounding_metadata=grounding,
        url_context_metadata=url_context,
    )
    feedback = types.GenerateContentResponsePromptFeedback(block_reason=block_reason)
    return types.GenerateContentResponse(
        candidates=None if block_reason else [candidate],
        prompt_feedback=feedback if block_reason else None,
        usage_metadata=usage,
    )


# ------------------------------------------------------------------ usage


def test_thinking_tokens_are_billed_as_output() -> None:
    meta = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=1200,
        candidates_token_count=900,
        thoughts_token_count=2500,
        total_token_count=4600,
    )
    usage = usage_of(answer(usage=meta))
    assert usage == Usage(
        prompt_tokens=1200, output_tokens=3400, thoughts_tokens=2500, total_tokens=4600
    )
    assert usage.prompt_tokens + usage.output_tokens == usage.total_tokens


def test_tool_use_prompt_tokens_count_as_input() -> None:
    # url_context and search put what they read in front of the model: billed as input,
    # and part of Gemini's own total.
    meta = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=100,
        tool_use_prompt_token_count=3000,
        candidates_token_count=400,
        thoughts_token_count=600,
        total_token_count=4100,
    )
    usage = usage_of(answer(usage=meta))
    assert (usage.prompt_tokens, usage.output_tokens, usage.total_tokens) == (3100, 1000, 4100)


def test_usage_without_thoughts_and_missing_usage() -> None:
    meta = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=10, candidates_token_count=5, total_token_count=15
    )
    assert usage_of(answer(usage=meta)) == Usage(
        prompt_tokens=10, output_tokens=5, thoughts_tokens=0, total_tokens=15
    )
    assert usage_of(answer()) == Usage()
    assert usage_of(None) == Usage()


def test_usages_add_up_field_by_field() -> None:
    total = Usage(prompt_tokens=1, output_tokens=5, thoughts_tokens=3, total_tokens=6) + Usage(
        prompt_tokens=10, output_tokens=20, thoughts_tokens=7, total_tokens=30
    )
    assert total == Usage(prompt_tokens=11, output_tokens=25, thoughts_tokens=10, total_tokens=36)


# ------------------------------------------------------------------ image sizes


@pytest.mark.parametrize(("width", "height"), [(1, 1), (16, 9), (1344, 768), (768, 1344)])
@pytest.mark.parametrize(
    ("image_format", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 64}),  # an APP1 segment first
    ],
    ids=["png", "jpeg-baseline", "jpeg-progressive", "jpeg-exif"],
)
def test_image_size_reads_png_and_jpeg(
    width: int, height: int, image_format: str, options: dict[str, object]
) -> None:
    data = encoded(width, height, image_format, **options)
    assert image_size(data) == (width, height)
    assert image_size(data) == Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a....", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00", b"\x89PNG\r\n\x1a\n\x00"],
    ids=["empty", "gif", "jpeg-soi-only", "jpeg-cut", "png-cut"],
)
def test_image_size_of_other_or_broken_data_is_unknown(data: bytes) -> None:
    assert image_size(data) == (None, None)


def test_image_size_of_truncated_jpeg_frame_is_unknown() -> None:
    data = encoded(32, 16, "JPEG")
    frame = data.index(b"\xff\xc0")
    assert image_size(data[: frame + 6]) == (None, None)


# ------------------------------------------------------------------ sources


def test_search_sources_are_redirect_links_named_by_domain() -> None:
    redirect = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbC123"
    grounding = types.GroundingMetadata(
        web_search_queries=["cafes cluj"],
        grounding_chunks=[
            types.GroundingChunk(web=types.GroundingChunkWeb(uri=redirect, title="example.ro"))
        ],
        search_entry_point=types.SearchEntryPoint(rendered_content="<div>chips</div>"),
    )
    url_context = types.UrlContextMetadata(
        url_metadata=[
            types.UrlMetadata(
                retrieved_url="https://shop.example/",
                url_retrieval_status=types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_PAYWALL,
            )
        ]
    )
    sources = sources_of(answer(parts=[], grounding=grounding, url_context=url_context))
    by_url = {source.url: source for source in sources}
    assert by_url["https://shop.example/"].kind is SourceKind.URL_CONTEXT
    assert by_url["https://shop.example/"].status == "paywall"
    search = by_url[redirect]
    assert (search.kind, search.status, search.domain, search.title) == (
        SourceKind.SEARCH,
        "cited",
        "example.ro",
        None,
    )


# ------------------------------------------------------------------ finish reasons


@pytest.mark.parametrize(
    "finish",
    [
        types.FinishReason.SAFETY,
        types.FinishReason.PROHIBITED_CONTENT,
        types.FinishReason.BLOCKLIST,
        types.FinishReason.SPII,
        types.FinishReason.RECITATION,
    ],
)
def test_a_withheld_answer_is_content_blocked_and_final(finish: types.FinishReason) -> None:
    with pytest.raises(GeminiError) as caught:
        check_answer([answer(parts=[types.Part(text='{"a"')], finish=None), answer(finish=finish)])
    assert caught.value.code == "content_blocked"
    assert caught.value.retryable is False
    assert finish.name in caught.value.message


@pytest.mark.parametrize(
    "reason",
    [types.BlockedReason.SAFETY, types.BlockedReason.PROHIBITED_CONTENT, types.BlockedReason.OTHER],
)
def test_a_blocked_prompt_is_content_blocked(reason: types.BlockedReason) -> None:
    with pytest.raises(GeminiError) as caught:
        check_answer([answer(block_reason=reason)])
    assert (caught.value.code, caught.value.retryable) == ("content_blocked", False)
    assert "Rephrase" in caught.value.message


def test_max_tokens_is_a_truncated_answer() -> None:
    with pytest.raises(GeminiError) as caught:
        check_answer([answer(parts=[types.Part(text="{")], finish=types.FinishReason.MAX_TOKENS)])
    assert (caught.value.code, caught.value.retryable) == ("answer_truncated", False)


def test_another_finish_reason_is_retried_once() -> None:
    with pytest.raises(GeminiError) as caught:
        check_answer([answer(finish=types.FinishReason.MALFORMED_RESPONSE)])
    assert caught.value.retryable and caught.value.once


def test_a_normal_answer_passes() -> None:
    check_answer([answer(parts=[types.Part(text="{}")], finish=None), answer()])
