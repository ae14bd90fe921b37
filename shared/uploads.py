"""PDF uploads in Cloud Storage (SPEC §2.2): names are made here, never by clients."""

from __future__ import annotations

import hashlib

from shared import clients
from shared.errors import InvalidArgument, PayloadTooLarge
from shared.models import PdfRef
from shared.settings import get_settings

PDF_MAGIC = b"%PDF-"
PDF_MIME_TYPE = "application/pdf"
MAX_FILENAME_CHARS = 255


def check_pdf(data: bytes, *, max_bytes: int) -> None:
    """Refuse what is not a PDF by its bytes, whatever its name says."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"pdf: must be at most {max_bytes} bytes", field="pdf")
    if not data.startswith(PDF_MAGIC):
        raise InvalidArgument("pdf: is not a PDF file (missing %PDF- header)", field="pdf")


def source_prefix(task_id: str) -> str:
    """Where the PDF a request came with lives (shared/erasure.py deletes it all)."""
    return f"uploads/{task_id}/"


def source_object_name(task_id: str) -> str:
    return f"{source_prefix(task_id)}source.pdf"


def store_pdf(task_id: str, data: bytes, filename: str | None) -> PdfRef:
    """Write the PDF once (generation precondition 0: never overwrite)."""
    settings = get_settings()
    name = source_object_name(task_id)
    blob = clients.storage().bucket(settings.bucket_name).blob(name)
    blob.upload_from_string(data, content_type=PDF_MIME_TYPE, if_generation_match=0)
    return PdfRef(
        gcs_uri=f"gs://{settings.bucket_name}/{name}",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=clean_filename(filename),
    )


# The preview types we keep and serve: what browsers show without running anything
# (never SVG); shared/gemini.py checks a preview's bytes are of its type.
PREVIEW_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# The preview's file name extension by its type (current image models answer JPEG).
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def preview_prefix(task_id: str) -> str:
    return f"results/{task_id}/"


def preview_object_name(task_id: str, mime_type: str) -> str:
    extension = IMAGE_EXTENSIONS.get(mime_type, "img")
    return f"{preview_prefix(task_id)}preview.{extension}"


def store_preview(task_id: str, data: bytes, mime_type: str) -> str:
    """Write the preview image with its own type; a retry of the same task overwrites
    its own preview."""
    settings = get_settings()
    name = preview_object_name(task_id, mime_type)
    clients.storage().bucket(settings.bucket_name).blob(name).upload_from_string(
        data, content_type=mime_type
    )
    return f"gs://{settings.bucket_name}/{name}"


def read_object(gcs_uri: str) -> bytes | None:
    from google.api_core.exceptions import NotFound as ObjectNotFound

    bucket, name = split_gcs_uri(gcs_uri)
    try:
        data: bytes = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    except ObjectNotFound:
        return None
    return data


def delete_object(gcs_uri: str) -> None:
    bucket, name = split_gcs_uri(gcs_uri)
    clients.storage().bucket(bucket).blob(name).delete()


def split_gcs_uri(gcs_uri: str) -> tuple[str, str]:
    if not gcs_uri.startswith("gs://") or "/" not in gcs_uri[5:]:
        raise ValueError(f"not a gs:// object URI: {gcs_uri!r}")
    bucket, name = gcs_uri[5:].split("/", 1)
    return bucket, name


def clean_filename(filename: str | None) -> str | None:
    """The client's file name, for display only: no path, no control characters."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(c for c in base if c.isprintable())
    return printable[:MAX_FILENAME_CHARS] or None
