"""PDFs for Gemini on Vertex AI: the Cloud Storage object itself (issue 12).

Vertex AI reads ``gs://`` URIs directly (its service agent needs read access to the
bucket: infra/deploy.sh grants it), so there is nothing to upload, share or delete:
the part is the task's own object, ``request.pdf.gcs_uri``. A missing object, or one
Vertex AI may not read, fails the strategy call itself (400 or 403), which the worker
turns into the task's error like any other answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from google.genai import types

from shared.gemini import GeminiError
from shared.models import PdfRef
from shared.uploads import PDF_MIME_TYPE, split_gcs_uri


@dataclass(frozen=True)
class GcsPdf:
    uri: str
    mime_type: str = PDF_MIME_TYPE

    def part(self) -> types.Part:
        return types.Part.from_uri(file_uri=self.uri, mime_type=self.mime_type)


@contextmanager
def pdf_for_gemini(pdf: PdfRef, *, task_id: str, deadline: float) -> Iterator[GcsPdf]:
    """The PDF as Vertex AI reads it, for the duration of the block (nothing to clean up).

    ``task_id`` and ``deadline`` are the port's: the object is read by Vertex AI within
    the strategy call, whose own deadline applies.
    """
    del task_id, deadline
    try:
        split_gcs_uri(pdf.gcs_uri)
    except ValueError:
        # Never happens for a PDF this system stored; refuse rather than send Vertex AI
        # something it would read as another kind of URL.
        raise GeminiError(
            "pdf_unreadable", "The PDF's storage location is not valid", retryable=False
        ) from None
    yield GcsPdf(uri=pdf.gcs_uri)
