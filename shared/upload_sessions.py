"""Upload sessions for large PDFs (SPEC §2.4): POST /v1/uploads, then submit with upload_id.

The server picks the object (``uploads/{uid}/{upload_id}.pdf``) and opens a
resumable Cloud Storage session for it, of exactly the announced ``size_bytes``
(at most MAX_UPLOAD_PDF_BYTES); the client PUTs the bytes straight to Cloud
Storage, so they never pass through a function's 32 MiB request limit. Size and
magic bytes are checked when the upload is used, and a rejected upload is deleted.

A user opens at most MAX_UPLOAD_SESSIONS_PER_USER_PER_HOUR sessions an hour, and the
whole project at most MAX_UPLOAD_SESSIONS_PER_HOUR (sharded, summed at the commit's
time: counted like the task caps, ``shared.quotas``); as a session lives an hour, at
most twice that are open at once. A session expires after
UPLOAD_SESSION_TTL_S: the sweeper then cancels its Cloud Storage session (whose URL
would otherwise stay writable for a week), deletes the object unless a task uses
it, and deletes the session (a TTL policy on ``expires_at`` too). Browsers get a
session only from an origin in CORS_ORIGINS.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from google.api_core.exceptions import NotFound
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import clients, quotas
from shared.errors import InvalidArgument, PayloadTooLarge
from shared.models import PdfRef
from shared.settings import FILE_API_CHUNK_BYTES, get_settings
from shared.uploads import PDF_MAGIC, PDF_MIME_TYPE, clean_filename, split_gcs_uri

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

# The share of the sweeper's timeout (SWEEP_TIMEOUT_S) that closing sessions may use:
# the rest is for the tasks' sweep before it and the answer.
SWEEP_SHARE = 0.5


class UploadRequest(BaseModel):
    """What a client may send to POST /v1/uploads: the PDF's exact size, its name."""

    model_config = ConfigDict(extra="forbid", strict=True)

    size_bytes: int = Field(ge=1)
    filename: str | None = Field(default=None, max_length=1024)


class UploadSession(BaseModel):
    """The 201 answer: where to PUT the PDF, and until when."""

    upload_id: str
    upload_url: str
    expires_at: datetime


def _session_ref(upload_id: str) -> DocumentReference:
    collection = get_settings().upload_sessions_collection
    return clients.firestore().collection(collection).document(upload_id)


def user_prefix(uid: str) -> str:
    return f"uploads/{uid}/"


def object_name(uid: str, upload_id: str) -> str:
    return f"{user_prefix(uid)}{upload_id}.pdf"


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
    if request.size_bytes > settings.max_upload_pdf_bytes:
        raise PayloadTooLarge(
            f"size_bytes: at most {settings.max_upload_pdf_bytes} bytes", field="size_bytes"
        )
    if origin and origin.rstrip("/") not in settings.allowed_origins:
        # The session would answer CORS for that origin: only our own web app's.
        raise InvalidArgument("Origin: uploads are accepted from the Tinkerbell web app only")
    upload_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.upload_session_ttl_s)
    _count_session(uid, upload_id, now)
    blob = clients.storage().bucket(settings.bucket_name).blob(object_name(uid, upload_id))
    # if_generation_match=0: the session can create the object, never replace one;
    # size: Cloud Storage refuses any other length.
    url = blob.create_resumable_upload_session(
        content_type=PDF_MIME_TYPE,
        size=request.size_bytes,
        origin=origin or None,
        if_generation_match=0,
    )
    _session_ref(upload_id).create(
        {
            "uid": uid,
            "object": object_name(uid, upload_id),
            "filename": clean_filename(request.filename),
            "size_bytes": request.size_bytes,
            # Server-side only (clients cannot read this collection): to cancel it.
            "upload_url": url,
            "created_at": now,
            "expires_at": expires_at,
        }
    )
    return UploadSession(upload_id=upload_id, upload_url=url, expires_at=expires_at)


