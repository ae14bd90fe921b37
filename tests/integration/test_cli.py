"""The installable ``tinkerbell`` command against the running stack (issue 11, item 1).

Once per session the repository is copied (without its venv, node_modules, caches and
stack state) and installed with ``pip install .`` into a fresh virtual environment;
every test then runs that venv's ``tinkerbell`` as a user would, in a clean
environment with its own config directory, pointed at the test stack with
``TINKERBELL_STACK_STATE`` (one test lets it find the stack from the directory).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.export import md_text
from cli.sample_pdf import sample_pdf
from tests.integration.conftest import STATE_FILE, StandIn
from tests.local_servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STRATEGY_CALL = "generateContent"
JPEG_MAGIC = b"\xff\xd8\xff"
COPY_IGNORED = shutil.ignore_patterns(
    ".venv",
    "node_modules",
    ".stack",
    ".git",
    "build",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "dist",
    "bench",
)
PIP_OPTIONS = ("--disable-pip-version-check", "--no-input")
# Exit codes (cli/errors.py), spelled out: the test is their documentation's check.
OK, FAILED, USAGE, CANCELLED, REFUSED, AUTH, NETWORK, TIMEOUT = 0, 1, 2, 3, 4, 5, 6, 7


@pytest.fixture(scope="session")
def tinkerbell_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install .`` of this repository into a fresh venv; the ``tinkerbell`` script."""
    base = tmp_path_factory.mktemp("tinkerbell-install")
    source, venv = base / "src", base / "venv"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORED)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    log = base / "pip.log"
    with log.open("w") as out:
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", *PIP_OPTIONS, "."],
            cwd=source,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        pytest.fail(f"pip install . failed ({done.returncode}):\n{tail}", pytrace=False)
    script = venv / "bin" / "tinkerbell"
    assert script.exists(), "pip install . made no tinkerbell script"
    return script


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.out)
        return body


Cli = Callable[..., Result]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no emulator variables, no stack of `make test`, no venv."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
        "TINKERBELL_STACK_STATE": str(STATE_FILE.resolve()),
    }
    # make test's query recorder, and nothing else of PYTHONPATH: the CLI's queries are
    # checked against the indexes too (tests/infra/test_index_coverage.py).
    if os.environ.get("TINKERBELL_QUERY_LOG"):
        env["TINKERBELL_QUERY_LOG"] = os.environ["TINKERBELL_QUERY_LOG"]
        env["PYTHONPATH"] = str(ROOT / "tests" / "query_log")
    env.update(extra)
    return {k: v for k, v in env.items() if v}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def tinkerbell(tinkerbell_bin: Path, home: Path, stack: dict[str, str]) -> Cli:
    """Runs the installed command as one user (own home and config directory)."""

    def call(*argv: str, stdin: str | None = None, cwd: Path | None = None, **env: str) -> Result:
        done = subprocess.run(
            [str(tinkerbell_bin), *argv],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd or home,
            env=clean_env(home, **env),
            timeout=180,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)

    return call


@pytest.fixture
def logged_in(tinkerbell: Cli) -> str:
    result = tinkerbell("login", "--json")
    assert result.code == OK, result.err
    uid: str = result.json["user"]["uid"]
    return uid


def one_line_error(result: Result) -> None:
    assert result.err.count("\n") == 1 and result.err.startswith("tinkerbell: "), result.err


# ---------------------------------------------------------------- install


