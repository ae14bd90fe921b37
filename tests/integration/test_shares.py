"""Read-only sharing (issue 19), through the stack: the owner makes, lists and revokes
links; anyone with one reads the strategy with no token at all, and nothing private."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import clients
from shared.settings import get_settings
from tests.integration.conftest import Api, StandIn, TaskWatcher, User

pytestmark = pytest.mark.integration

PUBLIC_FIELDS = {"strategy", "language", "image_url", "sources", "version", "expires_at"}
STRATEGY_CALL = "generateContent"


def _finished_task(http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher) -> str:
    brief = f"A secret plan for a cider brand {uuid.uuid4().hex}"
    task_id = Api(stack, http).submit_ok(user, brief=brief, language="ro")
    assert watcher.wait(task_id)["status"] == "COMPLETED"
    return task_id


def _share(
    http: httpx.Client, stack: dict, user: User, task_id: str, **body: Any
) -> httpx.Response:
    return http.post(
        f"{stack['STATUS_URL']}/v1/tasks/{task_id}/shares", headers=user.headers, json=body
    )


def _shares_of(task_id: str) -> list[str]:
    collection = clients.firestore().collection(get_settings().shares_collection)
    query = collection.where(filter=FieldFilter("task_id", "==", task_id))
    return [snapshot.id for snapshot in query.stream()]


def test_a_share_shows_the_strategy_to_anyone_and_nothing_private(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    made = _share(http, stack, user, task_id)
    assert made.status_code == 201, made.text
    share = made.json()
    assert set(share) == {"share_id", "task_id", "url", "created_at", "expires_at"}
    assert len(share["share_id"]) >= 32  # 192 random bits, URL-safe
    assert share["url"].endswith(f"/s/{share['share_id']}")
    expires = datetime.fromisoformat(share["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    public = httpx.get(f"{stack['STATUS_URL']}/v1/shared/{share['share_id']}")  # no token
    assert public.status_code == 200, public.text
    view = public.json()
    assert set(view) == PUBLIC_FIELDS
    assert view["language"] == "ro" and view["version"] == 1
    assert view["strategy"]["strategy_name"]
    task = http.get(f"{stack['STATUS_URL']}/v1/tasks/{task_id}", headers=user.headers).json()
    assert view["strategy"] == task["result"]["strategy"]
    for private in (task["request"]["brief"], user.uid, "usage", "cost", "gs://", task_id):
        assert private not in public.text, private

    image = httpx.get(f"{stack['STATUS_URL']}{view['image_url']}")
    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/")
    assert image.headers["x-content-type-options"] == "nosniff"

    listed = http.get(f"{stack['STATUS_URL']}/v1/tasks/{task_id}/shares", headers=user.headers)
    assert [s["share_id"] for s in listed.json()["shares"]] == [share["share_id"]]

    revoked = http.delete(
        f"{stack['STATUS_URL']}/v1/shares/{share['share_id']}", headers=user.headers
    )
    assert revoked.status_code == 204
    gone = httpx.get(f"{stack['STATUS_URL']}/v1/shared/{share['share_id']}")
    never = httpx.get(f"{stack['STATUS_URL']}/v1/shared/{'x' * 32}")
    assert gone.status_code == never.status_code == 404
    assert gone.json() == never.json()  # revoked looks like never made
    assert httpx.get(f"{stack['STATUS_URL']}{view['image_url']}").status_code == 404


def test_only_the_owner_shares_lists_and_revokes(
    http: httpx.Client,
    stack: dict,
    user: User,
    new_user: Callable[[], User],
    watcher: TaskWatcher,
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    share_id = _share(http, stack, user, task_id).json()["share_id"]
    stranger = new_user()
    base = stack["STATUS_URL"]
    assert _share(http, stack, stranger, task_id).status_code == 404
    listed = http.get(f"{base}/v1/tasks/{task_id}/shares", headers=stranger.headers)
    assert listed.status_code == 404
    assert http.delete(f"{base}/v1/shares/{share_id}", headers=stranger.headers).status_code == 404
    assert httpx.get(f"{base}/v1/shared/{share_id}").status_code == 200  # still there
    assert http.post(f"{base}/v1/tasks/{task_id}/shares", json={}).status_code == 401
    assert _shares_of(task_id) == [share_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"expires_in_days": "soon"}, "expires_in_days"),
        ({"expires_in_days": 2, "public": True}, "public"),
    ],
)
def test_a_bad_share_request_is_400_and_leaves_nothing(
    http: httpx.Client,
    stack: dict,
    user: User,
    watcher: TaskWatcher,
    body: dict[str, Any],
    field: str,
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    answer = _share(http, stack, user, task_id, **body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert _shares_of(task_id) == []


def test_an_unfinished_or_unknown_task_cannot_be_shared(
    http: httpx.Client, stack: dict, user: User, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=5)
    task_id = Api(stack, http).submit_ok(user, brief=f"Unfinished {marker}", image=False)
    refused = _share(http, stack, user, task_id)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "failed_precondition"
    assert _share(http, stack, user, "no-such-task").status_code == 404
    assert _shares_of(task_id) == []
    http.delete(f"{stack['STATUS_URL']}/v1/tasks/{task_id}", headers=user.headers)


def test_an_expired_share_answers_404(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    share_id = _share(http, stack, user, task_id, expires_in_days=1).json()["share_id"]
    doc = clients.firestore().collection(get_settings().shares_collection).document(share_id)
    doc.update({"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    assert httpx.get(f"{stack['STATUS_URL']}/v1/shared/{share_id}").status_code == 404
    listed = http.get(f"{stack['STATUS_URL']}/v1/tasks/{task_id}/shares", headers=user.headers)
    assert listed.json() == {"shares": []}


def test_share_lookups_are_limited_per_client_address(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    share_id = _share(http, stack, user, task_id).json()["share_id"]
    cap = get_settings().share_lookups_per_client_per_minute
    if datetime.now(UTC).second >= 50:  # all of it within one minute
        time.sleep(61 - datetime.now(UTC).second)
    url = f"{stack['STATUS_URL']}/v1/shared/{share_id}"
    # A proxy-set address per test (the last hop counts: what a client adds before it does not).
    address = f"203.0.113.{uuid.uuid4().int % 250}, 198.51.100.{uuid.uuid4().int % 250}"
    statuses = [
        http.get(url, headers={"X-Forwarded-For": address}).status_code for _ in range(cap + 1)
    ]
    assert statuses[:cap] == [200] * cap and statuses[cap] == 429, statuses
    spoofed = f"192.0.2.1, {address.split(', ')[1]}"  # same last hop, another first one
    assert http.get(url, headers={"X-Forwarded-For": spoofed}).status_code == 429
    other = f"192.0.2.{(uuid.uuid4().int % 250) + 2}"  # never the last hop above
    assert http.get(url, headers={"X-Forwarded-For": other}).status_code == 200


def test_deleting_a_task_revokes_its_shares(
    http: httpx.Client, stack: dict, user: User, watcher: TaskWatcher
) -> None:
    task_id = _finished_task(http, stack, user, watcher)
    share_id = _share(http, stack, user, task_id).json()["share_id"]
    url = f"{stack['STATUS_URL']}/v1/tasks/{task_id}"
    assert http.delete(url, headers=user.headers).status_code == 204
    assert httpx.get(f"{stack['STATUS_URL']}/v1/shared/{share_id}").status_code == 404
    assert _shares_of(task_id) == []
