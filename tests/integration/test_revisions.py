"""Revisions and versions (issue 19), through the stack: a revision is a new task made
like a submit, from the parent's strategy, sources and the instruction; the versions of
a strategy are listed oldest first; a deleted root leaves its later versions working."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import clients
from shared.settings import get_settings
from tests.integration.conftest import Api, StandIn, TaskWatcher, User

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n% revision test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STRATEGY_CALL = "generateContent"


def _revise(
    http: httpx.Client,
    stack: dict,
    user: User,
    task_id: str,
    headers: dict | None = None,
    **body: Any,
) -> httpx.Response:
    return http.post(
        f"{stack['SUBMIT_URL']}/v1/tasks/{task_id}/revisions",
        headers={**user.headers, **(headers or {})},
        json=body,
    )


def _tasks_of(uid: str) -> set[str]:
    collection = clients.firestore().collection(get_settings().tasks_collection)
    return {s.id for s in collection.where(filter=FieldFilter("uid", "==", uid)).stream()}


def _finished_with_pdf(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher, brief: str
) -> dict[str, Any]:
    task_id = Api(stack, http).submit_pdf(user, PDF, brief=brief, language="ro", image="false")
    task = watcher.wait(task_id)
    assert task["status"] == "COMPLETED", task.get("error")
    return task


def test_a_revision_builds_on_its_parent_and_the_versions_line_up(
    http: httpx.Client,
    stack: dict,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
) -> None:
    root = _finished_with_pdf(http, stack, user, watcher, f"A cider brand in Sibiu {marker}")
    answer = _revise(http, stack, user, root["task_id"], instruction="Halve the budget")
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"task_id", "status", "status_url"}
    second = watcher.wait(answer.json()["task_id"])
    assert second["status"] == "COMPLETED", second.get("error")
    assert (second["parent_task_id"], second["root_task_id"], second["version"]) == (
        root["task_id"],
        root["task_id"],
        2,
    )
    assert root["root_task_id"] == root["task_id"] and root["version"] == 1
    # The same sources (the PDF is not uploaded again) and language; the instruction.
    assert second["request"]["pdf"] == root["request"]["pdf"]
    assert second["request"]["language"] == "ro"
    assert second["request"]["revision"]["instruction"] == "Halve the budget"
    assert second["request"]["revision"]["strategy"] == root["result"]["strategy"]
    # What Gemini was asked: the instruction, then the parent's strategy.
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert len(calls) == 2
    revision_call = next(c for c in calls if "<instruction>" in c["match_text"])
    assert "Halve the budget" in revision_call["match_text"]
    assert root["result"]["strategy"]["strategy_name"] in revision_call["match_text"]

    third_answer = _revise(
        http, stack, user, second["task_id"], instruction="Focus on TikTok", image=False
    )
    third = watcher.wait(third_answer.json()["task_id"])
    assert (third["parent_task_id"], third["root_task_id"], third["version"]) == (
        second["task_id"],
        root["task_id"],
        3,
    )
    listed = http.get(
        f"{stack['STATUS_URL']}/v1/tasks/{third['task_id']}/versions", headers=user.headers
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["root_task_id"] == root["task_id"]
    versions = body["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["task_id"] for v in versions] == [
        root["task_id"],
        second["task_id"],
        third["task_id"],
    ]
    assert [v["instruction"] for v in versions] == [None, "Halve the budget", "Focus on TikTok"]
    assert all(v["status"] == "COMPLETED" and v["strategy_name"] for v in versions)

    # Deleting the root leaves the later versions working, with their PDF.
    url = f"{stack['STATUS_URL']}/v1/tasks/{root['task_id']}"
    assert http.delete(url, headers=user.headers).status_code == 204
    after = http.get(
        f"{stack['STATUS_URL']}/v1/tasks/{second['task_id']}/versions", headers=user.headers
    ).json()["versions"]
    assert [v["version"] for v in after] == [2, 3]
    bucket = clients.storage().bucket(get_settings().bucket_name)
    assert bucket.blob(root["request"]["pdf"]["gcs_uri"].split("/", 3)[3]).exists()
    fourth = _revise(http, stack, user, second["task_id"], instruction="For students")
    assert watcher.wait(fourth.json()["task_id"])["status"] == "COMPLETED"


def test_a_replayed_revision_is_the_same_task(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher, marker: str
) -> None:
    root = _finished_with_pdf(http, stack, user, watcher, f"A bakery {marker}")
    key = {"Idempotency-Key": f"rev-{marker}"}
    first = _revise(http, stack, user, root["task_id"], key, instruction="Add radio")
    again = _revise(http, stack, user, root["task_id"], key, instruction="Add radio")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["task_id"] == again.json()["task_id"]
    other = _revise(http, stack, user, root["task_id"], key, instruction="Drop radio")
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "instruction"),
        ({"instruction": "   "}, 400, "instruction"),
        ({"instruction": "x" * 2001}, 400, "instruction"),
        ({"instruction": "ok", "language": "not a tag!"}, 400, "language"),
        ({"instruction": "ok", "brief": "another"}, 400, "brief"),
        ({"instruction": 7}, 400, "instruction"),
    ],
)
def test_a_bad_revision_is_refused_and_leaves_nothing(
    http: httpx.Client,
    stack: dict,
    user: User,
    watcher: TaskWatcher,
    marker: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    root = _finished_with_pdf(http, stack, user, watcher, f"A florist {marker}")
    before = _tasks_of(user.uid)
    answer = _revise(http, stack, user, root["task_id"], **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field
    assert _tasks_of(user.uid) == before


def test_only_the_owner_revises_a_finished_task(
    http: httpx.Client,
    stack: dict,
    user: User,
    new_user: Callable[[], User],
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
) -> None:
    root = _finished_with_pdf(http, stack, user, watcher, f"A gym {marker}")
    stranger = new_user()
    assert _revise(http, stack, stranger, root["task_id"], instruction="x").status_code == 404
    listed = http.get(
        f"{stack['STATUS_URL']}/v1/tasks/{root['task_id']}/versions", headers=stranger.headers
    )
    assert listed.status_code == 404
    assert _revise(http, stack, user, "no-such-task", instruction="x").status_code == 404
    assert _tasks_of(stranger.uid) == set()

    standin.fault(f"slow {marker}", endpoint=STRATEGY_CALL, latency_s=5)
    slow = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        json={"brief": f"slow {marker}", "image": False},
    ).json()["task_id"]
    unfinished = _revise(http, stack, user, slow, instruction="x")
    assert unfinished.status_code == 409
    assert unfinished.json()["error"]["code"] == "failed_precondition"
    http.delete(f"{stack['STATUS_URL']}/v1/tasks/{slow}", headers=user.headers)
