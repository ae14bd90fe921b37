"""The WSGI application: the routes of both APIs and of the control API, the credentials each
API asks for, and one log line per request (never its query: it may hold ``?key=``)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from .common import (
    API_VERSIONS,
    COUNT,
    FILES,
    GENERATE,
    JSON,
    MODELS,
    STREAM,
    UNKNOWN,
    UPLOAD,
    VERTEX,
    ApiError,
    DropConnection,
    error_body,
    log,
)
from .exchange import Exchange, LastEvent, error_answer, json_answer
from .file_api import get_or_delete_file, list_files, upload_chunk, upload_start
from .generate_api import count_tokens, generate, get_model, get_vertex_model, list_models
from .state import StandinState, max_overlap
from .vertex import VERTEX_API_VERSIONS, VERTEX_NO_API_KEYS, VERTEX_UNAUTHENTICATED, VertexTarget


class ModelIdConverter(BaseConverter):
    """A model id: one path segment, up to the ``:method`` suffix."""

    regex = "[^/:]+"


class Route(NamedTuple):
    """What a path leads to: the request kind (logged, and matched by fault rules) and the
    handler, given the path's arguments."""

    kind: str
    handle: Callable[[Exchange, Mapping[str, Any]], Response]


def _vertex_target(args: Mapping[str, Any]) -> VertexTarget | None:
    return VertexTarget(args["project"], args["location"]) if "project" in args else None


def _upload(exchange: Exchange, args: Mapping[str, Any]) -> Response:
    upload_id = exchange.arg("upload_id")  # the upload URL: a chunk of an open session
    return upload_chunk(exchange, upload_id) if upload_id else upload_start(exchange, args["ver"])


GENERATE_ROUTE = Route(
    GENERATE, lambda ex, a: generate(ex, a["ver"], a["model"], False, _vertex_target(a))
)
STREAM_ROUTE = Route(
    STREAM, lambda ex, a: generate(ex, a["ver"], a["model"], True, _vertex_target(a))
)
COUNT_ROUTE = Route(COUNT, lambda ex, a: count_tokens(ex, a["ver"], a["model"], _vertex_target(a)))
_DEV = f"<any({', '.join(API_VERSIONS)}):ver>"
_VTX = f"<any({', '.join(VERTEX_API_VERSIONS)}):ver>"
_VTX_MODEL = (
    f"/{_VTX}/projects/<project>/locations/<location>/publishers/google/models/<model:model>"
)
# Generation, counting and uploads are POSTs; the rest GETs (a file may be DELETEd too).
POST, GET = ["POST"], ["GET"]
ROUTES = Map(
    [
        Rule(
            f"/{_DEV}/models/<model:model>:generateContent", endpoint=GENERATE_ROUTE, methods=POST
        ),
        Rule(
            f"/{_DEV}/models/<model:model>:streamGenerateContent",
            endpoint=STREAM_ROUTE,
            methods=POST,
        ),
        Rule(f"/{_DEV}/models/<model:model>:countTokens", endpoint=COUNT_ROUTE, methods=POST),
        Rule(f"/{_DEV}/models", endpoint=Route(MODELS, lambda ex, a: list_models(ex)), methods=GET),
        Rule(
            f"/{_DEV}/models/<model:model>",
            endpoint=Route(MODELS, lambda ex, a: get_model(ex, a["ver"], a["model"])),
            methods=GET,
        ),
        Rule(f"/upload/{_DEV}/files", endpoint=Route(UPLOAD, _upload), methods=POST),
        Rule(f"/{_DEV}/files", endpoint=Route(FILES, lambda ex, a: list_files(ex)), methods=GET),
        Rule(
            f"/{_DEV}/files/<file_id>",
            endpoint=Route(FILES, lambda ex, a: get_or_delete_file(ex, a["file_id"])),
            methods=["GET", "DELETE"],
        ),
        # Vertex AI: generation is project- and location-scoped; publisher models are not,
        # and ``publishers.models.list`` exists in v1beta1 only.
        Rule(f"{_VTX_MODEL}:generateContent", endpoint=GENERATE_ROUTE, methods=POST),
        Rule(f"{_VTX_MODEL}:streamGenerateContent", endpoint=STREAM_ROUTE, methods=POST),
        Rule(f"{_VTX_MODEL}:countTokens", endpoint=COUNT_ROUTE, methods=POST),
        Rule(
            "/v1beta1/publishers/google/models",
            endpoint=Route(MODELS, lambda ex, a: list_models(ex, vertex=True)),
            methods=GET,
        ),
        Rule(
            f"/{_VTX}/publishers/google/models/<model:model>",
            endpoint=Route(MODELS, lambda ex, a: get_vertex_model(ex, a["model"])),
            methods=GET,
        ),
    ],
    converters={"model": ModelIdConverter},
    strict_slashes=False,
    merge_slashes=False,
)
VERTEX_PATH = re.compile(rf"^/(?:{'|'.join(VERTEX_API_VERSIONS)})/(?:projects|publishers)/")


