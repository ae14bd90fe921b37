"""The File API routes: resumable uploads (start, chunks, finalize), list, get and delete.

Only what the SDK uses is served: ``POST /upload/{ver}/files`` with ``X-Goog-Upload-Protocol:
resumable`` starts a session whose URL the chunks are posted to; every chunk answer says
``X-Goog-Upload-Status`` (a fault can leave it off, as real answers sometimes do).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from werkzeug.wrappers import Response

from .common import FILES, JSON, UPLOAD, ApiError, as_float, get_any
from .exchange import Exchange, error_answer, json_answer
from .faults import CHUNK_HAYSTACK
from .file_store import FileRecord

CHUNK_GRANULARITY = 8 * 1024 * 1024
FILE_ID = re.compile(r"[a-z0-9-]{1,40}")


def upload_start(exchange: Exchange, ver: str) -> Response:
    raw, body = exchange.read_raw_json()
    file_meta = body.get("file")
    file_meta = file_meta if isinstance(file_meta, dict) else {}
    display_name = get_any(file_meta, "displayName")
    exchange.note(display_name=display_name)
    protocol = (exchange.header("X-Goog-Upload-Protocol") or "").lower()
    command = (exchange.header("X-Goog-Upload-Command") or "").lower()
    if protocol != "resumable" or command != "start":
        raise ApiError(400, "the stand-in supports only resumable uploads (command start)")
    exchange.apply_fault(UPLOAD, f"{raw.decode('utf-8', errors='replace')}\n{exchange.target}")
    mime_type = (
        get_any(file_meta, "mimeType")
        or exchange.header("X-Goog-Upload-Header-Content-Type")
        or "application/octet-stream"
    )
    declared = as_float(exchange.header("X-Goog-Upload-Header-Content-Length"))
    record = FileRecord(
        file_id=_new_file_id(exchange, file_meta.get("name")),
        display_name=display_name,
        mime_type=str(mime_type),
        declared_size=int(declared) if declared is not None else None,
        api_version=ver,
        base_url=exchange.base_url,
    )
    upload_id = exchange.state.open_upload(record)
    headers = {
        "X-Goog-Upload-URL": f"{record.base_url}/upload/{ver}/files?upload_id={upload_id}",
        "X-Goog-Upload-Status": "active",
        "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
    }
    return json_answer(200, {}, headers)


def _new_file_id(exchange: Exchange, requested: Any) -> str:
    if isinstance(requested, str) and requested.strip():
        file_id = requested.removeprefix("files/")
        if not FILE_ID.fullmatch(file_id):
            raise ApiError(400, "file name must be lower-case letters, digits or dashes")
        if exchange.state.file_id_taken(file_id):
            raise ApiError(409, f"File files/{file_id} already exists.")
        return file_id
    return secrets.token_hex(6)


def upload_chunk(exchange: Exchange, upload_id: str) -> Response:
    """One chunk of a resumable upload. Every answer says X-Goog-Upload-Status.

    Errors say ``final`` too: without the header the SDK re-posts with 1/2/4 s sleeps.
    """
    record = exchange.state.upload(upload_id)
    try:
        if record is None:
            raise ApiError(404, "unknown or finished upload session")
        exchange.note(display_name=record.display_name)
        exchange.apply_fault(
            UPLOAD, f"{CHUNK_HAYSTACK}{record.display_name or ''}\n{exchange.target}"
        )
        with record.lock:  # chunks of one session must not interleave
            status, payload, headers = _receive_chunk(exchange, upload_id, record)
    except ApiError as exc:
        exchange.drain()
        # A fault may leave the header out, as real answers sometimes do: the SDK then
        # re-posts the chunk up to 3 times, sleeping 1, 2 and 4 s.
        return error_answer(exc, {} if exc.no_upload_status else {"X-Goog-Upload-Status": "final"})
    return json_answer(status, payload, headers)


def _receive_chunk(
    exchange: Exchange, upload_id: str, record: FileRecord
) -> tuple[int, JSON, dict[str, str]]:
    """Hash the chunk into the record; on ``finalize`` publish the file resource."""
    header = exchange.header("X-Goog-Upload-Command") or ""
    command = {part.strip().lower() for part in header.split(",")}
    progress = {"X-Goog-Upload-Status": "active"}
    if "query" in command:
        return 200, {}, {**progress, "X-Goog-Upload-Size-Received": str(record.size)}
    offset = as_float(exchange.header("X-Goog-Upload-Offset"))
    if offset is not None and int(offset) != record.size:
        raise ApiError(400, f"offset {int(offset)} does not match {record.size} bytes received")
    for piece in exchange.body_pieces():
        record.absorb(piece)
    if "finalize" not in command:
        return 200, {}, {**progress, "X-Goog-Upload-Size-Received": str(record.size)}
    if record.declared_size is not None and record.size != record.declared_size:
        raise ApiError(400, f"received {record.size} bytes, announced {record.declared_size}")
    exchange.state.finalize(upload_id, record)
    return 200, {"file": record.resource(time.time())}, {"X-Goog-Upload-Status": "final"}


def list_files(exchange: Exchange) -> Response:
    exchange.read_body()
    exchange.apply_fault(FILES, exchange.target)
    page_size = int(as_float(exchange.arg("pageSize", "10")) or 10)
    start = int(as_float(exchange.arg("pageToken", "0")) or 0)
    records = sorted(exchange.state.files(), key=lambda r: r.created, reverse=True)
    now = time.time()
    page = [r.resource(now) for r in records[start : start + max(1, page_size)]]
    payload: JSON = {"files": page} if page else {}
    if start + len(page) < len(records):
        payload["nextPageToken"] = str(start + len(page))
    return json_answer(200, payload)


def get_or_delete_file(exchange: Exchange, file_id: str) -> Response:
    exchange.read_body()
    state = exchange.state
    record = state.file(file_id)
    display_name = record.display_name if record else None
    exchange.note(display_name=display_name)
    exchange.apply_fault(FILES, f"{display_name or ''}\n{exchange.target}")
    deleting = exchange.request.method == "DELETE"
    if record is None or (deleting and not state.delete_file(file_id)):
        raise ApiError(
            403, f"You do not have permission to access the File {file_id} or it may not exist."
        )
    return json_answer(200, {} if deleting else record.resource(time.time()))
