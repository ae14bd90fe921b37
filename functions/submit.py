"""``submit_strategy``: POST /v1/strategies (SPEC §2.2) → 202 with the task id."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from functions.http import handles_errors, json_response, read_json_object, require_method
from shared import app_check, idempotency, pause, submission, upload_sessions
from shared.app_check import HEADER as APP_CHECK_HEADER
from shared.auth import Caller, verify_caller
from shared.errors import InvalidArgument, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.models import StrategyRequest
from shared.settings import get_settings
from shared.submission import PdfUpload
from shared.validation import parse_revision_request, parse_strategy_request

ROUTE_SUFFIX = "/v1/strategies"
UPLOADS_ROUTE = "/v1/uploads"
REVISIONS_ROUTE = re.compile(r"(?:^|/)v1/tasks/(?P<task_id>[A-Za-z0-9_-]{1,128})/revisions\Z")
LIST_FIELDS = frozenset({"urls"})
BOOL_FIELDS = frozenset({"image", "grounding"})
PDF_FIELD = "pdf"
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


@handles_errors
def submit_strategy(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/")
    revision = REVISIONS_ROUTE.search(path)
    if path not in ("", ROUTE_SUFFIX, UPLOADS_ROUTE) and revision is None:
        raise NotFound(f"no such route: {request.path}")
    require_method(request, "POST")
    header = request.headers.get(APP_CHECK_HEADER)
    if revision is not None:
        return _revise(request, revision["task_id"], header)
    if path == UPLOADS_ROUTE:
        app_check.verify_app_check(header)
        caller = verify_caller(request.headers.get("Authorization"))
        pause.check_accepting()
        return _create_upload(request, caller.uid)
    caller = _spending_caller(request, header)
    body, pdf = _parse_body(request)
    key = request.headers.get(idempotency.HEADER)
    return _accepted(
        submission.submit(caller.uid, body, pdf, idempotency_key=key, anonymous=caller.anonymous)
    )


def _spending_caller(request: flask.Request, app_check_header: str | None) -> Caller:
    """The caller of a request that makes a task (it spends Gemini). Its App Check token
    is a limited-use one, consumed after the ID token is checked and before anything
    else is written (SPEC §5), so a replayed token is refused with nothing but its
    consumed record left behind."""
    token = app_check.verify_limited_use(app_check_header)
    caller = verify_caller(request.headers.get("Authorization"))
    pause.check_accepting()
    app_check.consume(token)
    return caller


def _accepted(submitted: submission.Submitted) -> flask.Response:
    """202 for a new task, 200 for an Idempotency-Key replay."""
    status = HTTPStatus.ACCEPTED if submitted.created else HTTPStatus.OK
    return json_response(submitted.accepted, status)


def _revise(
    request: flask.Request, parent_task_id: str, app_check_header: str | None
) -> flask.Response:
    """POST /v1/tasks/{task_id}/revisions: a new task, exactly like a submit (the same
    App Check use, caps, budgets and idempotency)."""
    caller = _spending_caller(request, app_check_header)
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send application/json")
    body = parse_revision_request(read_json_object(_json_body(request)), get_settings())
    key = request.headers.get(idempotency.HEADER)
    return _accepted(
        submission.revise(caller.uid, parent_task_id, body, key, anonymous=caller.anonymous)
    )


def _parse_body(request: flask.Request) -> tuple[StrategyRequest, PdfUpload | None]:
    mimetype = request.mimetype
    if mimetype == "application/json":
        return parse_strategy_request(read_json_object(_json_body(request))), None
    if mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send application/json or multipart/form-data")
    limit = get_settings().max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request must be at most {limit} bytes")
    request.max_content_length = limit  # also bounds chunked bodies without a length
    try:
        return _parse_multipart(request)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"the request must be at most {limit} bytes") from None


def _json_body(request: flask.Request) -> bytes:
    """The raw JSON body, refused (413) past MAX_JSON_BODY_BYTES by its Content-Length
    before it is read. A body without one (chunked) is never read: gunicorn does not
    mark its input terminated, so werkzeug would hand us an empty stream; say so."""
    limit = get_settings().max_json_body_bytes
    message = f"a JSON body must be at most {limit} bytes (send a PDF as multipart or upload)"
    if (
        request.content_length is None
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    ):
        raise InvalidArgument("send the body with a Content-Length (a chunked body is not read)")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(message)
    request.max_content_length = limit
    try:
        return request.get_data()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(message) from None


def _parse_multipart(request: flask.Request) -> tuple[StrategyRequest, PdfUpload | None]:
    form: MultiDict[str, str] = request.form
    files = request.files
    if not form and not files and request.content_length:
        raise InvalidArgument("the multipart body could not be read")
    for name in files:
        if name != PDF_FIELD:
            raise InvalidArgument(f"{name}: unknown file field", field=name)
    if len(files.getlist(PDF_FIELD)) > 1:
        raise InvalidArgument("pdf: send one file", field=PDF_FIELD)
    data: dict[str, Any] = {}
    for name in form:
        values = form.getlist(name)
        if name in LIST_FIELDS:
            data[name] = values
        elif len(values) > 1:
            raise InvalidArgument(f"{name}: give it once", field=name)
        elif name in BOOL_FIELDS:
            data[name] = _form_bool(name, values[0])
        else:
            data[name] = values[0]
    body = parse_strategy_request(data)
    upload = files.get(PDF_FIELD)
    pdf = PdfUpload(data=upload.read(), filename=upload.filename) if upload else None
    return body, pdf


def _form_bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidArgument(f"{name}: must be true or false", field=name)


def _create_upload(request: flask.Request, uid: str) -> flask.Response:
    """POST /v1/uploads → 201 with a resumable upload session for one large PDF."""
    if request.content_length and request.mimetype != "application/json":
        raise UnsupportedMediaType("send application/json")
    raw = _json_body(request)
    if raw and request.mimetype != "application/json":
        raise UnsupportedMediaType("send application/json")
    body = upload_sessions.parse_upload_request(read_json_object(raw) if raw else {})
    session = upload_sessions.create_session(uid, body, request.headers.get("Origin"))
    return json_response(session, HTTPStatus.CREATED)
