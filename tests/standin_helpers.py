"""Servers the Gemini tests run in-process: the stand-in, and a minimal Cloud Storage
JSON API for its ``gs://`` checks; and ``make check-gemini`` run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from dev.gemini_standin import Config, StandinServer, serve
from shared.settings import EMULATOR_VARIABLES, Settings

REPO = Path(__file__).resolve().parents[1]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@contextmanager
def running_standin(config: Config | None = None) -> Iterator[StandinServer]:
    server, thread = serve("127.0.0.1", 0, config=config, log_requests=False)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FakeStorage(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StorageHandler)
        self.objects: set[tuple[str, str]] = set()
        self.forbidden: set[str] = set()
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StorageHandler(BaseHTTPRequestHandler):
    server: FakeStorage

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = self.path.split("?")[0].split("/")
        # /storage/v1/b/{bucket}/o/{object, url-encoded}
        if len(parts) != 7 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
            self._answer(400, {"error": {"code": 400}})
        elif parts[4] in self.server.forbidden:
            self._answer(403, {"error": {"code": 403}})
        elif (parts[4], unquote(parts[6])) in self.server.objects:
            self._answer(200, {"bucket": parts[4], "name": unquote(parts[6])})
        else:
            self._answer(404, {"error": {"code": 404, "message": "No such object"}})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running_storage() -> Iterator[FakeStorage]:
    server = FakeStorage()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_check_gemini(*args: str, **env: str) -> tuple[int, dict[str, Any]]:
    """``python -m cli.check_gemini --json`` in its own process, with no setting, key or
    emulator variable of the caller's environment; returns the exit code and report."""
    clean = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    for name in ("GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", *EMULATOR_VARIABLES):
        clean.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "cli.check_gemini", "--json", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(lines[-1])
