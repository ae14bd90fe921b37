"""The Gemini key never shows (SPEC §3, §5; issue 4 item 7).

The key the functions actually run with is read from the environment of the
running function processes (``/proc/PID/environ`` of the parts recorded in the
stack's state.json), so the test follows whatever key the stack was given.
After driving a success, a PDF task, Gemini failures (400, 503) and a few bad
requests, the key must appear nowhere: not in the function logs, not in the
task documents, not in any answer. Users see no stack traces either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.integration.conftest import STATE_FILE, Api, StandIn, TaskWatcher, User
from tests.integration.test_access import _run_function

pytestmark = pytest.mark.integration

STRATEGY_CALL = "generateContent"
FUNCTION_PARTS = ("submit", "process", "status")
LOGGED_PARTS = (*FUNCTION_PARTS, "bridge")
TRACE_SIGNS = ("Traceback", 'File "/', "site-packages", '.py", line')
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    return state


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


@pytest.fixture(scope="module")
def gemini_key(stack: dict[str, str]) -> str:
    """The key every function process runs with (the same one in each)."""
    parts = _state()["parts"]
    keys = {_environ(int(parts[name]["pid"])).get("GEMINI_API_KEY") for name in FUNCTION_PARTS}
    assert len(keys) == 1, "the functions run with different keys"
    key = keys.pop()
    assert key, "the functions run without GEMINI_API_KEY"
    # Long and distinctive enough that a hit cannot be a coincidence.
    assert len(key) >= 16, key
    return key


def _logs() -> dict[str, bytes]:
    parts = _state()["parts"]
    return {name: Path(parts[name]["log"]).read_bytes() for name in LOGGED_PARTS}


def _no_trace(text: str) -> None:
    for sign in TRACE_SIGNS:
        assert sign not in text, f"{sign!r} in {text[:500]}"


@pytest.fixture(scope="module")
def driven(
    api: Api,
    http: httpx.Client,
    stack: dict[str, str],
    new_user: Callable[[], User],
    standin: StandIn,
    watcher: TaskWatcher,
) -> dict[str, Any]:
    """One user's worth of success, failure and refusal, with everything they answered."""
    user = new_user()
    marker_400, marker_503 = f"sec400-{user.uid[:8]}", f"sec503-{user.uid[:8]}"
    standin.fault(marker_400, endpoint=STRATEGY_CALL, status=400)
    standin.fault(marker_503, endpoint=STRATEGY_CALL, status=503)
    answers: list[httpx.Response] = []

    ok = api.submit(user, brief="Secrets check: a bakery in Oradea", urls=["https://example.com/"])
    with_pdf = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        files=[
            ("brief", (None, "Secrets check with a PDF")),
            ("pdf", ("b.pdf", PDF, "application/pdf")),
        ],
    )
    bad_400 = api.submit(user, brief=f"Secrets check {marker_400}")
    bad_503 = api.submit(user, brief=f"Secrets check {marker_503}")
    answers += [ok, with_pdf, bad_400, bad_503]
    task_ids = [a.json()["task_id"] for a in answers]
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]

    # Refusals of every kind the functions make.
    answers += [
        api.submit(user, brief=""),
        api.submit(user, brief="x", urls=["http://169.254.169.254/computeMetadata/v1/"]),
        api.submit(None, brief="x"),
        http.post(
            f"{stack['SUBMIT_URL']}/v1/strategies",
            content=b'{"brief": "\xff"}',
            headers={**user.headers, "Content-Type": "application/json"},
        ),
        http.post(
            f"{stack['SUBMIT_URL']}/v1/strategies",
            content=b"x",
            headers={**user.headers, "Content-Type": "text/plain"},
        ),
        http.get(f"{stack['SUBMIT_URL']}/v1/strategies", headers=user.headers),
        api.status(user, "0" * 32),
        http.get(f"{stack['STATUS_URL']}/v1/tasks/{'0' * 32}/image", headers=user.headers),
        http.request("PATCH", f"{stack['STATUS_URL']}/v1/tasks/abc", headers=user.headers),
        http.post(
            f"{stack['SUBMIT_URL']}/v1/strategies",
            headers={**user.headers, "Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
            json={"brief": "forged"},
        ),
    ]
    tasks = watcher.wait_all(task_ids, timeout=90)
    # The outcomes the test is about really happened.
    assert tasks[task_ids[0]]["status"] == "COMPLETED"
    assert tasks[task_ids[1]]["status"] == "COMPLETED"
    assert tasks[task_ids[2]]["status"] == "FAILED"
    assert tasks[task_ids[3]]["status"] == "FAILED"
    assert tasks[task_ids[3]]["error"]["retryable"] is True
    # Finished tasks as the status function shows them, and a refused cancel.
    answers += [api.status(user, task_id) for task_id in task_ids]
    answers.append(api.cancel(user, task_ids[0]))
    return {"user": user, "task_ids": task_ids, "answers": answers}


def test_the_key_is_in_use(gemini_key: str, driven: dict[str, Any], standin: StandIn) -> None:
    """The canary must really travel to Gemini, or its absence proves nothing
    (the stand-in answers 403 to a call without an ``x-goog-api-key``)."""
    calls = standin.requests("Secrets check: a bakery in Oradea", endpoint=STRATEGY_CALL)
    assert calls, "the success task never reached the stand-in"


def test_the_key_is_not_in_the_function_logs(gemini_key: str, driven: dict[str, Any]) -> None:
    logs = _logs()
    # The status function logs only failures; the others log every task.
    assert logs["submit"] and logs["process"], {name: len(text) for name, text in logs.items()}
    leaks = [name for name, text in logs.items() if gemini_key.encode() in text]
    assert leaks == [], f"the Gemini key is in the logs of {leaks}"


def test_the_key_is_not_in_task_documents(
    gemini_key: str, driven: dict[str, Any], tasks_collection: Any
) -> None:
    user: User = driven["user"]
    docs = [
        snap.to_dict()
        for snap in tasks_collection.where(filter=FieldFilter("uid", "==", user.uid)).stream()
    ]
    assert len(docs) == len(driven["task_ids"])
    for doc in docs:
        text = json.dumps(doc, default=str)
        assert gemini_key not in text
        if doc.get("error"):
            _no_trace(doc["error"]["message"])
            assert "google.genai" not in doc["error"]["message"]
            assert "ClientError" not in doc["error"]["message"]
            assert "ServerError" not in doc["error"]["message"]


def test_the_key_and_stack_traces_are_not_in_any_answer(
    gemini_key: str, driven: dict[str, Any]
) -> None:
    answers: list[httpx.Response] = driven["answers"]
    statuses = sorted({a.status_code for a in answers})
    assert {200, 202, 400, 401, 404, 405, 409, 415} <= set(statuses), statuses
    for answer in answers:
        assert gemini_key not in answer.text
        assert gemini_key.lower() not in str(answer.headers).lower()
        _no_trace(answer.text)
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert set(error) == {"code", "message", "field"}


def test_failed_tasks_say_what_happened_in_plain_words(driven: dict[str, Any]) -> None:
    failed = [a.json() for a in driven["answers"] if a.status_code == 200 and a.json().get("error")]
    assert len(failed) == 2
    for task in failed:
        error = task["error"]
        assert error["code"].startswith("gemini_")
        assert 0 < len(error["message"]) <= 500
        _no_trace(error["message"])


def test_stack_traces_only_where_error_reporting_reads_them(driven: dict[str, Any]) -> None:
    """A logged exception's traceback is in ``stack_trace`` (Error Reporting reads it),
    never in the message; the failed attempts of the driven tasks did log one, and no
    brief text is in any of them."""
    traces = []
    for text in _logs().values():
        for line in text.decode(errors="replace").splitlines():
            if line.startswith("{") and '"severity"' in line:
                entry = json.loads(line)
                _no_trace(entry.get("message", ""))
                if "stack_trace" in entry:
                    traces.append(entry["stack_trace"])
    assert traces, "no failed attempt logged its stack trace"
    for trace in traces:
        assert trace.startswith("Traceback (most recent call last):")
        assert "Secrets check" not in trace


@pytest.mark.parametrize(
    ("project", "extra"),
    [
        ("real-project", {}),  # emulator variable with a real project
        ("demo-secrets", {"LEASE_SECONDS": "5"}),  # a lease shorter than one attempt
    ],
    ids=["emulator-for-real-project", "lease-too-short"],
)
def test_a_refused_configuration_does_not_log_the_key(
    tmp_path: Path, project: str, extra: dict[str, str]
) -> None:
    """When the settings refuse the environment, the function fails its cold start and
    the platform logs why; that message must not quote the environment's secrets
    (pydantic's ValidationError prints ``input_value=`` with every field it read)."""
    canary = "canary-gemini-key-7f3a9c1e5b2d"
    code, status, log = _run_function(
        tmp_path,
        "submit_strategy",
        "http",
        project,
        extra_env={"GEMINI_API_KEY": canary, **extra},
    )
    assert status is None and code not in (None, 0), log[-2000:]  # it did refuse
    assert "validation error for Settings" in log
    # pydantic shortens long reprs in the middle: look for any 10 characters of the key.
    pieces = {canary[i : i + 10] for i in range(len(canary) - 9)}
    leaked = sorted(piece for piece in pieces if piece in log)
    assert leaked == [], f"part of the Gemini key is in the cold-start error: {leaked[:3]}"
