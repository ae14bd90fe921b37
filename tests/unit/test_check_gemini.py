"""``make check-gemini`` (cli/check_gemini.py) against the strict Gemini stand-in.

The command runs as a user runs it, in its own process, through the real SDK; the
stand-in serves only the model ids the real API serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev.gemini_standin import StandinServer
from tests.standin_helpers import SETTING_NAMES, run_check_gemini, running_standin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(standin: StandinServer) -> None:
    httpx.post(f"{standin.url}/_standin/reset").raise_for_status()


def check(standin: StandinServer | None, **env: str) -> tuple[int, dict[str, Any]]:
    if standin is not None:
        env = {"GEMINI_BASE_URL": standin.url, **env}
    return run_check_gemini(**env)


def test_the_default_models_pass_every_check(standin: StandinServer) -> None:
    code, report = check(standin)
    assert code == 0, report
    assert report["ok"] is True
    assert report["text_model"] == "gemini-3.8-flash"
    assert report["image_model"] == "gemini-nano-banana-2.1"
    assert report["text_model_served"] and report["image_model_served"]
    assert {"gemini-3.8-flash", "gemini-nano-banana-2.1"} <= set(report["served_models"])
    assert "gemini-3.1-flash" not in report["served_models"]
    assert report["json_call"]["url_context_entries"] == 1
    assert report["json_call"]["thoughts_tokens"] > 0
    image = report["image_call"]
    assert image["mime_type"] == "image/jpeg"
    # The configured 16:9, read from the JPEG itself.
    assert image["width"] * 9 == pytest.approx(image["height"] * 16, rel=0.05)
    calls = httpx.get(f"{standin.url}/_standin/requests").json()["requests"]
    generate = [c for c in calls if c.get("endpoint") in ("generateContent", "image")]
    assert len(generate) == 2, generate  # one call of each kind, no more


def test_a_model_the_api_does_not_serve_is_named(standin: StandinServer) -> None:
    code, report = check(standin, GEMINI_TEXT_MODEL="gemini-3.1-flash")
    assert code == 4
    assert report["ok"] is False
    assert report["step"] == "configured_models"
    assert "GEMINI_TEXT_MODEL=gemini-3.1-flash" in report["reason"]
    assert report["image_model_served"] is True
    assert report["json_call"] == {} and report["image_call"] == {}


def test_a_key_that_cannot_list_models_fails_at_once(standin: StandinServer) -> None:
    rule = {"match": "", "endpoint": "any", "status": 403, "message": "API key not valid"}
    httpx.post(f"{standin.url}/_standin/faults", json=rule).raise_for_status()
    code, report = check(standin)
    assert code == 3
    assert report["step"] == "list_models"
    assert "permission_denied" in report["reason"]


def test_a_failing_image_call_fails_the_check(standin: StandinServer) -> None:
    rule = {"match": "", "endpoint": "image", "status": 500, "times": None}
    httpx.post(f"{standin.url}/_standin/faults", json=rule).raise_for_status()
    code, report = check(standin, GEMINI_MAX_ATTEMPTS="1")
    assert code == 5
    assert report["step"] == "image_call"
    assert report["json_call"]["total_tokens"] > 0  # the JSON call did pass


def test_without_a_key_it_says_what_to_set() -> None:
    code, report = check(None)
    assert code == 2
    assert "GEMINI_API_KEY" in report["reason"]


def test_refused_settings_are_a_clear_exit_2(standin: StandinServer) -> None:
    code, report = check(standin, LEASE_SECONDS="5")
    assert code == 2
    assert report["step"] == "settings"
    assert "LEASE_SECONDS" in report["reason"]


def test_the_human_report_names_the_configured_models(standin: StandinServer) -> None:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    done = subprocess.run(
        [sys.executable, "-m", "cli.check_gemini"],
        cwd=REPO,
        env={**clean, "GEMINI_BASE_URL": standin.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gemini-3.8-flash <- GEMINI_TEXT_MODEL" in done.stdout
    assert "GEMINI_IMAGE_MODEL=gemini-nano-banana-2.1: served" in done.stdout
    assert done.stdout.strip().endswith("check-gemini: ok")