def _hour(now: datetime) -> tuple[int, int, datetime]:
    """The hour's number, the seconds left in it, its counters' expiry."""
    hour = int(now.timestamp() // 3600)
    window_end = datetime.fromtimestamp((hour + 1) * 3600, now.tzinfo)
    return hour, max(1, int((window_end - now).total_seconds())), window_end + quotas.COUNTER_EXPIRY


def _counters(uid: str, now: datetime) -> tuple[quotas.Counter, quotas.ShardedCounter]:
    settings = get_settings()
    hour, retry_after, expires = _hour(now)
    user = quotas.Counter(
        f"user-{quotas.user_key(uid)}-uploads-h{hour}",
        settings.max_upload_sessions_per_user_per_hour,
        f"at most {settings.max_upload_sessions_per_user_per_hour} upload sessions an hour",
        retry_after,
        expires,
    )
    project = quotas.ShardedCounter(
        f"project-uploads-h{hour}",
        settings.max_upload_sessions_per_hour,
        f"the service opens at most {settings.max_upload_sessions_per_hour} upload sessions "
        "an hour; try again later",
        retry_after,
        expires,
    )
    return user, project


def _count_session(uid: str, upload_id: str, now: datetime) -> None:
    """Count the new session, the user's and the project's, in one commit; over a cap,
    take both back and refuse (429)."""
    user, project = _counters(uid, now)
    shard = quotas.shard_of(upload_id)
    batch = clients.firestore().batch()
    batch.set(user.ref, user.change(+1), merge=True)
    batch.set(project.shard_ref(shard), project.change(+1), merge=True)
    results = batch.commit()
    refused = quotas.refusal([user], [int(results[0].transform_results[0].integer_value)])
    if refused is None and project.cap:
        assert batch.commit_time is not None  # set by a commit that succeeded
        refused = quotas.refusal([project], [project.total(batch.commit_time)])
    if refused is not None:
        undo = clients.firestore().batch()
        undo.set(user.ref, user.change(-1), merge=True)
        undo.set(project.shard_ref(shard), project.change(-1), merge=True)
        undo.commit()
        raise refused


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
    # Hashed once, at its first use, and kept with the session: a loop of submits of one
    # upload reads it once. Kept for this generation of the object only.
    sha256 = session.get("sha256") if session.get("generation") == blob.generation else None
    if sha256 is None:
        sha256 = _sha256(blob)
        _session_ref(upload_id).update({"sha256": sha256, "generation": blob.generation})
    return PdfRef(
        gcs_uri=f"gs://{settings.bucket_name}/{session['object']}",
        size_bytes=blob.size or 0,
        sha256=sha256,
        filename=session.get("filename"),
    )


def _sha256(blob: object) -> str:
    """Hash the object in chunks: a 50 MiB PDF never sits in memory whole."""
    digest = hashlib.sha256()
    with blob.open("rb", chunk_size=FILE_API_CHUNK_BYTES) as reader:  # type: ignore[attr-defined]
        while chunk := reader.read(FILE_API_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sweep_expired(now: datetime, *, page: int = 200, budget_s: float | None = None) -> int:
    """Close the sessions past their expiry, a page at a time until none is left or
    ``budget_s`` (by default most of the sweeper's timeout) is spent: cancel the Cloud
    Storage session, delete the object unless a task uses it, delete the session.
    Returns how many."""
    settings = get_settings()
    budget = settings.sweep_timeout_s * SWEEP_SHARE if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    closed = 0
    while time.monotonic() < deadline:
        done = _close_expired(now, page)
        closed += done
        if done < page:
            break
    return closed


def _close_expired(now: datetime, limit: int) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    settings = get_settings()
    sessions = clients.firestore().collection(settings.upload_sessions_collection)
    expired = sessions.where(filter=FieldFilter("expires_at", "<", now)).limit(limit).stream()
    closed = 0
    for snapshot in expired:
        session = snapshot.to_dict() or {}
        _cancel_upload(session.get("upload_url"))
        gcs_uri = f"gs://{settings.bucket_name}/{session.get('object', '')}"
        if session.get("object") and not used_by_a_task(gcs_uri):
            blob = clients.storage().bucket(settings.bucket_name).blob(session["object"])
            with contextlib.suppress(NotFound):
                blob.delete()
        snapshot.reference.delete()
        closed += 1
    return closed


def _cancel_upload(url: str | None) -> None:
    """A resumable session stays writable for a week; DELETE on it cancels it."""
    if not url:
        return
    import requests

    # On failure the object is still checked and deleted; the URL then expires.
    with contextlib.suppress(requests.RequestException):
        requests.delete(url, timeout=10)


def used_by_a_task(gcs_uri: str) -> bool:
    from google.cloud.firestore_v1.base_query import FieldFilter

    tasks = clients.firestore().collection(get_settings().tasks_collection)
    query = tasks.where(filter=FieldFilter("request.pdf.gcs_uri", "==", gcs_uri)).limit(1)
    return any(True for _ in query.stream())


# -- erasure (shared/erasure.py) ----------------------------------------------------------


def is_session_object(uid: str, gcs_uri: str) -> bool:
    """Whether a task's PDF is one of the user's upload-session objects."""
    return gcs_uri.startswith(f"gs://{get_settings().bucket_name}/{user_prefix(uid)}")


def delete_if_unused(gcs_uri: str) -> int:
    """Delete an upload's object once no task uses it and its session is closed (an open
    one is the sweeper's, at its expiry). Returns 1 if deleted."""
    upload_id = gcs_uri.rsplit("/", 1)[-1].removesuffix(".pdf")
    session = _session_ref(upload_id).get()
    if session.exists or used_by_a_task(gcs_uri):
        return 0
    bucket, name = split_gcs_uri(gcs_uri)
    try:
        clients.storage().bucket(bucket).blob(name).delete()
    except NotFound:
        return 0
    return 1


def close_sessions_of(uid: str) -> int:
    """Cancel and forget every upload session of ``uid`` (their objects are the caller's)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    sessions = clients.firestore().collection(get_settings().upload_sessions_collection)
    closed = 0
    for snapshot in sessions.where(filter=FieldFilter("uid", "==", uid)).stream():
        _cancel_upload((snapshot.to_dict() or {}).get("upload_url"))
        snapshot.reference.delete()
        closed += 1
    return closed