def test_pip_install_gives_only_the_command_and_its_dependencies(tinkerbell_bin: Path) -> None:
    done = subprocess.run([str(tinkerbell_bin), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "4  refused by the API" in done.stdout
    python = tinkerbell_bin.parent / "python"
    probe = (
        "import importlib.util as u, json; print(json.dumps({m: bool(u.find_spec(m)) for m in "
        "('functions_framework', 'google.genai', 'firebase_admin', 'flask', 'httpx', "
        "'google.cloud.firestore', 'pydantic', 'shared.models', 'shared.settings', "
        "'cli.smoke')}))"
    )
    outside = {"cwd": "/", "env": {"PATH": "/usr/bin:/bin"}}  # not the checkout on sys.path
    done = subprocess.run([str(python), "-c", probe], capture_output=True, check=True, **outside)
    found = json.loads(done.stdout)
    assert found == {
        "functions_framework": False,
        "google.genai": False,
        "firebase_admin": False,
        "flask": False,
        "httpx": True,
        "google.cloud.firestore": True,
        "pydantic": True,
        "shared.models": True,
        "shared.settings": False,
        "cli.smoke": False,
    }


# ---------------------------------------------------------------- the main flow


def test_login_submit_wait_live_then_list_status_image_export(
    tinkerbell: Cli, home: Path, standin: StandIn, marker: str, tmp_path: Path
) -> None:
    login = tinkerbell("login", "--json")
    assert login.code == OK, login.err
    uid = login.json["user"]["uid"]
    credentials = home / ".config" / "tinkerbell" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert tinkerbell("login", "--json").json["user"]["uid"] == uid  # kept, not a new user

    # A slower strategy call, so that the listener sees the task at work.
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=1.5, times=1)
    brief = f"Lansăm o cafenea de specialitate în Cluj-Napoca {marker}"
    submit = tinkerbell(
        "submit", "--wait", "--json", "--language", "ro", "--url", "https://example.com/", brief
    )
    assert submit.code == OK, submit.err
    body = submit.json
    task_id = body["task_id"]
    assert body["status"] == "COMPLETED"
    assert body["idempotency_key"].startswith("tinkerbell-cli-")
    follow = body["follow"]
    assert follow["via"] == "listener", follow
    assert follow["snapshots"] >= 3, follow
    seen = [(e["stage"], e["via"]) for e in follow["events"]]
    assert ("writing_strategy", "listener") in seen and ("done", "listener") in seen, seen
    task = body["task"]
    assert task["uid"] == uid and task["request"]["language"] == "ro"
    assert task["request"]["urls"] == ["https://example.com/"]
    strategy = task["result"]["strategy"]
    assert strategy["strategy_name"].startswith("[stand-in sample, ro] Cafeneaua din Cluj-Napoca")
    assert "lease_owner" not in task
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 1
    assert "PROCESSING writing_strategy" in submit.err  # progress lines (stderr is no TTY)

    listed = tinkerbell("list", "--json")
    assert listed.code == OK, listed.err
    assert listed.json["tasks"][0]["task_id"] == task_id
    assert listed.json["tasks"][0]["strategy_name"] == strategy["strategy_name"]
    text = tinkerbell("list")
    assert text.code == OK and task_id in text.out

    status = tinkerbell("status", task_id, "--json")
    assert status.code == OK and status.json["status"] == "COMPLETED"
    assert status.json["result"]["strategy"] == strategy
    assert "COMPLETED" in tinkerbell("status", task_id).out

    image = tmp_path / "preview.jpg"
    saved = tinkerbell("image", task_id, "-o", str(image), "--json")
    assert saved.code == OK, saved.err
    assert saved.json["content_type"] == "image/jpeg"
    assert image.read_bytes().startswith(JPEG_MAGIC)
    assert saved.json["bytes"] == image.stat().st_size

    markdown = tmp_path / "strategy.md"
    exported = tinkerbell("export", task_id, "--format", "markdown", "-o", str(markdown))
    assert exported.code == OK, exported.err
    text = markdown.read_text()
    assert text.startswith(f"# {md_text(strategy['strategy_name'])}\n")
    assert "- **Buget:** " in text and " EUR" in text
    steps = sorted(strategy["steps"], key=lambda s: s["step_number"])
    listed_steps = [f"{s['step_number']}. {md_text(s['description'])}" for s in steps]
    assert "\n".join(listed_steps) in text
    for channel in strategy["channels"]:
        assert f"| {md_text(channel['name'])} | " in text
    assert "## Surse" in text and "https://example.com/" in text

    as_json = tinkerbell("export", task_id, "--format", "json")
    assert as_json.code == OK
    assert json.loads(as_json.out)["steps"] == steps

    watched = tinkerbell("watch", task_id, "--json")
    assert watched.code == OK and watched.json["follow"]["via"] == "listener"
    assert watched.json["follow"]["snapshots"] >= 1


def test_cancel_and_the_exit_codes_of_final_states(
    tinkerbell: Cli, logged_in: str, standin: StandIn, marker: str
) -> None:
    # The strategy call never answers in time (504 at each attempt's deadline): the task
    # is still unfinished when the third CLI run (cancel) comes, however busy the machine.
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=60)
    submitted = tinkerbell("submit", "--json", "--no-image", f"Bookshop in Sibiu {marker}")
    assert submitted.code == OK, submitted.err
    task_id = submitted.json["task_id"]
    assert submitted.json["status"] == "PENDING"

    timed_out = tinkerbell("watch", task_id, "--timeout", "1", "--json")
    assert timed_out.code == TIMEOUT, timed_out.err
    assert timed_out.json["error"]["exit_code"] == TIMEOUT

    cancelled = tinkerbell("cancel", task_id, "--json")
    assert cancelled.code == OK, cancelled.err
    assert cancelled.json["status"] == "CANCELLED"
    watched = tinkerbell("watch", task_id)
    assert watched.code == CANCELLED
    again = tinkerbell("cancel", task_id)
    assert again.code == REFUSED and "failed_precondition" in again.err
    one_line_error(again)
    no_strategy = tinkerbell("export", task_id)
    assert no_strategy.code == REFUSED and "CANCELLED" in no_strategy.err


