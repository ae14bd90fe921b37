"""CORS on the HTTP functions: preflight, and the origin echoed on every answer."""

from __future__ import annotations

from collections.abc import Iterator

import flask
import pytest

from functions.http import handles_errors
from shared.errors import InvalidArgument
from shared.settings import get_settings

WEB = "http://127.0.0.1:5000"


@pytest.fixture(autouse=True)
def origins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CORS_ORIGINS", f"{WEB}, http://localhost:5000/")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@handles_errors
def endpoint(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        raise InvalidArgument("brief: must not be empty", field="brief")
    return flask.Response("{}", status=202)


def call(method: str, origin: str | None, **headers: str) -> flask.Response:
    app = flask.Flask(__name__)
    if origin:
        headers["Origin"] = origin
    with app.test_request_context("/v1/strategies", method=method, headers=headers):
        return endpoint(flask.request)


def test_preflight_from_an_allowed_origin() -> None:
    answer = call("OPTIONS", WEB, **{"Access-Control-Request-Method": "POST"})
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == WEB
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }


def test_errors_and_successes_echo_the_origin() -> None:
    assert call("GET", WEB).headers["Access-Control-Allow-Origin"] == WEB
    assert call("POST", "http://localhost:5000").headers["Access-Control-Allow-Origin"] == (
        "http://localhost:5000"
    )
    assert "Origin" in call("POST", WEB).headers["Vary"]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", None])
def test_other_origins_get_no_cors(origin: str | None) -> None:
    answer = call("OPTIONS", origin)
    assert answer.status_code == 400  # the handler's own answer, not a preflight
    assert "Access-Control-Allow-Origin" not in answer.headers
