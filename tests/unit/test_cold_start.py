"""The accept path imports nothing it does not use: the HTTP functions never load the
Gemini SDK (its import alone costs the cold start hundreds of milliseconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import main
getattr(main, sys.argv[1])
print(json.dumps(sorted({m.split(".")[0] + "." + m.split(".")[1] for m in sys.modules
                         if m.startswith("google.") and m.count(".") >= 1})))
"""


@pytest.mark.parametrize("entry_point", ["submit_strategy", "task_status", "deliver_webhook"])
def test_the_http_functions_do_not_load_the_gemini_sdk(entry_point: str) -> None:
    # deliver_webhook too: it signs and POSTs events, and never calls Gemini.
    done = subprocess.run(
        [sys.executable, "-c", PROBE, entry_point],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GOOGLE_CLOUD_PROJECT": "demo-cold-start"},
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "google.genai" not in loaded, loaded


def test_the_worker_does_load_it() -> None:
    """The probe can see the SDK when it is there (so the test above can fail)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE + "\nimport shared.processing\nimport shared.gemini\n"
            "print(json.dumps(['google.genai'] if 'google.genai' in sys.modules else []))",
            "process_task",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GOOGLE_CLOUD_PROJECT": "demo-cold-start"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["google.genai"]
