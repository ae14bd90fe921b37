"""The worker's Gemini, as one port (``shared.ports.Gemini``): the strategy and image
calls, and the PDF as the configured backend reads it.

The strategy and image calls are the same on both backends (``shared.clients.gemini``
builds the client GEMINI_BACKEND asks for). Only the PDF differs: the Gemini Developer
API reads it from its File API (``shared.gemini_files``: an upload shared by sha256
between concurrent tasks, deleted after use), Vertex AI from Cloud Storage directly
(``shared.gemini_gcs``: the task's own ``gs://`` object, nothing to upload or delete).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from shared import gemini_files, gemini_gcs
from shared.gemini import generate_image, generate_strategy
from shared.models import PdfRef
from shared.ports import PdfFile
from shared.settings import get_settings

__all__ = ["generate_image", "generate_strategy", "pdf_for_gemini"]


def pdf_for_gemini(
    pdf: PdfRef, *, task_id: str, deadline: float
) -> AbstractContextManager[PdfFile]:
    """The PDF for the duration of the block, by the backend in use (read per call, so
    that a process's settings decide, as they do for the client)."""
    if get_settings().uses_vertex:
        return gemini_gcs.pdf_for_gemini(pdf, task_id=task_id, deadline=deadline)
    return gemini_files.pdf_for_gemini(pdf, task_id=task_id, deadline=deadline)
