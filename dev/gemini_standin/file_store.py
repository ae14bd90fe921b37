"""Files uploaded through the File API, as the stand-in keeps them: size, hash, first bytes."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .common import FILE_LIFETIME_S, JSON, MARKER, rfc3339


@dataclass
class FileRecord:
    """An uploaded file. Only size, sha256 and the first bytes are kept, never the content."""

    file_id: str
    display_name: str | None
    mime_type: str
    declared_size: int | None
    api_version: str
    base_url: str
    created: float = field(default_factory=time.time)
    size: int = 0
    magic: bytes = b""
    hasher: Any = field(default_factory=hashlib.sha256)
    finalized: float | None = None
    ready_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def absorb(self, piece: bytes) -> None:
        self.hasher.update(piece)
        self.size += len(piece)
        if len(self.magic) < 8:
            self.magic = (self.magic + piece)[:8]

    def state(self, now: float) -> str:
        if self.ready_at is None or now < self.ready_at:
            return "PROCESSING"
        if self.mime_type == "application/pdf" and not self.magic.startswith(b"%PDF-"):
            return "FAILED"
        return "ACTIVE"

    def resource(self, now: float) -> JSON:
        state = self.state(now)
        updated = self.ready_at if state != "PROCESSING" and self.ready_at else self.finalized
        resource: JSON = {
            "name": f"files/{self.file_id}",
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(updated or self.created),
            "expirationTime": rfc3339(self.created + FILE_LIFETIME_S),
            "sha256Hash": base64.b64encode(self.hasher.copy().digest()).decode("ascii"),
            "uri": f"{self.base_url}/{self.api_version}/files/{self.file_id}",
            "state": state,
            "source": "UPLOADED",
        }
        if self.display_name is not None:
            resource["displayName"] = self.display_name
        if state == "FAILED":
            resource["error"] = {"code": 400, "message": f"{MARKER} the file is not a valid PDF"}
        return resource
