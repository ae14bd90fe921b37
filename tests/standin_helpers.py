"""Servers the Gemini tests run in-process: the stand-in, and a minimal Cloud Storage
JSON API for its ``gs://`` checks; and ``make check-gemini`` run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from dev.gemini_standin import Config, StandinServer, serve
from shared.settings import EMULATOR_VARIABLES, Settings
from tests.local_servers import serving

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


class FakeStorage:
    """The Cloud Storage JSON API's object metadata route, enough for the stand-in's
    ``gs://`` checks: ``objects`` exist, ``forbidden`` buckets answer 403."""

    def __init__(self) -> None:
        self.objects: set[tuple[str, str]] = set()
        self.forbidden: set[str] = set()
        self.requests: list[str] = []
        self.url = ""

    @Request.application  # type: ignore[arg-type]
    def app(self, request: Request) -> Response:
        raw = request.environ["RAW_URI"]  # as sent: the object name stays one %2F segment
        self.requests.append(raw)
        parts = raw.split("?")[0].split("/")  # /storage/v1/b/{bucket}/o/{object}
        if len(parts) != 7 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
            return _json(400, {"error": {"code": 400}})
        bucket, name = parts[4], unquote(parts[6])
        if bucket in self.forbidden:
            return _json(403, {"error": {"code": 403}})
        if (bucket, name) in self.objects:
            return _json(200, {"bucket": bucket, "name": name})
        return _json(404, {"error": {"code": 404, "message": "No such object"}})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


@contextmanager
def running_storage() -> Iterator[FakeStorage]:
    storage = FakeStorage()
    with serving(storage.app) as url:
        storage.url = url
        yield storage


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
