"""``task_status``: everything but creating tasks (SPEC §2.3, §2.6-§2.8).

For the task's owner: GET and DELETE /v1/tasks/{task_id}, its preview, its versions
(GET /v1/tasks/{task_id}/versions) and its read-only links (GET/POST
/v1/tasks/{task_id}/shares, DELETE /v1/shares/{share_id}); for anyone with a link, no
sign-in: GET /v1/shared/{share_id} and its preview; for the signed-in user: DELETE
/v1/me (erase everything of theirs) and POST /v1/webhooks/secret (their signing secret).
"""

from __future__ import annotations

import re
from http import HTTPStatus

import flask
from pydantic import ValidationError

from functions.http import handles_errors, json_response, read_json_object, require_method
from shared import erasure, shares, tasks, uploads, versions, webhook_secrets
from shared.app_check import HEADER as APP_CHECK_HEADER
from shared.app_check import verify_app_check
from shared.auth import verify_user
from shared.errors import InvalidArgument, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.models import ImageRef, ShareRequest
from shared.uploads import PREVIEW_TYPES

_ID = r"[A-Za-z0-9_-]{1,128}"
_TASK = re.compile(rf"(?:^|/)v1/tasks/(?P<task_id>{_ID})(?P<sub>/image|/shares|/versions)?/?\Z")
_SHARE = re.compile(rf"(?:^|/)v1/(?P<kind>shares|shared)/(?P<share_id>{_ID})(?P<sub>/image)?/?\Z")
_ME = re.compile(r"(?:^|/)v1/me/?\Z")
_WEBHOOK_SECRET = re.compile(r"(?:^|/)v1/webhooks/secret/?\Z")
MAX_SHARE_BODY_BYTES = 1024


@handles_errors
def task_status(request: flask.Request) -> flask.Response:
    task, share, me = (route.search(request.path) for route in (_TASK, _SHARE, _ME))
    if share is not None and share["kind"] == "shared":
        return _shared(share["share_id"], bool(share["sub"]), request)
    if _WEBHOOK_SECRET.search(request.path):
        return _webhook_secret(request)
    if task is None and me is None and (share is None or share["sub"]):
        raise NotFound(f"no such route: {request.path}")
    if task is not None and task["sub"] == "/shares":
        require_method(request, "GET", "POST")
    elif task is not None and not task["sub"]:
        require_method(request, "GET", "DELETE")
    elif task is not None:
        require_method(request, "GET")
    else:
        require_method(request, "DELETE")
    verify_app_check(request.headers.get(APP_CHECK_HEADER))
    uid = verify_user(request.headers.get("Authorization"))
    if me is not None:
        erased = erasure.erase_user(uid)
        return json_response(erased, HTTPStatus.OK if erased.done else HTTPStatus.ACCEPTED)
    if share is not None:
        shares.revoke_share(share["share_id"], uid=uid)
        return flask.Response(status=HTTPStatus.NO_CONTENT)
    assert task is not None
    task_id = task["task_id"]
    if task["sub"] == "/image":
        owned = tasks.get_owned_task(task_id, uid=uid)
        return _image(owned.result.image if owned.result else None)
    if task["sub"] == "/versions":
        return json_response(versions.versions_of(task_id, uid=uid))
    if task["sub"] == "/shares":
        if request.method == "GET":
            return json_response(shares.list_shares(task_id, uid=uid))
        made = shares.create_share(task_id, uid=uid, request=_share_request(request))
        return json_response(made, HTTPStatus.CREATED)
    if request.method == "DELETE":
        if request.args.get("cancel_only", "").lower() == "true":
            # A Cancel button: never erases a task that finished meanwhile (409).
            return json_response(tasks.cancel_task(task_id, uid=uid).public())
        cancelled = erasure.delete_task(task_id, uid=uid)
        if cancelled is None:  # it had finished: erased
            return flask.Response(status=HTTPStatus.NO_CONTENT)
        return json_response(cancelled.public())
    return json_response(tasks.get_owned_task(task_id, uid=uid).public())


def _webhook_secret(request: flask.Request) -> flask.Response:
    """POST /v1/webhooks/secret[?rotate=true]: the key the user's events are signed with."""
    require_method(request, "POST")
    verify_app_check(request.headers.get(APP_CHECK_HEADER))
    uid = verify_user(request.headers.get("Authorization"))
    rotate = request.args.get("rotate", "").lower()
    if rotate not in ("", "true", "false"):
        raise InvalidArgument("rotate: must be true or false", field="rotate")
    made = webhook_secrets.rotate(uid) if rotate == "true" else webhook_secrets.get_or_create(uid)
    return json_response(made)


def _shared(share_id: str, image: bool, request: flask.Request) -> flask.Response:
    """A read-only link: no sign-in (App Check still applies), lookups counted per client."""
    require_method(request, "GET")
    verify_app_check(request.headers.get(APP_CHECK_HEADER))
    client = _client_address(request)
    if image:
        return _image(shares.shared_image(share_id, client=client))
    image_path = f"/v1/shared/{share_id}/image"
    return json_response(shares.public_view(share_id, client=client, image_path=image_path))


def _client_address(request: flask.Request) -> str:
    """The caller's address: Google's front end appends it to X-Forwarded-For (what the
    client sent comes before it and proves nothing)."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else (request.remote_addr or "unknown")


def _share_request(request: flask.Request) -> ShareRequest:
    if request.content_length and request.content_length > MAX_SHARE_BODY_BYTES:
        raise PayloadTooLarge(f"a share request must be at most {MAX_SHARE_BODY_BYTES} bytes")
    raw = request.get_data()
    if raw and request.mimetype != "application/json":
        raise UnsupportedMediaType("send application/json")
    try:
        return ShareRequest.model_validate(read_json_object(raw) if raw.strip() else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise InvalidArgument(f"{field}: {error['msg']}", field=field) from None


def _image(image: ImageRef | None) -> flask.Response:
    data = uploads.read_object(image.gcs_uri) if image else None
    if image is None or data is None or image.mime_type not in PREVIEW_TYPES:
        raise NotFound("this task has no preview image")
    response = flask.Response(data, content_type=image.mime_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    # An image and nothing else: never sniffed as another type, never run as a document.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
