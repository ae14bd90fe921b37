"""The ``tinkerbell`` command as a whole: exit codes, one-line errors, ``--json`` objects,
the help text, and what ``pip install .`` packages."""

from __future__ import annotations

import ast
import io
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import tinkerbell
from cli.api import api_error
from cli.errors import EXIT_CODES_HELP, CliError, Exit, exit_for_http_status, exit_for_task_status
from cli.tinkerbell import run

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    code = run(list(argv), env=env, cwd=tmp_path, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, Exit.REFUSED),
        (404, Exit.REFUSED),
        (409, Exit.REFUSED),
        (413, Exit.REFUSED),
        (429, Exit.REFUSED),
        (401, Exit.AUTH),
        (403, Exit.AUTH),
        (500, Exit.NETWORK),
        (503, Exit.NETWORK),
    ],
)
def test_http_status_to_exit_code(status: int, expected: Exit) -> None:
    assert exit_for_http_status(status) == expected


def test_task_status_to_exit_code() -> None:
    assert exit_for_task_status("COMPLETED") == Exit.OK == 0
    assert exit_for_task_status("FAILED") == Exit.FAILED == 1
    assert exit_for_task_status("CANCELLED") == Exit.CANCELLED == 3


def test_exit_codes_are_distinct_and_documented() -> None:
    codes = [int(code) for code in Exit]
    assert len(set(codes)) == len(codes)
    for code in Exit:
        assert f"\n  {int(code)}  " in "\n" + EXIT_CODES_HELP.split("\n", 1)[1]


def test_api_errors_read_the_error_shape() -> None:
    answer = httpx.Response(
        429,
        headers={"Retry-After": "15"},
        json={"error": {"code": "rate_limited", "message": "too many", "field": None}},
    )
    error = api_error(answer)
    assert error.exit == Exit.REFUSED and error.code == "rate_limited"
    assert error.message == "too many (rate_limited, HTTP 429); try again in 15 s"
    assert error.to_json() == {
        "error": {"message": error.message, "code": "rate_limited", "field": None, "exit_code": 4}
    }
    bare = api_error(httpx.Response(502, text="<html>bad gateway</html>"))
    assert bare.exit == Exit.NETWORK and bare.code == "http_502"


def test_help_lists_commands_and_exit_codes(tmp_path: Path) -> None:
    code, out, _ = cli(tmp_path, "--help")
    assert code == 0
    for command in ("login", "submit", "list", "status", "watch", "cancel", "image", "export"):
        assert command in out
    assert "exit codes:" in out and "5  authentication" in out
    code, out, _ = cli(tmp_path, "submit", "--help")
    assert code == 0 and "--pdf" in out and "--grounding" in out and "exit codes:" in out


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    code, out, err = cli(tmp_path, "frobnicate")
    assert code == Exit.USAGE == 2
    assert out == "" and err.count("\n") == 1 and err.startswith("tinkerbell: ")
    code, out, err = cli(tmp_path, "image", "t1", "--json")  # -o is required
    assert code == Exit.USAGE
    assert json.loads(out)["error"]["exit_code"] == 2


def test_not_configured_is_a_usage_error_with_json(tmp_path: Path) -> None:
    code, out, err = cli(tmp_path, "status", "t1", "--json")
    assert code == Exit.USAGE
    body = json.loads(out)
    assert body["error"]["code"] == "usage" and "make up" in body["error"]["message"]
    assert err.count("\n") == 1


def test_not_logged_in_is_an_auth_error(tmp_path: Path) -> None:
    argv = ("--submit-url", "http://127.0.0.1:1", "--status-url", "http://127.0.0.1:1")
    argv += ("--project", "demo-x", "--api-key", "k")
    code, _, err = cli(tmp_path, "status", "t1", *argv)
    assert code == Exit.AUTH and "tinkerbell login" in err


def test_an_unexpected_error_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_ctx: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setitem(tinkerbell.COMMANDS, "list", explode)
    code, _, err = cli(tmp_path, "list")
    assert code == Exit.INTERNAL
    assert err == "tinkerbell: unexpected error: KeyError: 'boom'\n"


# Model text a prompt injection may have shaped: OSC 52 (write the clipboard), a CSI
# sequence, a carriage return that hides the line, an 8-bit CSI (C1) and DEL.
HOSTILE = "Plan\x1b]52;c;ZXZpbA==\x07 A\x1b[2J\rB\x9b31m\x7f\tC\nD"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_no_control_code_from_a_task_reaches_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    def hostile(_ctx: Any) -> Any:
        return tinkerbell.Output(data={"strategy_name": HOSTILE}, text=HOSTILE, note=HOSTILE)

    monkeypatch.setitem(tinkerbell.COMMANDS, "list", hostile)
    code, out, err = cli(tmp_path, "list", *(["--json"] if as_json else []))
    assert code == Exit.OK
    for printed in (out, err):
        assert not any(
            (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in printed
        ), repr(printed)
    assert err == "Plan]52;c;ZXZpbA== A[2JB31m\tC\nD\n"
    if as_json:  # the same data, its control characters escaped
        assert json.loads(out) == {"strategy_name": HOSTILE}
    else:
        assert out == err


def test_an_error_message_from_the_server_is_printed_without_control_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(_ctx: Any) -> Any:
        raise CliError(f"refused: {HOSTILE}", Exit.REFUSED)

    monkeypatch.setitem(tinkerbell.COMMANDS, "list", refused)
    code, out, err = cli(tmp_path, "list", "--json")
    assert code == Exit.REFUSED
    assert "\x1b" not in err and "\x9b" not in err and "\x1b" not in out
    assert json.loads(out)["error"]["message"].startswith("refused: Plan")


def test_brief_sources_are_exclusive(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path, "submit", "a brief", "--file", "brief.txt")
    assert code == Exit.USAGE and "--file" in err
    code, _, err = cli(tmp_path, "submit", "   ")
    assert code == Exit.USAGE and "empty" in err


def test_cli_error_json_defaults_its_code_to_the_exit_name() -> None:
    assert CliError("x", Exit.NETWORK).to_json()["error"]["code"] == "network"


# ---------------------------------------------------------------- packaging


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_console_script_and_light_dependencies() -> None:
    project = pyproject()
    assert project["project"]["scripts"] == {"tinkerbell": "cli.tinkerbell:main"}
    names = {
        dep.split(">")[0].split("=")[0].split("<")[0].strip()
        for dep in project["project"]["dependencies"]
    }
    assert names == {"httpx", "google-cloud-firestore", "pydantic"}
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"


def test_packaged_modules_import_only_what_is_installed() -> None:
    """Every module ``pip install .`` ships imports only the stdlib, the declared
    dependencies (and what they bring: google.api_core, google.auth, google.oauth2) and
    the other shipped modules: no functions-framework, google-genai, firebase-admin."""
    modules = pyproject()["tool"]["setuptools"]["py-modules"]
    assert "cli.tinkerbell" in modules and "shared.models" in modules
    allowed = set(sys.stdlib_module_names) | {"httpx", "pydantic", "pydantic_core", "google"}
    for module in modules:
        path = ROOT / (module.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name in modules or name.rsplit(".", 1)[0] in modules:
                    continue
                top = name.split(".")[0]
                assert top in allowed, f"{module} imports {name}"
                if top == "google":
                    assert name.startswith(
                        (
                            "google.cloud.firestore",
                            "google.api_core",
                            "google.auth",
                            "google.oauth2",
                        )
                    ), f"{module} imports {name}"
                if top in ("cli", "shared"):
                    raise AssertionError(f"{module} imports {name}, which is not packaged")
