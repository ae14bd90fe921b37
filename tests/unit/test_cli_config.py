"""Where ``tinkerbell`` finds Tinkerbell: flags, environment, config file, local stack."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from cli.config import (
    EMULATOR_API_KEY,
    config_dir,
    default_language,
    find_dev_state,
    normalize_key,
    resolve_target,
    write_private,
)
from cli.errors import CliError, Exit
from cli.tinkerbell import run

DEPLOYED = {
    "SUBMIT_URL": "https://submit.example/",
    "STATUS_URL": "https://status.example",
    "FIREBASE_API_KEY": "AIza-file",
    "GOOGLE_CLOUD_PROJECT": "tinkerbell-prod",
}


def write_state(directory: Path, name: str = "dev", port: int = 8001) -> Path:
    state = {
        "name": name,
        "env": {
            "GOOGLE_CLOUD_PROJECT": "demo-tinkerbell",
            "SUBMIT_URL": f"http://127.0.0.1:{port}",
            "STATUS_URL": f"http://127.0.0.1:{port + 2}",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080",
        },
    }
    path = directory / ".stack" / name / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(state))
    return path


def no_flags() -> dict[str, str | None]:
    return {}


def test_the_local_stack_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    state = write_state(tmp_path)
    inner = tmp_path / "docs" / "deep"
    inner.mkdir(parents=True)
    assert find_dev_state(inner) == state
    target = resolve_target(no_flags(), {}, {}, inner)
    assert target.submit_url == "http://127.0.0.1:8001"
    assert target.status_url == "http://127.0.0.1:8003"
    assert target.auth_emulator == "127.0.0.1:9099"
    assert target.firestore_emulator == "127.0.0.1:8080"
    assert target.api_key == EMULATOR_API_KEY
    assert target.local
    assert target.identity_toolkit == "http://127.0.0.1:9099/identitytoolkit.googleapis.com/v1"
    assert target.secure_token == "http://127.0.0.1:9099/securetoken.googleapis.com/v1"
    assert "local stack dev" in target.origin


def test_nothing_configured_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        resolve_target(no_flags(), {}, {}, tmp_path)
    assert raised.value.exit == Exit.USAGE
    assert "make up" in raised.value.message


def test_the_config_file_beats_the_discovered_stack(tmp_path: Path) -> None:
    write_state(tmp_path)
    target = resolve_target(no_flags(), {}, DEPLOYED, tmp_path)
    assert target.submit_url == "https://submit.example"  # trailing slash dropped
    assert target.project == "tinkerbell-prod"
    assert not target.local
    assert target.identity_toolkit == "https://identitytoolkit.googleapis.com/v1"
    assert target.secure_token == "https://securetoken.googleapis.com/v1"


def test_keys_merge_flag_over_environment_over_file(tmp_path: Path) -> None:
    env = {"TINKERBELL_STATUS_URL": "https://status.env", "TINKERBELL_FIREBASE_API_KEY": "k-env"}
    flags = {"STATUS_URL": "https://status.flag", "SUBMIT_URL": None}
    target = resolve_target(flags, env, DEPLOYED, tmp_path)
    assert target.status_url == "https://status.flag"
    assert target.api_key == "k-env"
    assert target.submit_url == "https://submit.example"
    assert target.sources == {
        "STATUS_URL": "flag",
        "FIREBASE_API_KEY": "environment",
        "SUBMIT_URL": "config file",
        "GOOGLE_CLOUD_PROJECT": "config file",
    }


def test_a_named_stack_in_the_environment_beats_the_config_file(tmp_path: Path) -> None:
    other = write_state(tmp_path, "test2", port=28001)
    target = resolve_target(no_flags(), {"TINKERBELL_STACK_STATE": str(other)}, DEPLOYED, tmp_path)
    assert target.submit_url == "http://127.0.0.1:28001"
    # ... and what `eval "$(python -m dev.stack env)"` sets works too.
    target = resolve_target(no_flags(), {"TB_STACK_STATE": str(other)}, DEPLOYED, tmp_path)
    assert target.submit_url == "http://127.0.0.1:28001"


def test_url_flags_beat_a_stack_in_the_environment(tmp_path: Path) -> None:
    other = write_state(tmp_path, "test2", port=28001)
    flags = {"SUBMIT_URL": "https://submit.flag"}
    target = resolve_target(flags, {"TINKERBELL_STACK_STATE": str(other)}, DEPLOYED, tmp_path)
    assert target.submit_url == "https://submit.flag"


def test_stack_flag_by_name(tmp_path: Path) -> None:
    write_state(tmp_path, "test3", port=38001)
    target = resolve_target(no_flags(), {}, DEPLOYED, tmp_path, stack_flag="test3")
    assert target.submit_url == "http://127.0.0.1:38001"
    with pytest.raises(CliError) as raised:
        resolve_target(no_flags(), {}, {}, tmp_path, stack_flag="test2")
    assert raised.value.exit == Exit.USAGE and "make up" in raised.value.message


def test_incomplete_configuration_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        resolve_target({"SUBMIT_URL": "https://s.example"}, {}, {}, tmp_path)
    assert raised.value.exit == Exit.USAGE
    assert "STATUS_URL" in raised.value.message and "FIREBASE_API_KEY" in raised.value.message


def test_urls_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        resolve_target({}, {}, DEPLOYED | {"SUBMIT_URL": "submit.example"}, tmp_path)
    assert raised.value.exit == Exit.USAGE


def test_explicit_emulators_need_no_api_key(tmp_path: Path) -> None:
    env = {
        "TINKERBELL_SUBMIT_URL": "http://127.0.0.1:1",
        "TINKERBELL_STATUS_URL": "http://127.0.0.1:1",
        "TINKERBELL_GOOGLE_CLOUD_PROJECT": "demo-x",
        "TINKERBELL_AUTH_EMULATOR_HOST": "127.0.0.1:2",
    }
    target = resolve_target(no_flags(), env, {}, tmp_path)
    assert target.api_key == EMULATOR_API_KEY
    assert target.credentials_key == "demo-x@127.0.0.1:2 for http://127.0.0.1:1 http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "ro_RO.UTF-8"}, "ro"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "ro_RO.UTF-8", "LANG": "en_GB.UTF-8"}, "ro"),
        ({"LC_ALL": "C.UTF-8", "LANG": "ro_RO.UTF-8"}, "en"),
        ({"LC_MESSAGES": "ro_MD.UTF-8"}, "ro"),
        ({}, "en"),
    ],
)
def test_default_language_from_the_locale(env: dict[str, str], expected: str) -> None:
    assert default_language(env) == expected


def test_keys_are_normalized() -> None:
    assert normalize_key("submit-url") == "SUBMIT_URL"
    assert normalize_key("TINKERBELL_STATUS_URL") == "STATUS_URL"
    assert normalize_key("api_key") == "FIREBASE_API_KEY"
    assert normalize_key("project") == "GOOGLE_CLOUD_PROJECT"
    with pytest.raises(CliError) as raised:
        normalize_key("colour")
    assert raised.value.exit == Exit.USAGE


def test_config_dir_follows_xdg(tmp_path: Path) -> None:
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "tinkerbell"
    assert config_dir({"HOME": str(tmp_path)}) == tmp_path / ".config" / "tinkerbell"


def test_private_files_are_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "tinkerbell" / "credentials.json"
    write_private(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    write_private(path, "{}")  # replaced by a private file again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def cli(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environment = {"XDG_CONFIG_HOME": str(tmp_path / "config")} | (env or {})
    code = run(list(argv), env=environment, cwd=tmp_path, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_config_set_show_unset(tmp_path: Path) -> None:
    for key, value in DEPLOYED.items():
        assert cli(tmp_path, "config", "set", key.lower(), value)[0] == 0
    path = tmp_path / "config" / "tinkerbell" / "config.json"
    assert json.loads(path.read_text())["GOOGLE_CLOUD_PROJECT"] == "tinkerbell-prod"

    code, out, _ = cli(tmp_path, "config", "show", "--json")
    shown: dict[str, Any] = json.loads(out)
    assert code == 0
    assert shown["target"]["SUBMIT_URL"] == "https://submit.example"
    assert shown["target"]["origin"] == "configuration (config file)"
    assert shown["user"] is None

    code, out, _ = cli(tmp_path, "config", "show", "--project", "other-project")
    assert code == 0 and "other-project" in out  # a flag wins for one invocation

    assert cli(tmp_path, "config", "unset", "SUBMIT_URL")[0] == 0
    code, out, _ = cli(tmp_path, "config", "show", "--json")
    assert code == 0 and json.loads(out)["target"] is None
    assert "SUBMIT_URL" in json.loads(out)["problem"]

    code, _, err = cli(tmp_path, "config", "set", "COLOUR", "blue")
    assert code == Exit.USAGE and err.count("\n") == 1
