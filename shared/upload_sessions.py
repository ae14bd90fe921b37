"""Upload sessions for large PDFs (SPEC §2.4): POST /v1/uploads, then submit with upload_id.

The server picks the object (``uploads/{uid}/{upload_id}.pdf``) and opens a
resumable Cloud Storage session for it; the client PUTs the bytes straight to
Cloud Storage, so they never pass through a function's 32 MiB request limit.
Size and magic bytes are checked when the upload is used, and a rejected
upload is deleted.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import clients
from shared.errors import InvalidArgument, PayloadTooLarge
from shared.models import PdfRef
from shared.settings import FILE_API_CHUNK_BYTES, get_settings
from shared.uploads import PDF_MAGIC, PDF_MIME_TYPE, clean_filename

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference


class UploadRequest(BaseModel):
    """What a client may send to POST /v1/uploads (all optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    size_bytes: int | None = Field(default=None, ge=1)
    filename: str | None = Field(default=None, max_length=1024)


class UploadSession(BaseModel):
    """The 201 answer: where to PUT the PDF, and until when."""

    upload_id: str
    upload_url: str
    expires_at: datetime


def _session_ref(upload_id: str) -> DocumentReference:
    collection = get_settings().upload_sessions_collection
    return clients.firestore().collection(collection).document(upload_id)


def object_name(uid: str, upload_id: str) -> str:
    return f"uploads/{uid}/{upload_id}.pdf"


def parse_upload_request(data: object) -> UploadRequest:
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    try:
        return UploadRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else None
        raise InvalidArgument(f"{field}: {first['msg'].lower()}", field=field) from None


def create_session(uid: str, request: UploadRequest, origin: str | None) -> UploadSession:
    settings = get_settings()
    if request.size_bytes is not None and request.size_bytes > settings.max_upload_pdf_bytes:
        raise PayloadTooLarge(
            f"size_bytes: at most {settings.max_upload_pdf_bytes} bytes", field="size_bytes"
        )
    upload_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.upload_session_ttl_s)
    blob = clients.storage().bucket(settings.bucket_name).blob(object_name(uid, upload_id))
    # if_generation_match=0: the session can create the object, never replace one.
    url = blob.create_resumable_upload_session(
        content_type=PDF_MIME_TYPE, size=request.size_bytes, origin=origin, if_generation_match=0
    )
    _session_ref(upload_id).create(
        {
            "uid": uid,
            "object": object_name(uid, upload_id),
            "filename": clean_filename(request.filename),
            "created_at": now,
            "expires_at": expires_at,
        }
    )
    return UploadSession(upload_id=upload_id, upload_url=url, expires_at=expires_at)


def use_upload(uid: str, upload_id: str) -> PdfRef:
    """The uploaded PDF of ``uid``'s session, checked; a bad upload is deleted."""
    settings = get_settings()
    snapshot = _session_ref(upload_id).get()
    session = snapshot.to_dict() if snapshot.exists else None
    # A stranger's session is as unknown as a missing one.
    if session is None or session["uid"] != uid or session["expires_at"] <= datetime.now(UTC):
        raise InvalidArgument("upload_id: no such upload session", field="upload_id")
    bucket = clients.storage().bucket(settings.bucket_name)
    blob = bucket.get_blob(session["object"])
    if blob is None:
        raise InvalidArgument("upload_id: nothing has been uploaded yet", field="upload_id")
    try:
        if (blob.size or 0) > settings.max_upload_pdf_bytes:
            raise PayloadTooLarge(
                f"pdf: must be at most {settings.max_upload_pdf_bytes} bytes", field="pdf"
            )
        if blob.download_as_bytes(start=0, end=len(PDF_MAGIC) - 1) != PDF_MAGIC:
            raise InvalidArgument("pdf: is not a PDF file (missing %PDF- header)", field="pdf")
    except (InvalidArgument, PayloadTooLarge):
        blob.delete()
        _session_ref(upload_id).delete()
        raise
    return PdfRef(
        gcs_uri=f"gs://{settings.bucket_name}/{session['object']}",
        size_bytes=blob.size or 0,
        sha256=_sha256(blob),
        filename=session.get("filename"),
    )


def _sha256(blob: object) -> str:
    """Hash the object in chunks: a 50 MiB PDF never sits in memory whole."""
    digest = hashlib.sha256()
    with blob.open("rb", chunk_size=FILE_API_CHUNK_BYTES) as reader:  # type: ignore[attr-defined]
        while chunk := reader.read(FILE_API_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
