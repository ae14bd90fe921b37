"""SPEC §2.1 error shape and strict JSON bodies: ``functions/http.py``."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from typing import Any

import flask
import pytest

from functions import http
from functions.http import (
    JSON_CONTENT_TYPE,
    error_response,
    handles_errors,
    read_json_object,
    require_method,
)
from shared import errors
from shared.errors import (
    BudgetExhausted,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    Paused,
    PayloadTooLarge,
    RateLimited,
    TinkerbellError,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)

# ------------------------------------------------------------------ read_json_object


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'{"brief": "x"}', {"brief": "x"}, id="object"),
        pytest.param(b"  {}\n", {}, id="empty-object-whitespace"),
        pytest.param('{"brief": "Brașov €"}'.encode(), {"brief": "Brașov €"}, id="utf8"),
        pytest.param(b'{"brief": "\\u0219"}', {"brief": "ș"}, id="escaped-unicode"),
        pytest.param(
            b'{"a": {"b": [1, 2.5, null, true]}}', {"a": {"b": [1, 2.5, None, True]}}, id="nested"
        ),
        pytest.param(
            b'{"a": {"x": 1}, "b": {"x": 2}}',
            {"a": {"x": 1}, "b": {"x": 2}},
            id="same-key-in-siblings",
        ),
        pytest.param(b"[1]", [1], id="list-is-returned-as-is"),
    ],
)
def test_read_json_object_accepts_strict_json(raw: bytes, expected: Any) -> None:
    assert read_json_object(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xfe{}", id="invalid-utf8"),
        pytest.param('{"brief": "é"}'.encode("latin-1"), id="latin-1"),
        pytest.param('{"brief": "x"}'.encode("utf-16"), id="utf-16"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"{'brief': 'x'}", id="single-quotes"),
        pytest.param(b'{"brief": "x",}', id="trailing-comma"),
        pytest.param(b'{"brief": "x"} {}', id="two-documents"),
        pytest.param(b'{"n": NaN}', id="nan"),
        pytest.param(b'{"n": Infinity}', id="infinity"),
        pytest.param(b'{"n": -Infinity}', id="minus-infinity"),
        pytest.param(b"[NaN]", id="nan-in-list"),
        pytest.param(b'{"brief": "a", "brief": "b"}', id="duplicate-keys"),
        pytest.param(b'{"x": {"a": 1, "a": 1}}', id="duplicate-keys-nested"),
        pytest.param(b'[{"a": 1, "a": 2}]', id="duplicate-keys-in-list"),
        pytest.param(b"[" * 17 + b"]" * 17, id="nested-17"),
        pytest.param(b'{"urls": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="nested-5000"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, id="nested-past-the-recursion-limit"),
    ],
)
def test_read_json_object_refuses(raw: bytes) -> None:
    with pytest.raises(InvalidArgument) as info:
        read_json_object(raw)
    assert info.value.code == "invalid_argument"
    assert info.value.message


def test_nesting_up_to_the_bound_is_read() -> None:
    assert read_json_object(b"[" * 16 + b"]" * 16) is not None


# ------------------------------------------------------------------ error_response

# (error, status, code, extra headers): one per class of shared/errors.py.
MIDNIGHT = datetime(2026, 12, 5, tzinfo=UTC)
ERROR_CASES = [
    pytest.param(
        InvalidArgument("brief: must not be empty", field="brief"),
        400,
        "invalid_argument",
        {},
        id="InvalidArgument",
    ),
    pytest.param(
        Unauthenticated("a valid Firebase ID token is required"),
        401,
        "unauthenticated",
        {},
        id="Unauthenticated",
    ),
    pytest.param(NotFound("task not found"), 404, "not_found", {}, id="NotFound"),
    pytest.param(
        MethodNotAllowed("method PUT is not allowed here", allowed=("GET", "DELETE")),
        405,
        "method_not_allowed",
        {"Allow": "GET, DELETE"},
        id="MethodNotAllowed",
    ),
    pytest.param(
        FailedPrecondition("the task is already finished"),
        409,
        "failed_precondition",
        {},
        id="FailedPrecondition",
    ),
    pytest.param(
        PayloadTooLarge("pdf: at most 30 MiB", field="pdf"),
        413,
        "payload_too_large",
        {},
        id="PayloadTooLarge",
    ),
    pytest.param(
        UnsupportedMediaType("use application/json or multipart/form-data"),
        415,
        "unsupported_media_type",
        {},
        id="UnsupportedMediaType",
    ),
    pytest.param(
        RateLimited("too many requests", retry_after_s=30),
        429,
        "rate_limited",
        {"Retry-After": "30"},
        id="RateLimited",
    ),
    pytest.param(
        BudgetExhausted("the day's budget is used up", retry_after_s=3600, resets_at=MIDNIGHT),
        429,
        "budget_exhausted",
        {"Retry-After": "3600"},
        id="BudgetExhausted",
    ),
    pytest.param(Internal("internal error"), 500, "internal", {}, id="Internal"),
    pytest.param(Unavailable("try again later"), 503, "unavailable", {}, id="Unavailable"),
    pytest.param(Paused("the service takes no new tasks now"), 503, "paused", {}, id="Paused"),
    pytest.param(TinkerbellError("internal error"), 500, "internal", {}, id="TinkerbellError"),
]


@pytest.mark.parametrize(("error", "status", "code", "headers"), ERROR_CASES)
def test_error_response(
    error: TinkerbellError, status: int, code: str, headers: dict[str, str]
) -> None:
    with flask.Flask(__name__).test_request_context():
        response = error_response(error)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.content_type == JSON_CONTENT_TYPE
    expected: dict[str, Any] = {"code": code, "message": error.message, "field": error.field}
    if isinstance(error, RateLimited) and error.resets_at is not None:
        # When a day budget starts again: only on the errors that have one.
        expected["resets_at"] = error.resets_at.isoformat().replace("+00:00", "Z")
    assert json.loads(response.get_data()) == {"error": expected}
    for name, value in headers.items():
        assert response.headers[name] == value
    if not isinstance(error, RateLimited):
        assert "Retry-After" not in response.headers
    if not isinstance(error, MethodNotAllowed):
        assert "Allow" not in response.headers


def test_error_cases_cover_every_error_class() -> None:
    classes = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, TinkerbellError) and obj.__module__ == errors.__name__
    }
    covered = {type(case.values[0]) for case in ERROR_CASES}
    assert classes == covered


def test_error_codes_match_the_spec_table() -> None:
    spec = {
        "invalid_argument": 400,
        "unauthenticated": 401,
        "not_found": 404,
        "method_not_allowed": 405,
        "failed_precondition": 409,
        "payload_too_large": 413,
        "unsupported_media_type": 415,
        "rate_limited": 429,
        "budget_exhausted": 429,
        "internal": 500,
        "unavailable": 503,
        "paused": 503,
    }
    for case in ERROR_CASES:
        error, status, code, _ = case.values
        assert spec[code] == status == error.http_status


def test_error_body_field_is_null_when_absent() -> None:
    response = error_response(NotFound("task not found"))
    assert json.loads(response.get_data())["error"]["field"] is None


def test_error_message_is_not_ascii_escaped_away() -> None:
    response = error_response(InvalidArgument("brief: prea lung — ș", field="brief"))
    assert json.loads(response.get_data().decode("utf-8"))["error"]["message"] == (
        "brief: prea lung — ș"
    )


# ------------------------------------------------------------------ handles_errors / methods


def test_handles_errors_maps_domain_errors() -> None:
    @handles_errors
    def handler(request: flask.Request) -> flask.Response:
        raise NotFound("task not found")

    app = flask.Flask(__name__)
    with app.test_request_context("/v1/tasks/x"):
        response = handler(flask.request)
    assert response.status_code == 404
    assert json.loads(response.get_data())["error"]["code"] == "not_found"


def test_handles_errors_hides_unexpected_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(http.log, "exception", lambda msg, *a, **k: logged.append(msg))

    @handles_errors
    def handler(request: flask.Request) -> flask.Response:
        raise RuntimeError("secret-brief-text /srv/app.py line 12")

    app = flask.Flask(__name__)
    with app.test_request_context("/v1/strategies", method="POST"):
        response = handler(flask.request)
    assert response.status_code == 500
    body = json.loads(response.get_data())
    assert body["error"]["code"] == "internal"
    assert "secret-brief-text" not in response.get_data(as_text=True)
    assert logged


def test_handles_errors_passes_through_success() -> None:
    @handles_errors
    def handler(request: flask.Request) -> flask.Response:
        return flask.Response("ok", status=200)

    with flask.Flask(__name__).test_request_context():
        assert handler(flask.request).status_code == 200


def test_require_method() -> None:
    app = flask.Flask(__name__)
    with app.test_request_context(method="GET"):
        require_method(flask.request, "GET", "DELETE")
    with app.test_request_context(method="PUT"), pytest.raises(MethodNotAllowed) as info:
        require_method(flask.request, "GET", "DELETE")
    assert info.value.allowed == ("GET", "DELETE")
    assert error_response(info.value).headers["Allow"] == "GET, DELETE"