def test_delete_asks_first_then_erases_and_forget_me_erases_the_user(
    tinkerbell: Cli, logged_in: str, marker: str
) -> None:
    done = tinkerbell("submit", "--wait", "--json", "--no-image", f"Florist in Oradea {marker}")
    assert done.code == OK, done.err
    task_id = done.json["task_id"]
    unasked = tinkerbell("delete", task_id)  # no terminal to ask on, no --yes
    assert unasked.code == USAGE and "--yes" in unasked.err
    assert tinkerbell("status", task_id).code == OK  # still there
    deleted = tinkerbell("delete", task_id, "--yes", "--json")
    assert deleted.code == OK, deleted.err
    assert deleted.json == {"ok": True, "deleted": task_id}
    gone = tinkerbell("status", task_id)
    assert gone.code == REFUSED and "not_found" in gone.err

    kept = tinkerbell("submit", "--wait", "--json", "--no-image", f"Baker in Arad {marker}")
    assert kept.code == OK, kept.err
    forgotten = tinkerbell("forget-me", "--yes", "--json")
    assert forgotten.code == OK, forgotten.err
    assert forgotten.json["done"] is True and forgotten.json["tasks"] == 1
    assert forgotten.json["auth_user"] is True
    after = tinkerbell("list")
    assert after.code == AUTH, after.err  # signed out: the user is gone


def test_revise_versions_and_diff(tinkerbell: Cli, logged_in: str, marker: str) -> None:
    first = tinkerbell("submit", "--wait", "--json", "--no-image", f"Cidery in Sibiu {marker}")
    assert first.code == OK, first.err
    root = first.json["task_id"]
    revised = tinkerbell("revise", root, "Halve the budget", "--wait", "--json", "--no-image")
    assert revised.code == OK, revised.err
    second = revised.json["task_id"]
    assert revised.json["parent_task_id"] == root and revised.json["status"] == "COMPLETED"

    listed = tinkerbell("versions", second, "--json")
    assert listed.code == OK, listed.err
    assert [(v["version"], v["task_id"]) for v in listed.json["versions"]] == [
        (1, root),
        (2, second),
    ]
    human = tinkerbell("versions", root)
    assert human.out.startswith(f"v1  {root}") and "Halve the budget" in human.out

    diff = tinkerbell("diff", root, second)
    assert diff.code == OK, diff.err
    assert diff.out.startswith(f"--- {root}\n+++ {second}\n") and "budget:" in diff.out
    as_json = tinkerbell("diff", root, second, "--json")
    assert set(as_json.json["diff"]) == {"budget", "channels", "steps", "kpis", "key_messages"}
    refused = tinkerbell("revise", "no-such-task", "x")
    assert refused.code == REFUSED and "not_found" in refused.err


def test_a_failed_task_exits_1(
    tinkerbell: Cli, logged_in: str, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, status=400, times=None)
    result = tinkerbell("submit", "--wait", "--json", "--no-image", f"Gym in Arad {marker}")
    assert result.code == FAILED, result.err
    assert result.json["status"] == "FAILED"
    assert result.json["task"]["error"]["code"] == "gemini_invalid_argument"
    human = tinkerbell("watch", result.json["task_id"])
    assert human.code == FAILED and "FAILED: gemini_invalid_argument" in human.err


