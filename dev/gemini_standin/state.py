"""Everything the request handlers share: config, fault rules, files and the request log."""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any

from .common import DEVELOPER, JSON, MAX_LOG_ENTRIES, UNKNOWN, endpoint_matches
from .config import Config
from .faults import FaultRule
from .file_store import FileRecord


class StandinState:
    """Everything the handlers share; one lock guards it (requests are short under the lock)."""

    def __init__(self, defaults: Config) -> None:
        self.pid = os.getpid()
        self.started_at = time.time()
        self._defaults = defaults
        self._lock = threading.Lock()
        self._seq = 0
        self.config = defaults
        self._faults: list[FaultRule] = []
        self._files: dict[str, FileRecord] = {}
        self._uploads: dict[str, FileRecord] = {}
        self._log: list[JSON] = []

    # -- config and faults ---------------------------------------------------------------------

    def set_config(self, body: JSON) -> Config:
        with self._lock:
            self.config = self.config.updated(body)
            return self.config

    def add_fault(self, body: JSON) -> FaultRule:
        rule = FaultRule.from_body(body)
        with self._lock:
            self._faults.append(rule)
        return rule

    def faults(self) -> list[JSON]:
        with self._lock:
            return [rule.to_json() for rule in self._faults]

    def clear_faults(self) -> int:
        with self._lock:
            count, self._faults = len(self._faults), []
            return count

    def take_fault(self, kind: str, haystack: str) -> FaultRule | None:
        """The first rule (insertion order) that matches and has uses left; counts one use."""
        with self._lock:
            for rule in self._faults:
                if rule.matches(kind, haystack):
                    rule.applied += 1
                    return rule
        return None

    def reset(self) -> None:
        with self._lock:
            self.config = self._defaults
            self._faults, self._log = [], []
            self._files, self._uploads = {}, {}

    # -- request log ---------------------------------------------------------------------------

    def log_start(self, method: str, path: str) -> JSON:
        """Open a log entry; all keys exist from the start so readers never see a resize."""
        with self._lock:
            self._seq += 1
            entry: JSON = {
                "seq": self._seq,
                "method": method,
                "path": path,
                "endpoint": UNKNOWN,
                "backend": DEVELOPER,
                "model": None,
                "started_at": time.time(),
                "ended_at": None,
                "status": None,
                "match_text": "",
                "has_file_part": False,
                "file_uris": [],
                "tools": [],
                "response_modalities": [],
                "response_schema": False,
                "display_name": None,
                "deadline_s": None,
                # Streams: when the first event was sent (benchmarks measure from it).
                "first_event_at": None,
            }
            self._log.append(entry)
            if len(self._log) > MAX_LOG_ENTRIES:
                del self._log[: len(self._log) - MAX_LOG_ENTRIES]
            return entry

    def log_update(self, entry: JSON, **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def requests(self, contains: str, endpoint: str | None) -> list[JSON]:
        with self._lock:
            entries = [dict(e) for e in self._log]
        return [
            e
            for e in entries
            if endpoint_matches(endpoint or "", e["endpoint"])
            and (
                contains in e["match_text"]
                or contains in e["path"]
                or contains in (e["display_name"] or "")
            )
        ]

    # -- files ---------------------------------------------------------------------------------

    def open_upload(self, record: FileRecord) -> str:
        upload_id = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads[upload_id] = record
        return upload_id

    def upload(self, upload_id: str) -> FileRecord | None:
        with self._lock:
            return self._uploads.get(upload_id)

    def finalize(self, upload_id: str, record: FileRecord) -> None:
        """Make the file visible; it turns ACTIVE/FAILED after the processing delay."""
        now = time.time()
        with self._lock:
            self._uploads.pop(upload_id, None)
            record.finalized = now
            record.ready_at = now + self.config.file_processing_s
            self._files[record.file_id] = record

    def file(self, file_id: str) -> FileRecord | None:
        with self._lock:
            return self._files.get(file_id)

    def delete_file(self, file_id: str) -> bool:
        with self._lock:
            return self._files.pop(file_id, None) is not None

    def files(self) -> list[FileRecord]:
        with self._lock:
            return list(self._files.values())

    def file_id_taken(self, file_id: str) -> bool:
        with self._lock:
            in_uploads = any(r.file_id == file_id for r in self._uploads.values())
            return file_id in self._files or in_uploads


def max_overlap(entries: list[JSON]) -> int:
    """Largest number of [started_at, ended_at] intervals open at one instant (sweep line)."""
    now = time.time()
    events: list[tuple[float, int]] = []
    for entry in entries:
        events.append((entry["started_at"], 1))
        events.append((entry["ended_at"] or now, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end at the same instant closes first
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best
