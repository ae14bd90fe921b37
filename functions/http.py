"""What the HTTP functions share: JSON answers, the error shape, routing helpers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from http import HTTPStatus

import flask
import functions_framework
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

from shared.errors import (
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TinkerbellError,
    UnsupportedMediaType,
)
from shared.log import get_logger, trace_context, trace_of
from shared.models import ErrorBody, ErrorDetail
from shared.settings import get_settings

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CORS_ALLOW_METHODS = "GET, POST, DELETE"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Firebase-AppCheck"
CORS_EXPOSE_HEADERS = "Retry-After"
CORS_MAX_AGE_S = "600"
log = get_logger("http")

Handler = Callable[[flask.Request], flask.Response]


def json_response(body: BaseModel, status: int = HTTPStatus.OK) -> flask.Response:
    return flask.Response(body.model_dump_json(), status=status, content_type=JSON_CONTENT_TYPE)


def error_response(error: TinkerbellError) -> flask.Response:
    resets_at = error.resets_at if isinstance(error, RateLimited) else None
    detail = ErrorDetail(
        code=error.code, message=error.message, field=error.field, resets_at=resets_at
    )
    # resets_at only where it means something: the error shape stays SPEC §2.1's.
    exclude = None if resets_at else {"error": {"resets_at"}}
    response = flask.Response(
        ErrorBody(error=detail).model_dump_json(exclude=exclude),
        status=error.http_status,
        content_type=JSON_CONTENT_TYPE,
    )
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allowed)
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def handles_errors(handler: Handler) -> Handler:
    """Map domain errors to their status; anything else to a bare 500. Answer CORS."""

    @functools.wraps(handler)
    def wrapper(request: flask.Request) -> flask.Response:
        origin = request.headers.get("Origin", "")
        allowed = origin in get_settings().allowed_origins
        if allowed and request.method == "OPTIONS":
            response = flask.Response(status=HTTPStatus.NO_CONTENT)  # a preflight
            response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE_S
        else:
            response = _answer(handler, request)
        response.vary.add("Origin")
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        return response

    return wrapper


def _answer(handler: Handler, request: flask.Request) -> flask.Response:
    header = request.headers.get("traceparent") or request.headers.get("X-Cloud-Trace-Context")
    with trace_context(trace_of(get_settings().google_cloud_project, header)):
        try:
            return handler(request)
        except TinkerbellError as error:
            if error.http_status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                # An outage (503) or a bug (500): operators need the why, with its trace.
                log.error(
                    f"{request.method} {request.path} answered {error.http_status}: "
                    f"{error.message}",
                    exc_info=True,
                    extra={"code": error.code, "http_status": error.http_status},
                )
            return error_response(error)
        except Exception:
            log.exception(
                f"{request.method} {request.path} failed: answered 500",
                extra={"http_status": HTTPStatus.INTERNAL_SERVER_ERROR},
            )
            return error_response(TinkerbellError("internal error; try again later"))


def require_method(request: flask.Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise MethodNotAllowed(f"method {request.method} is not allowed here", allowed=allowed)


def read_json_object(raw: bytes) -> object:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the body is not valid UTF-8") from None

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        if len(keys) != len(set(keys)):
            raise InvalidArgument("the body repeats a field")
        return dict(pairs)

    def no_constants(name: str) -> object:
        raise InvalidArgument(f"the body contains {name}, which is not JSON")

    try:
        value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the body is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InvalidArgument(_TOO_DEEP) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InvalidArgument(_TOO_DEEP)
    return value


# No request of the API nests deeper than 3; the bound leaves room and keeps a hostile
# body from costing a RecursionError (a 500) anywhere after parsing.
MAX_JSON_DEPTH = 16
_TOO_DEEP = f"the body nests deeper than {MAX_JSON_DEPTH} levels"


def _depth(value: object) -> int:
    """How deep arrays and objects nest, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


_FRAMEWORK_ERRORS: dict[int, type[TinkerbellError]] = {
    400: InvalidArgument,
    404: NotFound,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def _framework_error(exc: HTTPException) -> flask.Response | object:
    """What werkzeug answers before a handler runs (a path its router cannot match,
    e.g. one with %0A), in the SPEC §2.1 shape too."""
    kind = _FRAMEWORK_ERRORS.get(exc.code or 500)
    if kind is None:
        # Others are ours on purpose (the event functions' 503 asks Pub/Sub to retry).
        return exc.get_response()
    message = "no such route" if kind is NotFound else "the request could not be read"
    return error_response(kind(message))


# functions-framework binds its real errorhandler when it creates the app, before it
# resolves the target (main.__getattr__ imports this module then); elsewhere it is a no-op.
functions_framework.errorhandler(HTTPException)(_framework_error)
