"""Signed webhooks (issue 19), through the stack: a real receiver on this machine gets
each task's end from ``deliver_webhook``, signed with the owner's secret, retried after
failures (WEBHOOK_RETRY_SCHEDULE_S=[1,1] in the test settings: 3 attempts), never
redirected, cut at WEBHOOK_TIMEOUT_S (2 s), given up to the dead-letter topic, and
stopped by the task's deletion. The receiver verifies with docs/examples/webhook_receiver.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import clients, queue
from shared.models import TaskRecord, TaskRequest, TaskStatus
from shared.settings import get_settings
from tests.integration.conftest import STATE_FILE, Api, StandIn, TaskWatcher, User, _probe
from tests.receivers import Call, Receiver, load_receiver_example

pytestmark = pytest.mark.integration

STRATEGY_CALL = "generateContent"


def _secret(http: httpx.Client, stack: dict, user: User, **params: str) -> httpx.Response:
    return http.post(
        f"{stack['STATUS_URL']}/v1/webhooks/secret", headers=user.headers, params=params
    )


def _webhook_of(api: Api, user: User, task_id: str, until: str, timeout: float = 30) -> dict:
    """The task's delivery once its state is ``until``, as its owner reads it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = api.status(user, task_id)
        assert answer.status_code == 200, answer.text
        webhook = answer.json().get("webhook")
        if webhook and webhook["state"] == until:
            return dict(webhook)
        assert time.monotonic() < deadline, f"webhook never {until}: {webhook}"
        time.sleep(0.2)


def test_an_event_is_signed_retried_after_a_failure_and_recorded(
    http: httpx.Client, stack: dict, api: Api, user: User, receiver: Receiver, watcher: TaskWatcher
) -> None:
    made = _secret(http, stack, user)
    assert made.status_code == 200, made.text
    secret = made.json()["secret"]
    receiver.answer(500, 204)
    task_id = api.submit_ok(user, brief="A cider launch", webhook_url=f"{receiver.url}/hook")
    assert watcher.wait(task_id)["status"] == "COMPLETED"

    first, second = receiver.wait_for(2)
    example = load_receiver_example()
    for call in (first, second):
        event = example.verify(secret, call.headers, call.body)
        assert call.path == "/hook"
        assert abs(int(call.headers["webhook-timestamp"]) - time.time()) < 60
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event["event_id"]
    assert second.at - first.at >= 0.9  # the schedule's 1 s wait
    assert event["type"] == "task.completed" and event["task_id"] == task_id
    assert event["status"] == "COMPLETED" and event["strategy"]["strategy_name"]
    assert "uid" not in event and "request" not in event
    with pytest.raises(example.WebhookVerificationError):
        example.verify(_secret(http, stack, user, rotate="true").json()["secret"], **_call(second))

    webhook = _webhook_of(api, user, task_id, "DELIVERED")
    assert webhook["event_id"] == event["event_id"]
    assert [a["status_code"] for a in webhook["attempts"]] == [500, 204]
    assert all(a["latency_ms"] >= 0 and a["at"] for a in webhook["attempts"])
    time.sleep(1.5)
    assert len(receiver.calls) == 2  # delivered: never sent again


def _call(call: Call) -> dict[str, Any]:
    return {"headers": call.headers, "body": call.body}


def test_the_secret_stays_until_rotated_and_is_the_users_own(
    http: httpx.Client, stack: dict, user: User, new_user: Callable[[], User]
) -> None:
    first = _secret(http, stack, user).json()
    assert first["secret"].startswith("whsec_") and len(first["secret"]) >= 6 + 32
    assert _secret(http, stack, user).json() == first
    rotated = _secret(http, stack, user, rotate="true").json()
    assert rotated["secret"] != first["secret"]
    assert _secret(http, stack, user).json() == rotated
    assert _secret(http, stack, new_user()).json()["secret"] != rotated["secret"]
    anonymous = http.post(f"{stack['STATUS_URL']}/v1/webhooks/secret")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    wrong = _secret(http, stack, user, rotate="maybe")
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "rotate"
    got = http.get(f"{stack['STATUS_URL']}/v1/webhooks/secret", headers=user.headers)
    assert got.status_code == 405


