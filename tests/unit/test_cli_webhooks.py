"""The ``tinkerbell`` command and signed webhooks (docs/webhooks.md): ``--webhook-url`` on
``submit`` (JSON and multipart) and ``revise``, ``webhook-secret [--rotate]``, and the
delivery with its attempts in ``status``.

The command runs whole (``run``) against a fake of the API and of Auth's sign-up
(``Api``, an httpx MockTransport), which records every request it gets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import tinkerbell, transport
from cli.errors import Exit
from cli.show import describe_task, webhook_lines
from cli.tinkerbell import run
from tests.unit.test_cli_auth import PDF

HOOK = "https://hooks.example.com/tinkerbell"
SECRET = "whsec_" + "A" * 43 + "="
TARGET = [
    "--submit-url",
    "https://submit.example",
    "--status-url",
    "https://status.example",
    "--project",
    "tinkerbell-prod",
    "--api-key",
    "AIza-prod",
]
DELIVERED = {
    "event_id": "evt_1",
    "event_type": "task.completed",
    "state": "DELIVERED",
    "due_at": None,
    "sending_until": None,
    "attempts": [
        {"at": "2026-09-21T10:00:00Z", "status_code": None, "latency_ms": 10000,
         "error": "no answer within 10 s"},
        {"at": "2026-09-21T10:00:20Z", "status_code": 500, "latency_ms": 80, "error": None},
        {"at": "2026-09-21T10:01:20Z", "status_code": 204, "latency_ms": 41, "error": None},
    ],
    "finished_at": "2026-09-21T10:01:20Z",
}  # fmt: skip


class Api:
    """Auth's sign-up and the routes the commands call; every request recorded."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.task: dict[str, Any] = {"task_id": "t1", "status": "PENDING", "request": {}}
        self.secrets = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/accounts:signUp"):
            answer = {"localId": "u1", "idToken": "token-1", "refreshToken": "r1"}
            return httpx.Response(200, json=answer | {"expiresIn": "3600"})
        if path in ("/v1/strategies", "/v1/tasks/t1/revisions"):
            if b"ftp://" in request.content:  # as the API refuses a non-https URL
                error = {"code": "invalid_argument", "message": "webhook_url: must use https"}
                return httpx.Response(400, json={"error": error | {"field": "webhook_url"}})
            accepted = {"task_id": "t2", "status": "PENDING", "status_url": "https://s/t2"}
            return httpx.Response(202, json=accepted)
        if path == "/v1/webhooks/secret" and request.method == "POST":
            if request.url.params.get("rotate") == "true" or not self.secrets:
                self.secrets += 1
            made = {"secret": f"{SECRET[:-2]}{self.secrets}=", "created_at": "2026-09-21T10:00:00Z"}
            return httpx.Response(200, json=made)
        if path == "/v1/tasks/t1":
            return httpx.Response(200, json=self.task)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    client = httpx.Client(transport=httpx.MockTransport(fake.handler))
    monkeypatch.setattr(tinkerbell.Context, "http", property(lambda _ctx: client))
    monkeypatch.setattr(transport.time, "sleep", lambda _s: None)
    return fake