def test_pdfs_in_the_request_or_through_an_upload_session(
    tinkerbell: Cli, logged_in: str, tmp_path: Path, marker: str
) -> None:
    pdf = tmp_path / "dosar.pdf"
    pdf.write_bytes(sample_pdf())
    small = tinkerbell("submit", "--json", "--no-image", "--pdf", str(pdf), f"Cafe {marker}")
    assert small.code == OK, small.err
    assert small.json["pdf_via"] == "request"

    large = tinkerbell(
        "submit",
        "--wait",
        "--json",
        "--no-image",
        "--pdf",
        str(pdf),
        f"Cafe, the big catalogue {marker}",
        TINKERBELL_PDF_REQUEST_LIMIT=str(len(sample_pdf()) - 1),
    )
    assert large.code == OK, large.err
    assert large.json["pdf_via"] == "upload_session"
    stored = large.json["task"]["request"]["pdf"]
    assert stored["filename"] == "dosar.pdf" and f"/uploads/{logged_in}/" in stored["gcs_uri"]


def test_a_repeated_idempotency_key_gives_the_same_task(
    tinkerbell: Cli, logged_in: str, marker: str
) -> None:
    argv = ("submit", "--json", "--no-image", "--idempotency-key", f"key-{marker}")
    first = tinkerbell(*argv, f"Brief {marker}")
    second = tinkerbell(*argv, f"Brief {marker}")
    assert first.code == second.code == OK
    assert first.json["task_id"] == second.json["task_id"]
    other = tinkerbell(*argv, f"Another brief {marker}")
    assert other.code == REFUSED and other.json["error"]["code"] == "failed_precondition"


def test_brief_from_stdin_and_from_a_file(
    tinkerbell: Cli, logged_in: str, tmp_path: Path, marker: str
) -> None:
    piped = tinkerbell("submit", "-", "--no-image", "-q", stdin=f"From stdin {marker}\n")
    assert piped.code == OK and len(piped.out.strip()) == 32
    brief = tmp_path / "brief.txt"
    brief.write_text(f"From a file {marker}")
    filed = tinkerbell("status", tinkerbell("submit", "--file", str(brief)).out.strip(), "--json")
    assert filed.json["request"]["brief"] == f"From a file {marker}"
    assert filed.json["request"]["language"] == "en"  # LANG=C.UTF-8
    romanian = tinkerbell("submit", "--json", "Brief", LANG="ro_RO.UTF-8")
    task = tinkerbell("status", romanian.json["task_id"], "--json").json
    assert task["request"]["language"] == "ro"


def test_email_login_refresh_and_logout(tinkerbell: Cli, home: Path, marker: str) -> None:
    email = f"{marker}@example.com"
    created = tinkerbell(
        "login", "--email", email, "--create", "--password-stdin", stdin="s3cret!\n"
    )
    assert created.code == OK, created.err
    wrong = tinkerbell("login", "--email", email, "--password-stdin", "--json", stdin="nope\n")
    assert wrong.code == AUTH and wrong.json["error"]["exit_code"] == AUTH
    one_line_error(wrong)
    signed = tinkerbell("login", "--email", email, "--password-stdin", "--json", stdin="s3cret!\n")
    assert signed.code == OK and signed.json["user"]["email"] == email

    # An expired ID token is refreshed through the Secure Token API by itself.
    path = home / ".config" / "tinkerbell" / "credentials.json"
    kept = json.loads(path.read_text())
    (entry,) = kept["users"].values()
    entry["expires_at"] = 0
    path.write_text(json.dumps(kept))
    listed = tinkerbell("list", "--json")
    assert listed.code == OK, listed.err
    (entry,) = json.loads(path.read_text())["users"].values()
    assert entry["expires_at"] > 1_700_000_000  # a fresh token, valid for an hour from now
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert tinkerbell("logout").code == OK
    after = tinkerbell("list")
    assert after.code == AUTH and "tinkerbell login" in after.err


# ---------------------------------------------------------------- errors and configuration


def test_bad_input_exits_4_with_the_api_error(tinkerbell: Cli, logged_in: str) -> None:
    result = tinkerbell("submit", "--json", "--url", "http://localhost/admin", "Brief")
    assert result.code == REFUSED
    assert result.json["error"]["code"] == "invalid_argument"
    assert result.json["error"]["field"] == "urls"
    one_line_error(result)
    unknown = tinkerbell("status", "0" * 32)
    assert unknown.code == REFUSED and "not_found" in unknown.err


