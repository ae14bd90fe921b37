"""What the tests start on 127.0.0.1 besides the stack: a free port, a small WSGI app served
in a thread (werkzeug's server, quiet), and one of our functions in a process of its own
under functions-framework, as the platform starts it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free port in a daemon thread; yields its base URL."""
    server = make_server(HOST, 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class FunctionProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def function_process(
    target: str, signature: str, env: Mapping[str, str], run_dir: Path
) -> Iterator[FunctionProcess]:
    """``functions-framework --target=TARGET`` on main.py with exactly ``env``, in its own
    process group and ``run_dir`` (its log, and gunicorn's control socket: one per
    process); stopped (SIGTERM, then SIGKILL) at the end. Waiting for it is the caller's:
    what "ready" means differs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = run_dir / f"{target}.log"
    functions_framework = Path(sys.executable).parent / "functions-framework"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(functions_framework),
                f"--target={target}",
                "--source=main.py",
                f"--signature-type={signature}",
                f"--host={HOST}",
                f"--port={port}",
            ],
            cwd=ROOT,
            env={**env, "XDG_RUNTIME_DIR": str(run_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield FunctionProcess(process, f"http://{HOST}:{port}", log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def process_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


@contextlib.contextmanager
def stack_submit(state_file: Path, run_dir: Path, overrides: Mapping[str, str]) -> Iterator[str]:
    """A ``submit_strategy`` process of its own, with the environment of a running
    stack's submit function (its emulators, topic, CORS origins) and ``overrides``;
    yields its base URL once it answers."""
    state = json.loads(state_file.read_text())
    env = process_environ(int(state["parts"]["submit"]["pid"])) | dict(overrides)
    with function_process("submit_strategy", "http", env, run_dir) as submit:
        deadline = time.monotonic() + 30
        while True:
            if submit.process.poll() is not None:
                raise AssertionError(f"submit_strategy exited:\n{submit.log_tail()}")
            try:
                httpx.get(f"{submit.url}/", timeout=2)  # any answer will do (405)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("submit_strategy did not start in 30 s") from None
                time.sleep(0.2)
        yield submit.url
