"""Issue 18: the preview is an image browsers show without running anything, and the
status function serves it as nothing else."""

from __future__ import annotations

import io

import pytest
from google.genai import types
from PIL import Image

from shared import gemini
from shared.gemini import GeminiError, preview_of
from shared.uploads import PREVIEW_TYPES


def picture(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "teal").save(buffer, format=kind)
    return buffer.getvalue()


def part(data: bytes, mime_type: str) -> types.Part:
    return types.Part(inline_data=types.Blob(data=data, mime_type=mime_type))


@pytest.mark.parametrize(
    ("kind", "mime_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_jpeg_png_and_webp_are_kept(kind: str, mime_type: str) -> None:
    data = picture(kind)
    assert preview_of([part(data, mime_type)]) == (data, mime_type)


def test_the_last_image_is_the_one_kept() -> None:
    draft, final = picture("PNG"), picture("JPEG")
    assert preview_of([part(draft, "image/png"), part(final, "image/jpeg")]) == (
        final,
        "image/jpeg",
    )


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (SVG, "image/svg+xml"),  # script in an image
        (SVG, "image/png"),  # a type that lies about the bytes
        (picture("GIF"), "image/gif"),  # not on the list
        (picture("PNG"), "image/jpeg"),  # the wrong one of ours
    ],
    ids=["svg", "svg-as-png", "gif", "png-as-jpeg"],
)
def test_any_other_image_is_no_preview(data: bytes, mime_type: str) -> None:
    with pytest.raises(GeminiError) as refused:
        preview_of([part(data, mime_type)])
    assert refused.value.code == "gemini_no_image" and not refused.value.retryable


def test_the_types_checked_are_the_types_served() -> None:
    assert set(gemini.PREVIEW_MAGIC) == PREVIEW_TYPES