def test_not_logged_in_exits_5(tinkerbell: Cli) -> None:
    for argv in (("status", "0" * 32), ("submit", "Brief"), ("list",), ("watch", "abc")):
        result = tinkerbell(*argv)
        assert result.code == AUTH, (argv, result.err)
        one_line_error(result)


def test_unreachable_exits_6(tinkerbell: Cli, home: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    result = tinkerbell(
        "login",
        "--json",
        TINKERBELL_STACK_STATE="",
        TINKERBELL_SUBMIT_URL=f"http://{closed}",
        TINKERBELL_STATUS_URL=f"http://{closed}",
        TINKERBELL_GOOGLE_CLOUD_PROJECT="demo-tinkerbell",
        TINKERBELL_AUTH_EMULATOR_HOST=closed,
    )
    assert result.code == NETWORK, result.err
    assert result.json["error"]["code"] == "network"
    one_line_error(result)


def test_usage_errors_exit_2(tinkerbell: Cli) -> None:
    for argv in (("submit",), ("frobnicate",), ("image", "abc"), ("submit", "--pdf", "/nope", "b")):
        result = tinkerbell(*argv)
        assert result.code == USAGE, (argv, result.err)
        one_line_error(result)
    nothing = tinkerbell("status", "abc", TINKERBELL_STACK_STATE="")
    assert nothing.code == USAGE and "make up" in nothing.err


def test_the_listener_falls_back_to_polling(
    tinkerbell: Cli, logged_in: str, tmp_path: Path, marker: str
) -> None:
    state = json.loads(STATE_FILE.read_text())
    state["env"]["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{free_port()}"  # nobody listens
    broken = tmp_path / "state.json"
    broken.write_text(json.dumps(state))
    result = tinkerbell(
        "submit",
        "--wait",
        "--json",
        "--no-image",
        f"Florist in Brasov {marker}",
        TINKERBELL_STACK_STATE=str(broken),
        TINKERBELL_LISTENER_TIMEOUT_S="1",
    )
    assert result.code == OK, result.err
    follow = result.json["follow"]
    assert follow["via"] == "polling" and follow["polls"] >= 1
    assert "within 1 s" in follow["fallback_reason"]
    assert result.json["status"] == "COMPLETED"


def test_the_local_stack_is_found_from_the_directory(tinkerbell: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    (repo / ".stack" / "dev").mkdir(parents=True)
    shutil.copy(STATE_FILE, repo / ".stack" / "dev" / "state.json")
    inner = repo / "docs"
    inner.mkdir()
    shown = tinkerbell("config", "show", "--json", cwd=inner, TINKERBELL_STACK_STATE="")
    assert shown.code == OK, shown.err
    target = shown.json["target"]
    assert str(repo / ".stack" / "dev" / "state.json") in target["origin"]
    assert target["SUBMIT_URL"] == json.loads(STATE_FILE.read_text())["env"]["SUBMIT_URL"]
    login = tinkerbell("login", cwd=inner, TINKERBELL_STACK_STATE="")
    assert login.code == OK, login.err


def test_config_set_for_a_deployed_project(tinkerbell: Cli) -> None:
    settings = {
        "SUBMIT_URL": "https://submit-abc.a.run.app",
        "STATUS_URL": "https://status-abc.a.run.app",
        "FIREBASE_API_KEY": "AIzaSy-example",
        "GOOGLE_CLOUD_PROJECT": "tinkerbell-prod",
    }
    for key, value in settings.items():
        assert tinkerbell("config", "set", key, value).code == OK
    shown = tinkerbell("config", "show", "--json", TINKERBELL_STACK_STATE="")
    assert shown.code == OK
    target = shown.json["target"]
    assert {k: target[k] for k in settings} == settings
    assert target["AUTH_EMULATOR_HOST"] is None


def test_environment_is_not_needed_beyond_the_config(tinkerbell_bin: Path) -> None:
    # The script runs without the repository on sys.path (it is installed).
    python = tinkerbell_bin.parent / "python"
    done = subprocess.run(
        [str(python), "-c", "import cli.tinkerbell, sys; print(cli.tinkerbell.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0 and "site-packages" in done.stdout
