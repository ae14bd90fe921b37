"""``make demo``: one brief through the local stack, followed live.

Signs up an anonymous user in the Auth emulator, submits a sample brief (in
Romanian) over HTTP, follows the task document with a Firestore realtime
listener, and prints the strategy.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from cli.render import render_strategy
from cli.sample_pdf import sample_pdf
from shared.models import MarketingStrategy, TaskStatus

STATE_FILE = Path(os.environ.get("TB_STACK_STATE", ".stack/dev/state.json"))
TIMEOUT_S = 180
SAMPLE_URL = "https://example.com/"
SAMPLE_BRIEF = (
    "Lansăm o cafenea de specialitate în Cluj-Napoca, lângă campusul universitar. "
    "Vrem să atragem studenți și tineri profesioniști în primele trei luni, "
    "cu un buget modest și accent pe comunitate și evenimente."
)


def main() -> None:
    if not STATE_FILE.exists():
        sys.exit(f"the local stack is not running ({STATE_FILE} missing): run `make up`")
    env: dict[str, str] = json.loads(STATE_FILE.read_text())["env"]
    os.environ.update(
        {k: v for k, v in env.items() if k.endswith("_EMULATOR_HOST") or k.startswith("GOOGLE_")}
    )
    with httpx.Client(timeout=60) as http:
        answer = http.post(
            f"{env['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "emulator-key"},
            json={"returnSecureToken": True},
        )
        if answer.status_code != 200:
            sys.exit(f"the Auth emulator refused the sign-up: {answer.status_code} {answer.text}")
        signup = answer.json()
        headers = {"Authorization": f"Bearer {signup['idToken']}"}
        print(f"signed in as emulator user {signup['localId']}")
        follower = Follower(signup["localId"])
        # Multipart: the brief's fields plus the client's own PDF.
        answer = http.post(
            f"{env['SUBMIT_URL']}/v1/strategies",
            headers=headers,
            files=[
                ("brief", (None, SAMPLE_BRIEF)),
                ("language", (None, "ro")),
                ("urls", (None, SAMPLE_URL)),
                ("pdf", ("cafeneaua-boaba.pdf", sample_pdf(), "application/pdf")),
            ],
        )
        print(f"POST /v1/strategies -> {answer.status_code} {answer.text}")
        answer.raise_for_status()
        task_id = answer.json()["task_id"]
        task = follower.wait(task_id)
        status_url = answer.json()["status_url"]
        print(f"GET {status_url} -> {http.get(status_url, headers=headers).status_code}")
    if task["status"] != TaskStatus.COMPLETED:
        sys.exit(f"task ended {task['status']}: {task.get('error')}")
    strategy = MarketingStrategy.model_validate(task["result"]["strategy"])
    print()
    print(render_strategy(strategy))
    usage = task["result"]["usage"]
    print(f"\nmodel {task['result']['model']}, {usage['total_tokens']} tokens")
    for source in task["result"].get("sources") or []:
        print(f"source: {source['url']} ({source['status']})")
    pdf = task["request"].get("pdf")
    if pdf:
        print(f"pdf: {pdf['filename']}, {pdf['size_bytes']} bytes, read through the File API")
    image = task["result"].get("image")
    if image:
        print(f"preview image: {image['width']}x{image['height']} {image['mime_type']}")
        print(f"  GET {status_url}/image (with the same Authorization header)")


class Follower:
    """Prints each change of the user's tasks as a Firestore realtime listener reports it.

    It listens to the user's tasks (``where uid == me``, what the security rules
    allow a client) before the submit, so that PENDING is seen too.
    """

    def __init__(self, uid: str) -> None:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        from shared.settings import get_settings

        self.started = time.monotonic()
        self.finished: dict[str, threading.Event] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        db = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
        query = db.collection(get_settings().tasks_collection).where(
            filter=FieldFilter("uid", "==", uid)
        )
        self.ready = threading.Event()
        self.watch = query.on_snapshot(self._on_change)
        self.ready.wait(30)  # the listener is live once its first (empty) snapshot arrives

    def _on_change(self, snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        self.ready.set()
        for snap in snapshots:
            data = snap.to_dict() or {}
            progress = data.get("progress") or {}
            seen = (data.get("status"), progress.get("stage"), progress.get("percent"))
            with self.lock:
                before = self.latest.get(snap.id, {})
                was = before.get("progress") or {}
                previous = (before.get("status"), was.get("stage"), was.get("percent"))
                self.latest[snap.id] = data
                done = self.finished.setdefault(snap.id, threading.Event())
            if seen != previous:
                elapsed = time.monotonic() - self.started
                stage = f"{progress.get('stage', '')} {progress.get('percent', '')}%"
                print(f"  {elapsed:6.2f}s  {data.get('status'):<10} {stage}")
            if TaskStatus(data["status"]).is_terminal:
                done.set()

    def wait(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            done = self.finished.setdefault(task_id, threading.Event())
        if not done.wait(TIMEOUT_S):
            sys.exit(f"task {task_id} did not finish in {TIMEOUT_S}s")
        self.watch.unsubscribe()
        return self.latest[task_id]


if __name__ == "__main__":
    main()
