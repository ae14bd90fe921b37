"""A webhook receiver on 127.0.0.1, scripted and recording: for the unit tests of the
POST and for the stack tests (the stack's deliverer may call loopback receivers:
WEBHOOK_ALLOW_LOOPBACK)."""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next scripted status
    (the last one repeats), after an optional wait; records every call."""

    url: str
    script: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *steps: int | tuple[int, float] | tuple[int, float, dict[str, str]]) -> None:
        self.script = [
            (s, 0.0, {}) if isinstance(s, int) else (s[0], s[1], s[2] if len(s) > 2 else {})
            for s in steps
        ]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.calls) >= count:
                    return list(self.calls)
            time.sleep(0.1)
        with self.lock:
            raise AssertionError(f"{len(self.calls)} calls, not {count}, in {timeout} s")


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    made = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with made.lock:
                index = len(made.calls)
                made.calls.append(Call(self.path, dict(self.headers.items()), body, time.time()))
                status, wait, extra = made.script[min(index, len(made.script) - 1)]
            time.sleep(wait)
            with contextlib.suppress(OSError):  # cut by the deliverer: fine
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    made.url = f"http://127.0.0.1:{server.server_address[1]}"
    made.answer(204)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        server.shutdown()
        server.server_close()


RECEIVER_EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "webhook_receiver.py"


def load_receiver_example() -> ModuleType:
    """docs/examples/webhook_receiver.py as a user has it: loaded by path, not as a
    package module (the tests verify deliveries with it, so it must work)."""
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", RECEIVER_EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
