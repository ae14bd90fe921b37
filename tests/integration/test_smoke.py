"""``make smoke`` against the running test stack (issue 9 item 5).

``python -m cli.smoke`` runs as a subprocess, as an operator runs it: once through
every step, once with the stand-in failing the strategy call (it must stop at
``follow`` and name the error code), once with the submit URL on a closed port
(given the way deploy.sh's output is given: ``--env-file``), and with bad
configurations (exit 2). Every run must delete its throwaway users.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import STATE_FILE, StandIn
from tests.local_servers import free_port
from tests.receivers import Receiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ALL_STEPS = [
    "sign-up",
    "listen",
    "submit",
    "follow",
    "image",
    "webhook",
    "other-user",
    "cancel",
    "delete-users",
]

STAGES = ["queued", "reading_sources", "writing_strategy", "drawing_image", "saving", "done"]


def run_smoke(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "cli.smoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def steps_of(run: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """The --json lines by step name (every stdout line must be one JSON object)."""
    records = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return {record["step"]: record for record in records}


def stack_name() -> str:
    name: str = json.loads(STATE_FILE.read_text())["name"]
    return name


def existing_users(stack: dict[str, str], http: httpx.Client, uids: list[str]) -> list[str]:
    """Which of these uids the Auth emulator still has (admin lookup)."""
    answer = http.post(
        f"{stack['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/projects/"
        f"{stack['GOOGLE_CLOUD_PROJECT']}/accounts:lookup",
        headers={"Authorization": "Bearer owner"},
        json={"localId": uids},
    )
    assert answer.status_code == 200, answer.text
    return [user["localId"] for user in answer.json().get("users", [])]


def test_smoke_passes_every_step_on_the_local_stack(
    stack: dict[str, str],
    http: httpx.Client,
    standin: StandIn,
    tasks_collection: Any,
    marker: str,
    receiver: Receiver,
) -> None:
    # The stand-in answers at once; the task to cancel must still be unfinished when
    # the DELETE comes (real Gemini takes 10-60 s): its strategy call never answers in
    # time (504 at each attempt's deadline), however busy the machine.
    standin.fault(f"({marker}), sarcin", endpoint="generateContent", latency_s=60)
    hook = f"{receiver.url}/smoke"
    run = run_smoke(
        "--stack", stack_name(), "--json", "--timeout", "120", "--marker", marker,
        "--webhook-url", hook,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    steps = steps_of(run)
    assert list(steps) == ALL_STEPS
    assert all(step["ok"] for step in steps.values()), run.stdout
    assert all(isinstance(step["ms"], int) for step in steps.values())
    assert "Traceback" not in run.stderr
    # The stages came through the listener, in order, to the last one.
    stages = steps["follow"]["stages"]
    assert stages == [stage for stage in STAGES if stage in stages], stages
    assert stages[-1] == "done"
    assert steps["image"]["mime_type"] in ("image/jpeg", "image/png")
    assert steps["webhook"]["attempts"][-1].startswith("204 in ")
    (call,) = receiver.calls
    assert json.loads(call.body)["task_id"] == steps["submit"]["task_id"]
    # What the smoke did is real: its tasks, the stand-in's calls, no users left.
    uids = steps["sign-up"]["users"]
    assert len(set(uids)) == 2
    task = tasks_collection.document(steps["submit"]["task_id"]).get().to_dict()
    assert task["status"] == "COMPLETED"
    assert task["uid"] == uids[0]
    assert task["request"]["language"] == "ro"
    assert task["request"]["urls"] == ["https://example.com/"]
    assert task["request"]["pdf"]["size_bytes"] > 0
    cancelled = tasks_collection.document(steps["cancel"]["task_id"]).get().to_dict()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["request"]["image"] is False
    assert standin.requests(marker, endpoint="generateContent")
    assert existing_users(stack, http, uids) == []


def test_smoke_stops_at_follow_with_the_error_code_and_still_deletes_its_users(
    stack: dict[str, str], http: httpx.Client, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint="generateContent", status=400)

    run = run_smoke("--stack", stack_name(), "--timeout", "120", "--marker", marker)

    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    results = [line for line in lines if line.startswith(("ok ", "FAIL "))]
    assert [line.split()[1].rstrip(":") for line in results] == [
        "sign-up",
        "listen",
        "submit",
        "follow",
        "delete-users",
    ]
    passed = results[:3] + results[4:]
    assert all(re.match(r"^ok [a-z-]+ \(\d+ ms\)", line) for line in passed), run.stdout
    assert results[3].startswith("FAIL follow: ")
    assert "ended FAILED: gemini_invalid_argument" in results[3]
    assert "Traceback" not in run.stderr
    uids = re.findall(r"[A-Za-z0-9]{20,}", results[0])
    assert len(uids) == 2
    assert existing_users(stack, http, uids) == []


def test_smoke_from_an_env_file_fails_at_submit_when_the_api_is_unreachable(
    stack: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    env_file = tmp_path / "deploy.out"
    env_file.write_text(
        "deploy.sh: done\n"  # other lines of deploy.sh's output are skipped
        f"SUBMIT_URL=http://127.0.0.1:{free_port()}\n"
        f"STATUS_URL={stack['STATUS_URL']}\n"
        "FIREBASE_API_KEY=emulator-key\n"
        f"GOOGLE_CLOUD_PROJECT={stack['GOOGLE_CLOUD_PROJECT']}\n"
        # Emulator hosts keep this run local (a real run has neither).
        f"FIREBASE_AUTH_EMULATOR_HOST={stack['FIREBASE_AUTH_EMULATOR_HOST']}\n"
        f"FIRESTORE_EMULATOR_HOST={stack['FIRESTORE_EMULATOR_HOST']}\n"
    )

    run = run_smoke("--env-file", str(env_file), "--json", timeout=120)

    assert run.returncode == 1, run.stdout + run.stderr
    steps = steps_of(run)
    assert list(steps) == ["sign-up", "listen", "submit", "delete-users"]
    assert steps["submit"]["ok"] is False
    assert "cannot connect" in steps["submit"]["error"]
    assert steps["delete-users"]["ok"] is True
    assert "Traceback" not in run.stderr
    assert existing_users(stack, http, steps["sign-up"]["users"]) == []


@pytest.mark.parametrize(
    ("env_lines", "says"),
    [
        (
            "SUBMIT_URL=http://127.0.0.1:9\nSTATUS_URL=http://127.0.0.1:9\n",
            "FIREBASE_API_KEY, GOOGLE_CLOUD_PROJECT missing",
        ),
        (
            "SUBMIT_URL=127.0.0.1:9\nSTATUS_URL=http://127.0.0.1:9\n"
            "FIREBASE_API_KEY=k\nGOOGLE_CLOUD_PROJECT=p\n",
            "SUBMIT_URL must be an http(s) URL",
        ),
        (
            "SUBMIT_URL=http://127.0.0.1:9\nSTATUS_URL=http://127.0.0.1:9\n"
            "FIREBASE_API_KEY=k\nGOOGLE_CLOUD_PROJECT=p\nFIRESTORE_EMULATOR_HOST=127.0.0.1:9\n",
            "set both FIREBASE_AUTH_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST or neither",
        ),
    ],
)
def test_smoke_refuses_a_bad_env_file_with_exit_2(
    stack: dict[str, str], tmp_path: Path, env_lines: str, says: str
) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text(env_lines)

    run = run_smoke("--env-file", str(env_file), "--json", timeout=60)

    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""  # no step ran
    assert says in run.stderr
    assert "Traceback" not in run.stderr


def test_smoke_refuses_a_stack_that_is_not_running(stack: dict[str, str]) -> None:
    run = run_smoke("--stack", "no-such-stack", timeout=60)

    assert run.returncode == 2
    assert "local stack 'no-such-stack' is not running" in run.stderr
    assert "Traceback" not in run.stderr
