"""Preview images (real, valid, tiny), drawn by Pillow from the request's digest.

The pattern is visible on purpose (a checkerboard in a colour of the digest, crossed by a
diagonal in its complement), so that a person looking at a preview sees a placeholder.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]


def _palette(digest: bytes) -> tuple[RGB, RGB, RGB]:
    """Base colour, a darker shade of it, and its complement as accent."""
    red, green, blue = digest[:3]
    return (
        (red, green, blue),
        (red // 2, green // 2, blue // 2),
        (255 - red, 255 - green, 255 - blue),
    )


def draw_placeholder(width: int, height: int, digest: bytes) -> Image.Image:
    base, shade, accent = _palette(digest)
    longer = max(width, height)
    cell = max(1, longer // 8)
    image = Image.new("RGB", (width, height), base)
    pen = ImageDraw.Draw(image)
    for top in range(0, height, cell):
        for left in range(0, width, cell):
            if (left // cell + top // cell) % 2:
                pen.rectangle((left, top, left + cell - 1, top + cell - 1), fill=shade)
    pen.line((0, 0, width - 1, height - 1), fill=accent, width=max(1, longer // 16))
    return image


def _encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def make_png(width: int, height: int, digest: bytes) -> bytes:
    """A ``width``×``height`` RGB PNG."""
    return _encoded(draw_placeholder(width, height, digest), "PNG", optimize=True)


def make_jpeg(width: int, height: int, digest: bytes) -> bytes:
    """A ``width``×``height`` baseline JFIF JPEG, as current image models answer."""
    return _encoded(draw_placeholder(width, height, digest), "JPEG", quality=90)


def image_dimensions(aspect_ratio: str | None, longer_side: int) -> tuple[int, int]:
    """Width and height for an ``imageConfig.aspectRatio``; the longer side is ``longer_side``."""
    across, down = (int(n) for n in (aspect_ratio or "1:1").split(":"))
    if across >= down:
        return longer_side, max(1, round(longer_side * down / across))
    return max(1, round(longer_side * across / down)), longer_side
