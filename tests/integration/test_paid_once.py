"""A strategy is paid for once whatever fails after it (issue 10): Cloud Storage
failing on the preview, through the whole stack.

The bucket is taken away while the worker draws the preview (the stand-in holds the
image call until the test has done so), so that storing it fails as an outage
would; the task must end COMPLETED with an ``image_error``, after exactly one
strategy call and one image call.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared import clients
from shared.settings import get_settings
from tests.integration.conftest import Api, StandIn, TaskWatcher, User

# Exclusive: it takes the bucket away and slows every image call; heavy: its timing
# (a 3 s image call to take the bucket away under) needs the machine (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive, pytest.mark.heavy]

STRATEGY_CALL = "streamGenerateContent"


def test_storage_failing_on_the_preview_completes_after_one_strategy_call(
    api: Api, user: User, watcher: TaskWatcher, standin: StandIn, stack: dict, marker: str
) -> None:
    bucket = clients.storage().bucket(get_settings().bucket_name)
    # The image call waits 3 s: long enough to take the bucket away under it.
    standin.fault("", endpoint="image", latency_s=3.0, times=1)
    task_id = api.submit_ok(user, brief=f"Hatter in Arad {marker}")
    taken: dict[str, Any] = {}

    def take_the_bucket_away_while_drawing() -> None:
        doc = clients.firestore().collection(get_settings().tasks_collection).document(task_id)
        ready = threading.Event()

        def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
            data = snapshots[0].to_dict() if snapshots and snapshots[0].exists else {}
            if (data.get("progress") or {}).get("stage") == "drawing_image":
                ready.set()

        watch = doc.on_snapshot(on_change)
        try:
            taken["drawing"] = ready.wait(30)
        finally:
            watch.unsubscribe()
        for blob in bucket.list_blobs(prefix="results/"):
            blob.delete()
        bucket.delete(force=True)
        taken["deleted"] = True

    helper = threading.Thread(target=take_the_bucket_away_while_drawing)
    helper.start()
    try:
        task = watcher.wait(task_id)
    finally:
        helper.join(60)
        if not bucket.exists():
            clients.storage().create_bucket(bucket.name)
    assert taken == {"drawing": True, "deleted": True}
    assert task["status"] == "COMPLETED", task.get("error")
    assert task["result"]["image"] is None
    assert task["result"]["image_error"]["code"] == "preview_not_stored"
    assert task["attempts"] == 1
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 1
    strategy_name = task["result"]["strategy"]["strategy_name"]
    assert len(standin.requests(strategy_name, endpoint="image")) == 1
    # The paid image counts in the usage although it could not be stored.
    assert task["result"]["usage"]["total_tokens"] > 0
