"""The Tinkerbell HTTP API as the command uses it (SPEC §2), with the user's ID token."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cli.app_check import HEADER as APP_CHECK_HEADER
from cli.app_check import AppCheck, LimitedUseToken
from cli.auth import Auth
from cli.config import Target
from cli.errors import CliError, Exit, exit_for_http_status
from cli.transport import send

# A PDF up to this size goes in the request itself (MAX_PDF_BYTES, 30 MiB); a larger
# one through an upload session (POST /v1/uploads, SPEC §2.4), up to 50 MiB.
PDF_REQUEST_LIMIT = 30 * 1024 * 1024
PDF_REQUEST_LIMIT_ENV = "TINKERBELL_PDF_REQUEST_LIMIT"  # tests lower it
MAX_UPLOAD_PDF_BYTES = 50 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def pdf_request_limit(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get(PDF_REQUEST_LIMIT_ENV)
    if not raw:
        return PDF_REQUEST_LIMIT
    try:
        return max(0, int(raw))
    except ValueError:
        raise CliError(f"{PDF_REQUEST_LIMIT_ENV} must be a number of bytes", Exit.USAGE) from None


def new_idempotency_key() -> str:
    return f"tinkerbell-cli-{uuid.uuid4().hex}"


def api_error(answer: httpx.Response) -> CliError:
    """An error answer (``{"error": {code, message, field}}``) as a CliError."""
    try:
        error = answer.json()["error"]
        code, message, field = str(error["code"]), str(error["message"]), error.get("field")
    except (ValueError, KeyError, TypeError):
        code, message, field = f"http_{answer.status_code}", answer.reason_phrase, None
    text = f"{message} ({code}, HTTP {answer.status_code})"
    retry_after = answer.headers.get("Retry-After")
    if answer.status_code == 429 and retry_after:
        text += f"; try again in {retry_after} s"
    if answer.status_code == 401 and "App Check" in message:
        text += (
            "; this deployment requires App Check: set APP_CHECK_TOKEN (a debug token "
            "registered in the Firebase console) and FIREBASE_APP_ID, with `tinkerbell config "
            "set` or TINKERBELL_<KEY> (docs/deploy.md, App Check)"
        )
    elif answer.status_code == 401:
        text += "; run `tinkerbell login`"
    return CliError(text, exit_for_http_status(answer.status_code), code=code, field=field)


def check_task_id(task_id: str) -> str:
    if not TASK_ID.fullmatch(task_id):
        raise CliError(f"no such task: {task_id!r}", Exit.REFUSED, code="not_found")
    return task_id


@dataclass(frozen=True)
class Pdf:
    path: Path
    data: bytes

    @classmethod
    def read(cls, path: Path) -> Pdf:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CliError(f"cannot read {path}: {error.strerror or error}", Exit.USAGE) from None
        if not data.startswith(PDF_MAGIC):
            raise CliError(f"{path} is not a PDF (no %PDF- header)", Exit.USAGE)
        if len(data) > MAX_UPLOAD_PDF_BYTES:
            raise CliError(
                f"{path} is {len(data)} bytes; the limit is {MAX_UPLOAD_PDF_BYTES} (50 MiB)",
                Exit.USAGE,
            )
        return cls(path=path, data=data)


class Api:
    def __init__(self, target: Target, auth: Auth, http: httpx.Client) -> None:
        self.target = target
        self.auth = auth
        self.http = http
        self.app_check = AppCheck(target, http)
        self._hint = " (is the local stack up? `make up`)" if target.local else ""

    def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        limited_use: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """With the ID token (and the App Check token, when configured); a 401 gets one
        more try with a freshly refreshed ID token. The ID token goes only to an origin
        its sign-in was made for (``Auth.token_for``), checked before anything is sent.
        ``limited_use`` (a submit): a fresh limited-use App Check token on every attempt,
        as the function consumes it, instead of the session token."""
        token = self.auth.token_for(url)
        if limited_use:
            kwargs["auth"] = LimitedUseToken(self.app_check)
        elif app_check := self.app_check.token():
            headers = {**(headers or {}), APP_CHECK_HEADER: app_check}
        for fresh in (False, True):
            if fresh:
                token = self.auth.token_for(url, force_refresh=True)
            answer = send(
                self.http,
                method,
                url,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                hint=self._hint,
                **kwargs,
            )
            if answer.status_code != 401:
                break
        return answer

    @staticmethod
    def _json(answer: httpx.Response, expected: tuple[int, ...] = (200,)) -> dict[str, Any]:
        if answer.status_code not in expected:
            raise api_error(answer)
        try:
            body: dict[str, Any] = answer.json()
        except ValueError:
            raise CliError(
                f"the API answered {answer.status_code} without JSON", Exit.NETWORK
            ) from None
        return body

    # -- submit ------------------------------------------------------------------------------

    def submit(
        self,
        fields: dict[str, Any],
        *,
        pdf: Pdf | None,
        idempotency_key: str,
        request_limit: int = PDF_REQUEST_LIMIT,
    ) -> dict[str, Any]:
        """POST /v1/strategies: JSON, multipart with the PDF, or JSON with an upload session.

        Returns the 202 (or, for a repeated Idempotency-Key, 200) answer plus
        ``"pdf_via"``: ``"request"``, ``"upload_session"`` or null.
        """
        url = f"{self.target.submit_url}/v1/strategies"
        headers = {"Idempotency-Key": idempotency_key}
        via: str | None = None
        if pdf is not None and len(pdf.data) > request_limit:
            upload_id = self.upload(pdf)
            answer = self._request(
                "POST", url, headers, limited_use=True, json={**fields, "upload_id": upload_id}
            )
            via = "upload_session"
        elif pdf is not None:
            parts: list[tuple[str, Any]] = []
            for name, value in fields.items():
                if name == "urls":
                    parts += [("urls", (None, u)) for u in value]
                elif isinstance(value, bool):
                    parts.append((name, (None, json.dumps(value))))
                else:
                    parts.append((name, (None, str(value))))
            parts.append(("pdf", (pdf.path.name, pdf.data, "application/pdf")))
            answer = self._request("POST", url, headers, limited_use=True, files=parts)
            via = "request"
        else:
            answer = self._request("POST", url, headers, limited_use=True, json=fields)
        return self._json(answer, (200, 202)) | {"pdf_via": via}

    def revise(
        self, task_id: str, fields: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """POST /v1/tasks/{task_id}/revisions: a new version, accepted like a submit."""
        url = f"{self.target.submit_url}/v1/tasks/{check_task_id(task_id)}/revisions"
        headers = {"Idempotency-Key": idempotency_key}
        answer = self._request("POST", url, headers, limited_use=True, json=fields)
        return self._json(answer, (200, 202))

    def versions(self, task_id: str) -> dict[str, Any]:
        return self._json(self._request("GET", self._task_url(task_id) + "/versions"))

    def upload(self, pdf: Pdf) -> str:
        """An upload session for a PDF over the request limit; returns its upload_id."""
        session = self._json(
            self._request(
                "POST",
                f"{self.target.submit_url}/v1/uploads",
                json={"size_bytes": len(pdf.data), "filename": pdf.path.name},
            ),
            (200, 201),
        )
        put = send(
            self.http,
            "PUT",
            str(session["upload_url"]),
            content=pdf.data,
            headers={"Content-Type": "application/pdf"},
            timeout=httpx.Timeout(30, write=300),
            hint=self._hint,
        )
        if put.status_code not in (200, 201):
            raise CliError(
                f"the PDF upload failed: HTTP {put.status_code} {put.text[:200]}",
                exit_for_http_status(put.status_code),
            )
        return str(session["upload_id"])

    # -- tasks -------------------------------------------------------------------------------

    def _task_url(self, task_id: str) -> str:
        return f"{self.target.status_url}/v1/tasks/{check_task_id(task_id)}"

    def task(self, task_id: str) -> dict[str, Any]:
        return self._json(self._request("GET", self._task_url(task_id)))

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel an unfinished task; a finished one is left as it is (409), not erased."""
        url = self._task_url(task_id) + "?cancel_only=true"
        return self._json(self._request("DELETE", url))

    def delete(self, task_id: str) -> dict[str, Any] | None:
        """Delete a finished task for good (None); an unfinished one is cancelled first
        (the task, CANCELLED: delete it again once it has stopped)."""
        answer = self._request("DELETE", self._task_url(task_id))
        if answer.status_code == 204:
            return None
        return self._json(answer)

    def forget_me(self, rounds: int = 30) -> dict[str, Any]:
        """Erase everything of the signed-in user: DELETE /v1/me until it says done."""
        url = f"{self.target.status_url}/v1/me"
        for _ in range(rounds):
            body = self._json(self._request("DELETE", url), expected=(200, 202))
            if body.get("done"):
                return body
        raise CliError(f"the erasure is not done after {rounds} calls: run it again", Exit.NETWORK)

    def webhook_secret(self, *, rotate: bool = False) -> dict[str, Any]:
        """POST /v1/webhooks/secret: the user's signing secret, made on first ask; with
        ``rotate``, a new one (events are signed with it from then on)."""
        url = f"{self.target.status_url}/v1/webhooks/secret"
        return self._json(self._request("POST", url + ("?rotate=true" if rotate else "")))

    def image(self, task_id: str) -> tuple[bytes, str]:
        answer = self._request("GET", self._task_url(task_id) + "/image")
        if answer.status_code != 200:
            raise api_error(answer)
        return answer.content, answer.headers.get("Content-Type", "application/octet-stream")