def route_of(request: Request) -> tuple[Route, Mapping[str, Any]] | None:
    """Where the request goes, and the path's arguments; None for a route neither API has
    (or a method it does not take)."""
    try:
        route, args = ROUTES.bind_to_environ(request.environ).match()
    except HTTPException:
        return None
    return route, args


class StandinApp:
    """Dispatches one request; API errors are raised as ApiError and answered in Gemini's shape."""

    def __init__(self, state: StandinState, log_requests: bool) -> None:
        self.state = state
        self.log_requests = log_requests

    def __call__(self, environ: JSON, start_response: Any) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        exchange = Exchange(request, self.state)
        try:
            if request.path.startswith("/_standin/"):
                response = self.control(exchange)
            else:
                exchange.entry = self.state.log_start(request.method, request.path)
                response = self.api(exchange)
        except ApiError as exc:
            response = error_answer(exc)
        except DropConnection:
            # An upstream that hangs, then dies: the connection closes without an answer.
            self.finish(exchange, 0, started)
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("dropped on purpose by a fault rule") from None
        except ConnectionError:
            self.finish(exchange, 0, started)
            raise
        except Exception as exc:
            log("ERROR", "stand-in failed to handle a request", path=request.path, error=repr(exc))
            response = json_answer(500, error_body(500))
        if response.is_streamed:
            response.response = self.finishing(response.response, exchange, response, started)
        else:
            # Before the answer goes out: a client that reads the log next must see it.
            self.finish(exchange, response.status_code, started)
        return response(environ, start_response)

    def finishing(
        self, pieces: Iterable[Any], exchange: Exchange, response: Response, started: float
    ) -> Iterator[bytes]:
        """A stream's pieces, its log entry closed just before its last event goes out
        (or when the stream ends otherwise: a client gone, an error)."""
        finished = False
        try:
            for piece in pieces:
                if isinstance(piece, LastEvent):
                    finished = True
                    self.finish(exchange, response.status_code, started)
                yield piece
        finally:
            if not finished:
                self.finish(exchange, response.status_code, started)

    def finish(self, exchange: Exchange, status: int, started: float) -> None:
        """Close the request's log entry (streams: after their last event) and log a line."""
        if exchange.entry is not None:
            self.state.log_update(exchange.entry, ended_at=time.time(), status=status or None)
        if self.log_requests or status >= 500:
            log(
                "INFO" if status < 500 else "WARNING",
                "request",
                method=exchange.request.method,
                path=exchange.request.path,
                status=status or None,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )

    # -- control API ---------------------------------------------------------------------------

    def control(self, exchange: Exchange) -> Response:
        request, state = exchange.request, self.state
        route = (request.method, request.path.rstrip("/"))
        contains, endpoint = exchange.arg("contains"), exchange.arg("endpoint")
        payload: Any
        if route == ("GET", "/_standin/health"):
            payload = {"ok": True, "pid": state.pid, "started_at": state.started_at}
        elif route == ("GET", "/_standin/faults"):
            payload = {"faults": state.faults()}
        elif route == ("POST", "/_standin/faults"):
            payload = {"id": state.add_fault(exchange.read_json()).id}
        elif route == ("DELETE", "/_standin/faults"):
            payload = {"cleared": state.clear_faults()}
        elif route == ("GET", "/_standin/config"):
            payload = state.config.to_json()
        elif route == ("POST", "/_standin/config"):
            payload = state.set_config(exchange.read_json()).to_json()
        elif route == ("POST", "/_standin/reset"):
            state.reset()
            payload = {"ok": True}
        elif route == ("GET", "/_standin/requests"):
            payload = {"requests": state.requests(contains, endpoint)}
        elif route == ("GET", "/_standin/requests/max_concurrency"):
            matched = state.requests(contains, endpoint)
            payload = {"max_concurrency": max_overlap(matched), "count": len(matched)}
        else:
            raise ApiError(404, f"no stand-in control route {request.method} {request.path}")
        return json_answer(200, payload)

    # -- both Gemini APIs ----------------------------------------------------------------------

    def api(self, exchange: Exchange) -> Response:
        request = exchange.request
        found = route_of(request)
        exchange.note(endpoint=found[0].kind if found else UNKNOWN, deadline_s=exchange.deadline_s)
        if VERTEX_PATH.match(request.path):
            exchange.note(backend=VERTEX)
            self.check_bearer_token(exchange)
        else:
            self.check_api_key(exchange)
        if found is None:
            raise ApiError(404, f"Method not found: {request.method} {request.path}")
        route, args = found
        return route.handle(exchange, args)

    @staticmethod
    def check_api_key(exchange: Exchange) -> None:
        """The Developer API wants an API key (any value); an upload URL is its own credential."""
        key = exchange.header("x-goog-api-key") or exchange.arg("key")
        if not key and not exchange.arg("upload_id"):
            raise ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity.",
            )

    @staticmethod
    def check_bearer_token(exchange: Exchange) -> None:
        """Vertex AI wants an OAuth bearer token (any value), and refuses API keys."""
        scheme, _, token = (exchange.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            has_key = exchange.header("x-goog-api-key") or exchange.arg("key")
            raise ApiError(401, VERTEX_NO_API_KEYS if has_key else VERTEX_UNAUTHENTICATED)