def test_every_retry_failing_gives_up_to_the_dead_letter_topic(
    stack: dict, api: Api, user: User, receiver: Receiver, watcher: TaskWatcher
) -> None:
    receiver.answer(503)
    with _probe(get_settings().webhook_dead_letter_topic) as dead_letters:
        task_id = api.submit_ok(user, brief="A bakery", webhook_url=f"{receiver.url}/down")
        watcher.wait(task_id)
        webhook = _webhook_of(api, user, task_id, "FAILED")
        assert [a["status_code"] for a in webhook["attempts"]] == [503, 503, 503]
        assert webhook["due_at"] is None and webhook["finished_at"]
        given_up = _published(dead_letters, task_id)
    assert given_up == {
        "task_id": task_id,
        "event_id": webhook["event_id"],
        "reason": "retries_exhausted",
    }
    time.sleep(1.5)
    assert len(receiver.calls) == 3


def _published(probe: Callable[[], list[dict[str, str]]], task_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for attributes in probe():
            if attributes.get("task_id") == task_id:
                return attributes
        time.sleep(0.2)
    raise AssertionError(f"nothing published for {task_id}")


def test_a_redirect_is_not_followed_and_a_slow_receiver_is_cut(
    api: Api, user: User, receiver: Receiver, watcher: TaskWatcher
) -> None:
    elsewhere = {"location": f"{receiver.url}/elsewhere"}
    receiver.answer((302, 0.0, elsewhere), (200, 5.0), 204)
    task_id = api.submit_ok(user, brief="A ferry line", webhook_url=f"{receiver.url}/hook")
    watcher.wait(task_id)
    webhook = _webhook_of(api, user, task_id, "DELIVERED", timeout=45)
    redirected, slow, delivered = webhook["attempts"]
    assert (redirected["status_code"], redirected["error"]) == (302, "redirect not followed")
    assert slow["status_code"] is None and slow["error"] == "no answer within 2 s"
    assert 1900 <= slow["latency_ms"] < 4500
    assert delivered["status_code"] == 204
    assert [call.path for call in receiver.calls] == ["/hook"] * 3


def test_failed_and_cancelled_tasks_are_announced(
    api: Api,
    user: User,
    receiver: Receiver,
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, status=400)
    failed = api.submit_ok(user, brief=f"Refused {marker}", webhook_url=f"{receiver.url}/f")
    assert watcher.wait(failed)["status"] == "FAILED"
    (call,) = receiver.wait_for(1)
    event = json.loads(call.body)
    assert (event["type"], event["task_id"], event["status"]) == ("task.failed", failed, "FAILED")
    assert event["error"]["code"] and event["strategy"] is None

    slow = f"slow-{uuid.uuid4().hex[:12]}"  # not containing the refusing rule's marker
    standin.fault(slow, endpoint=STRATEGY_CALL, latency_s=5.0)
    cancelled = api.submit_ok(user, brief=f"Slow {slow}", webhook_url=f"{receiver.url}/c")
    time.sleep(0.5)
    assert api.cancel(user, cancelled).status_code == 200
    second = receiver.wait_for(2)[1]
    event = json.loads(second.body)
    assert (event["type"], event["task_id"]) == ("task.cancelled", cancelled)
    assert second.path == "/c"


def test_deleting_a_task_stops_its_pending_deliveries(
    http: httpx.Client, stack: dict, api: Api, user: User, receiver: Receiver, watcher: TaskWatcher
) -> None:
    receiver.answer(500)
    task_id = api.submit_ok(user, brief="A florist", webhook_url=f"{receiver.url}/hook")
    watcher.wait(task_id)
    receiver.wait_for(1)
    deleted = http.delete(f"{stack['STATUS_URL']}/v1/tasks/{task_id}", headers=user.headers)
    assert deleted.status_code == 204
    at_deletion = len(receiver.calls)
    time.sleep(4.0)  # two more attempts would have been made by now
    # An attempt already sending when the task went may land; none starts after it.
    assert len(receiver.calls) <= at_deletion + 1
    # ...and its message is acknowledged and dropped, not sent back for ever.
    log = Path(json.loads(STATE_FILE.read_text())["parts"]["webhooks"]["log"])
    deadline = time.monotonic() + 20  # Pub/Sub's backoff brings it back within 5 s
    while not any(
        task_id in line and "webhook dropped: the task was deleted" in line
        for line in log.read_text(errors="replace").splitlines()
    ):
        assert time.monotonic() < deadline, f"no drop of {task_id} in {log}"
        time.sleep(0.2)
    assert len(receiver.calls) <= at_deletion + 1


def test_duplicate_messages_send_each_attempt_once(
    api: Api, user: User, receiver: Receiver, watcher: TaskWatcher
) -> None:
    receiver.answer((204, 1.0))
    task_id = api.submit_ok(user, brief="A bike shop", webhook_url=f"{receiver.url}/hook")
    watcher.wait(task_id)
    for _ in range(5):  # what Pub/Sub's at-least-once delivery may do, and more
        queue.publish_webhook(task_id)
    webhook = _webhook_of(api, user, task_id, "DELIVERED")
    time.sleep(2.0)
    assert len(webhook["attempts"]) == 1
    assert len(receiver.calls) == 1


def test_a_lost_announcement_is_published_again_by_the_sweeper(
    api: Api, user: User, receiver: Receiver
) -> None:
    """A crash between a task's end and its publish: the end (and its due delivery) is
    written, no message was sent. The sweeper's query finds it and publishes it."""
    from shared import webhooks
    from shared.endings import terminal_fields

    settings = get_settings()
    now = datetime.now(UTC)
    ended_at = now - timedelta(seconds=settings.webhook_stall_s + 60)
    task_id = uuid.uuid4().hex
    url = f"{receiver.url}/lost"
    task = TaskRecord(
        task_id=task_id,
        uid=user.uid,
        status=TaskStatus.PENDING,
        created_at=ended_at,
        updated_at=ended_at,
        request=TaskRequest(brief="A lost end", webhook_url=url),
    )
    ending = terminal_fields(TaskStatus.CANCELLED, ended_at, webhook_url=url)
    document = {**task.model_dump(), **ending}
    clients.firestore().collection(settings.tasks_collection).document(task_id).set(document)
    assert task_id in webhooks.stalled_task_ids(now=now, limit=500)
    assert task_id in webhooks.republish_stalled(now)
    (call,) = receiver.wait_for(1)
    assert json.loads(call.body)["type"] == "task.cancelled"
    assert _webhook_of(api, user, task_id, "DELIVERED")["attempts"][0]["status_code"] == 204
    assert task_id not in webhooks.stalled_task_ids(now=now, limit=500)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://10.1.2.3/x", "private"),
        ("https://metadata.google.internal/x", "internal host"),
    ],
)
def test_a_revision_with_a_bad_webhook_url_is_refused(
    http: httpx.Client,
    stack: dict,
    api: Api,
    user: User,
    watcher: TaskWatcher,
    tasks_collection: Any,
    url: str,
    reason: str,
) -> None:
    from google.cloud.firestore_v1.base_query import FieldFilter

    parent = api.submit_ok(user, brief="A tea room")
    watcher.wait(parent)
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/tasks/{parent}/revisions",
        headers=user.headers,
        json={"instruction": "Halve the budget", "webhook_url": url},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == "webhook_url" and reason in error["message"]
    owned = tasks_collection.where(filter=FieldFilter("uid", "==", user.uid)).stream()
    assert [snapshot.id for snapshot in owned] == [parent]


def test_erasing_the_user_deletes_the_secret(http: httpx.Client, stack: dict, user: User) -> None:
    assert _secret(http, stack, user).status_code == 200
    ref = clients.firestore().collection(get_settings().webhook_secrets_collection)
    assert ref.document(user.uid).get().exists
    erased = http.delete(f"{stack['STATUS_URL']}/v1/me", headers=user.headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["webhook_secret"] is True
    assert not ref.document(user.uid).get().exists
