"""The stand-in's HTTP server: werkzeug's threaded WSGI server (one thread per connection, a
deep accept queue for bursts), quiet but for our JSON lines; and its command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any, NoReturn

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import StandinApp
from .calls import IMAGE_FORMATS
from .common import ApiError, log
from .config import Config
from .state import StandinState


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log: ours is JSON, and its lines could carry
    ``?key=``. HTTP/1.1, so that answers carry Content-Length (werkzeug closes each
    connection after its answer)."""

    protocol_version = "HTTP/1.1"
    timeout = 300  # a client that stops sending mid-request gives its thread back eventually
    disable_nagle_algorithm = True  # stream events go out as they are written

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            log("ERROR", "stand-in connection failed", error=message % args if args else message)


class StandinServer(ThreadedWSGIServer):
    """The server and the state its requests share (``server.state``)."""

    def __init__(self, address: tuple[str, int], state: StandinState, log_requests: bool) -> None:
        host, port = address
        super().__init__(host, port, StandinApp(state, log_requests), QuietHandler)
        self.state = state

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            log("ERROR", "stand-in failed", error=message % args if args else message)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal here (timeouts, retries): log one line, no trace."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            log("ERROR", "stand-in connection failed", error=repr(error))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: Config | None = None,
    log_requests: bool = True,
) -> tuple[StandinServer, threading.Thread]:
    """Start the stand-in in a daemon thread (port 0 = any free port; see ``server.url``).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = StandinServer((host, port), StandinState(config or Config()), log_requests)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # so that shutdown() returns quickly in tests
        name="gemini-standin",
        daemon=True,
    )
    thread.start()
    return server, thread


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stand-in for the Gemini REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay of generate calls")
    parser.add_argument("--file-processing-s", type=float, default=0.2)
    parser.add_argument("--image-size", type=int, default=64, help="longer side of images")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpeg")
    parser.add_argument(
        "--extra-model", action="append", default=[], help="serve this model id too"
    )
    parser.add_argument("--quiet", action="store_true", help="log only errors, not requests")
    parser.add_argument(
        "--storage-emulator-host",
        default=os.environ.get("STORAGE_EMULATOR_HOST", ""),
        help="the Cloud Storage emulator that Vertex AI routes read gs:// objects from "
        "(default: $STORAGE_EMULATOR_HOST)",
    )
    args = parser.parse_args(argv)
    try:
        config = Config().updated(
            {
                "latency_s": args.latency_s,
                "file_processing_s": args.file_processing_s,
                "image_size": args.image_size,
                "image_format": args.image_format,
                "extra_models": args.extra_model,
                "storage_emulator_host": args.storage_emulator_host,
            }
        )
    except ApiError as exc:
        parser.error(str(exc.message))
    server = StandinServer((args.host, args.port), StandinState(config), not args.quiet)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    ready = {
        "severity": "INFO",
        "message": "gemini stand-in listening",
        "host": args.host,
        "port": server.server_address[1],
        "pid": os.getpid(),
    }
    print(json.dumps(ready), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log("INFO", "gemini stand-in stopped", pid=os.getpid())
    return 0