def cli(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    code = run([*argv, *TARGET], env=env, cwd=tmp_path, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def signed_in(tmp_path: Path, api: Api) -> None:
    code, _, err = cli(tmp_path, "login")
    assert code == Exit.OK, err


def test_submit_sends_the_webhook_url_only_when_given(
    tmp_path: Path, api: Api, signed_in: None
) -> None:
    code, out, err = cli(tmp_path, "submit", "A bakery", "--language", "ro", "--webhook-url", HOOK)
    assert code == Exit.OK, err
    assert out.strip() == "t2"
    code, _, err = cli(tmp_path, "submit", "A florist", "--language", "ro")
    assert code == Exit.OK, err
    first, second = (json.loads(r.content) for r in api.sent("/v1/strategies"))
    assert first["webhook_url"] == HOOK and first["brief"] == "A bakery"
    assert "webhook_url" not in second


def test_submit_with_a_pdf_sends_the_webhook_url_as_a_form_field(
    tmp_path: Path, api: Api, signed_in: None
) -> None:
    pdf = tmp_path / "brief.pdf"
    pdf.write_bytes(PDF)
    code, _, err = cli(tmp_path, "submit", "A bakery", "--pdf", str(pdf), "--webhook-url", HOOK)
    assert code == Exit.OK, err
    (sent,) = api.sent("/v1/strategies")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert b'name="webhook_url"\r\n\r\n' + HOOK.encode() + b"\r\n" in sent.content


def test_revise_sends_the_webhook_url_only_when_given(
    tmp_path: Path, api: Api, signed_in: None
) -> None:
    code, _, err = cli(tmp_path, "revise", "t1", "halve the budget", "--webhook-url", HOOK)
    assert code == Exit.OK, err
    code, _, err = cli(tmp_path, "revise", "t1", "double it")
    assert code == Exit.OK, err
    first, second = (json.loads(r.content) for r in api.sent("/v1/tasks/t1/revisions"))
    assert first == {"instruction": "halve the budget", "image": True, "webhook_url": HOOK}
    assert "webhook_url" not in second


@pytest.mark.parametrize("command", [["submit", "A bakery"], ["revise", "t1", "halve it"]])
def test_a_refused_webhook_url_is_a_refusal_naming_the_field(
    tmp_path: Path, api: Api, signed_in: None, command: list[str]
) -> None:
    code, out, err = cli(tmp_path, *command, "--webhook-url", "ftp://x.example/", "--json")
    assert code == Exit.REFUSED
    error = json.loads(out)["error"]
    assert error["field"] == "webhook_url" and error["code"] == "invalid_argument"
    assert "webhook_url: must use https (invalid_argument, HTTP 400)" in err


def test_webhook_secret_prints_the_secret_alone_and_rotates_on_request(
    tmp_path: Path, api: Api, signed_in: None
) -> None:
    code, out, err = cli(tmp_path, "webhook-secret")
    assert code == Exit.OK, err
    first = out.strip()
    assert first.startswith("whsec_") and out == first + "\n" and err == ""
    code, out, err = cli(tmp_path, "webhook-secret", "--rotate")
    assert code == Exit.OK and out.strip() != first
    assert "rotated" in err
    code, out, _ = cli(tmp_path, "webhook-secret", "--json")
    made = json.loads(out)
    assert made == {"secret": made["secret"], "created_at": "2026-09-21T10:00:00Z"}
    assert made["secret"].startswith("whsec_")
    sent = api.sent("/v1/webhooks/secret")
    assert [r.method for r in sent] == ["POST"] * 3
    assert [r.url.query for r in sent] == [b"", b"rotate=true", b""]
    assert all(r.headers["Authorization"] == "Bearer token-1" for r in sent)


def test_webhook_secret_needs_a_sign_in(tmp_path: Path, api: Api) -> None:
    code, _, err = cli(tmp_path, "webhook-secret")
    assert code == Exit.AUTH and "tinkerbell login" in err
    assert api.sent("/v1/webhooks/secret") == []


def test_status_shows_the_delivery_and_every_attempt(
    tmp_path: Path, api: Api, signed_in: None
) -> None:
    api.task = {
        "task_id": "t1",
        "status": "COMPLETED",
        "request": {"brief": "A bakery", "language": "en", "webhook_url": HOOK},
        "webhook": DELIVERED,
    }
    code, out, err = cli(tmp_path, "status", "t1")
    assert code == Exit.OK, err
    lines = out.splitlines()
    start = lines.index(f"webhook  {HOOK}")
    assert lines[start + 1 :] == [
        "         task.completed evt_1: DELIVERED at 2026-09-21T10:01:20Z",
        "          1. 2026-09-21T10:00:00Z  no answer (no answer within 10 s)  10000 ms",
        "          2. 2026-09-21T10:00:20Z  HTTP 500  80 ms",
        "          3. 2026-09-21T10:01:20Z  HTTP 204  41 ms",
    ]
    code, out, _ = cli(tmp_path, "status", "t1", "--json")
    assert json.loads(out)["webhook"] == DELIVERED  # as the API answered it


def test_a_pending_or_failed_delivery_says_what_comes_next() -> None:
    pending = DELIVERED | {
        "state": "PENDING",
        "due_at": "2026-09-21T10:06:20Z",
        "finished_at": None,
        "attempts": DELIVERED["attempts"][:2],
    }
    task = {"request": {"webhook_url": HOOK}, "webhook": pending}
    assert "PENDING: next attempt at 2026-09-21T10:06:20Z" in webhook_lines(task)[1]
    assert len(webhook_lines(task)) == 4
    failed = pending | {"state": "FAILED", "due_at": None, "finished_at": "2026-09-22T09:00:00Z"}
    lines = webhook_lines({"request": {"webhook_url": HOOK}, "webhook": failed})
    assert "FAILED: given up after 2 attempts at 2026-09-22T09:00:00Z" in lines[1]


def test_before_its_end_a_task_says_its_webhook_will_be_sent() -> None:
    task = {"task_id": "t1", "status": "PROCESSING", "request": {"webhook_url": HOOK}}
    assert describe_task(task).splitlines()[-1] == f"webhook  {HOOK}: sent when the task ends"


def test_a_task_without_a_webhook_shows_none() -> None:
    task = {"task_id": "t1", "status": "COMPLETED", "request": {"brief": "b"}, "webhook": None}
    assert webhook_lines(task) == []
    assert "webhook" not in describe_task(task)


def test_the_help_names_the_webhook_options(tmp_path: Path) -> None:
    code, out, _ = cli(tmp_path, "--help")
    assert code == 0 and "webhook-secret" in out
    for command in ("submit", "revise"):
        code, out, _ = cli(tmp_path, command, "--help")
        assert code == 0 and "--webhook-url URL" in out
    code, out, _ = cli(tmp_path, "webhook-secret", "--help")
    assert code == 0 and "--rotate" in out
