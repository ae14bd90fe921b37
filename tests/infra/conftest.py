"""Fixtures of the deploy rehearsal: the real gcloud's parser, the stand-ins on PATH.

Nothing here needs the emulator stack or the network: the parser runs the installed
gcloud's own code offline (a dummy token, prompts, update checks and usage
reporting off, a scratch configuration directory).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "tinkerbell-rehearsal"
REGION = "europe-west1"


def settings_as_deployed(overrides: dict[str, str] | None = None) -> Settings:
    """The settings as the scripts see them in the rehearsal's clean environment (under
    `make test`, this process's environment holds the test stack's settings)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({"PATH": saved.get("PATH", ""), **(overrides or {})})
    try:
        return Settings(google_cloud_project=PROJECT)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings and no emulator variables in this process's environment."""
    for key in list(os.environ):
        if key.lower() in Settings.model_fields or key.endswith("_EMULATOR_HOST"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("K_SERVICE", raising=False)


@dataclass(frozen=True)
class Sdk:
    root: Path
    python: str


@pytest.fixture(scope="session")
def gcloud_sdk() -> Sdk:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("the deploy rehearsal needs the Google Cloud SDK (gcloud) installed")
    root = Path(os.path.realpath(gcloud)).parent.parent
    bundled = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    python = os.environ.get("CLOUDSDK_PYTHON") or (
        str(bundled) if bundled.exists() else shutil.which("python3") or sys.executable
    )
    if not (root / "lib" / "googlecloudsdk" / "gcloud_main.py").exists():
        pytest.fail(f"no gcloud source under {root}", pytrace=False)
    return Sdk(root=root, python=python)


@pytest.fixture(scope="session")
def gcloud_parser(gcloud_sdk: Sdk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The socket of one long-lived process holding gcloud's parser (gcloud_parser.py)."""
    base = tmp_path_factory.mktemp("gcloud-parser")
    config = base / "config"
    config.mkdir()
    socket_path = base / "parser.sock"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_AUTH_ACCESS_TOKEN": "dummy-rehearsal-token",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true",
        "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
    }
    log = (base / "parser.log").open("w")
    process = subprocess.Popen(
        [gcloud_sdk.python, str(HERE / "gcloud_parser.py"), str(gcloud_sdk.root), str(socket_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "ready":
        process.kill()
        log.close()
        pytest.fail(f"gcloud's parser did not start: {(base / 'parser.log').read_text()[-2000:]}")
    yield str(socket_path)
    process.terminate()
    process.wait(timeout=10)
    log.close()


@dataclass
class Rehearsal:
    """A simulated project and the environment the scripts run in."""

    directory: Path
    env: dict[str, str]
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(
        self, name: str, command: list[str], stdin: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "REHEARSAL_RUN": name, **extra_env}
        result = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.results[name] = result
        return result

    def state(self) -> dict[str, Any]:
        path = self.directory / "state.json"
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return state

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.directory / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


def make_rehearsal(directory: Path, parser_socket: str) -> Rehearsal:
    """Stand-ins first on PATH, and an environment holding nothing of the caller's
    (``make test`` exports its test settings and the emulator stack's variables)."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("gcloud", "firebase", "node"):
        wrapper = bin_dir / tool
        wrapper.write_text(
            f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" '
            f'-m tests.infra.standin {tool} "$@"\n'
        )
        wrapper.chmod(0o755)
    # The scripts' waits (a new project's "not yet" answers, the index build) are
    # recorded, not slept: sleeps.log holds one line of seconds per wait.
    sleep = bin_dir / "sleep"
    sleep.write_text(f'#!/bin/sh\necho "$1" >>"{directory / "sleeps.log"}"\n')
    sleep.chmod(0o755)
    home = directory / "home"
    home.mkdir()
    tmp = directory / "tmp"
    tmp.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PROJECT": PROJECT,
        "REGION": REGION,
        "PYTHON": sys.executable,
        "FIREBASE_CLI": "firebase",
        "REHEARSAL_DIR": str(directory),
        "REHEARSAL_GCLOUD_PARSER": parser_socket,
    }
    return Rehearsal(directory=directory, env=env)


@pytest.fixture
def rehearsal(tmp_path: Path, gcloud_parser: str) -> Rehearsal:
    return make_rehearsal(tmp_path / "rehearsal", gcloud_parser)
