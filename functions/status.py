"""``task_status``: GET and DELETE /v1/tasks/{task_id} for the task's owner, its preview,
and DELETE /v1/me (erase everything of the signed-in user)."""

from __future__ import annotations

import re
from http import HTTPStatus

import flask

from functions.http import handles_errors, json_response, require_method
from shared import erasure, tasks, uploads
from shared.app_check import HEADER as APP_CHECK_HEADER
from shared.app_check import verify_app_check
from shared.auth import verify_user
from shared.errors import NotFound
from shared.uploads import PREVIEW_TYPES

_ROUTE = re.compile(r"(?:^|/)v1/tasks/(?P<task_id>[A-Za-z0-9_-]{1,128})(?P<image>/image)?/?\Z")
_ME_ROUTE = re.compile(r"(?:^|/)v1/me/?\Z")


@handles_errors
def task_status(request: flask.Request) -> flask.Response:
    match = _ROUTE.search(request.path)
    me = _ME_ROUTE.search(request.path)
    if match is None and me is None:
        raise NotFound(f"no such route: {request.path}")
    if me is not None:
        require_method(request, "DELETE")
    else:
        require_method(request, "GET", "DELETE")
    verify_app_check(request.headers.get(APP_CHECK_HEADER))
    uid = verify_user(request.headers.get("Authorization"))
    if match is None:
        erased = erasure.erase_user(uid)
        return json_response(erased, HTTPStatus.OK if erased.done else HTTPStatus.ACCEPTED)
    task_id = match["task_id"]
    if match["image"]:
        return _image(task_id, uid, request)
    if request.method == "DELETE":
        if request.args.get("cancel_only", "").lower() == "true":
            # A Cancel button: never erases a task that finished meanwhile (409).
            return json_response(tasks.cancel_task(task_id, uid=uid).public())
        cancelled = erasure.delete_task(task_id, uid=uid)
        if cancelled is None:  # it had finished: erased
            return flask.Response(status=HTTPStatus.NO_CONTENT)
        return json_response(cancelled.public())
    return json_response(tasks.get_owned_task(task_id, uid=uid).public())


def _image(task_id: str, uid: str, request: flask.Request) -> flask.Response:
    require_method(request, "GET")
    task = tasks.get_owned_task(task_id, uid=uid)
    image = task.result.image if task.result else None
    data = uploads.read_object(image.gcs_uri) if image else None
    if image is None or data is None or image.mime_type not in PREVIEW_TYPES:
        raise NotFound("this task has no preview image")
    response = flask.Response(data, content_type=image.mime_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    # An image and nothing else: never sniffed as another type, never run as a document.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
