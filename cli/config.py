"""Where the ``tinkerbell`` command finds Tinkerbell, and where it keeps its files.

A *target* is one Tinkerbell: the two HTTP functions, the Firebase project and web
API key, and, locally, the Auth and Firestore emulators. It is resolved from, in
order: command-line flags, the environment (``TINKERBELL_*``), the config file
(``tinkerbell config set KEY VALUE``), and finally the local stack that ``make up``
started (``.stack/dev/state.json`` in the current directory or a parent). The first
of the first three that names a stack (``--stack``, ``TINKERBELL_STACK_STATE``) or
gives a connection key decides; connection keys then merge downwards (a flag beats
the environment, which beats the file).

Files, in ``$XDG_CONFIG_HOME/tinkerbell`` (default ``~/.config/tinkerbell``):
``config.json`` (the keys below) and ``credentials.json`` (refresh tokens, 0600).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cli.errors import CliError, Exit

ENV_PREFIX = "TINKERBELL_"
# Connection keys (config file and TINKERBELL_<KEY>); LANGUAGE is a preference.
KEYS = (
    "SUBMIT_URL",
    "STATUS_URL",
    "FIREBASE_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "AUTH_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
)
PREFERENCES = ("LANGUAGE",)
# For a deployment that enforces Firebase App Check (cli/app_check.py): a debug token
# an operator registered in the Firebase console for the app FIREBASE_APP_ID, which the
# command exchanges for the App Check tokens it sends. The token is a secret: never shown.
APP_CHECK_TOKEN = "APP_CHECK_TOKEN"  # noqa: S105 - a key's name
APP_ID = "FIREBASE_APP_ID"
SECRET_KEYS = (APP_CHECK_TOKEN,)
APP_CHECK_KEYS = (APP_CHECK_TOKEN, APP_ID)
HIDDEN = "(set, not shown)"
CONNECTION_KEYS = ("SUBMIT_URL", "STATUS_URL", "FIREBASE_API_KEY")
STACK_ENV = ("TINKERBELL_STACK_STATE", "TB_STACK_STATE")  # TB_: what `dev.stack env` sets
DEV_STATE = Path(".stack") / "dev" / "state.json"
EMULATOR_API_KEY = "emulator-key"  # the Auth emulator takes any key
IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com/v1"
SECURE_TOKEN = "https://securetoken.googleapis.com/v1"  # noqa: S105 - a URL


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "tinkerbell"


def normalize_key(key: str) -> str:
    """``submit-url``, ``submit_url``, ``TINKERBELL_SUBMIT_URL`` -> ``SUBMIT_URL``."""
    name = key.strip().upper().replace("-", "_")
    name = name.removeprefix(ENV_PREFIX)
    aliases = {"API_KEY": "FIREBASE_API_KEY", "PROJECT": "GOOGLE_CLOUD_PROJECT"}
    name = aliases.get(name, name)
    if name not in KEYS + PREFERENCES + APP_CHECK_KEYS:
        known = ", ".join(KEYS + PREFERENCES + APP_CHECK_KEYS)
        raise CliError(f"unknown configuration key {key!r} (known: {known})", Exit.USAGE)
    return name


# ---------------------------------------------------------------- the config file


def read_config_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read {path}: {error}", Exit.USAGE) from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: not a JSON object", Exit.USAGE)
    return {normalize_key(k): str(v) for k, v in data.items() if v is not None}


def redact(values: Mapping[str, str]) -> dict[str, str]:
    """The values (keys with or without TINKERBELL_) with secrets replaced, for showing."""
    return {
        k: HIDDEN if k.removeprefix(ENV_PREFIX) in SECRET_KEYS else v for k, v in values.items()
    }


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the user only (0600), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        temporary.chmod(0o600)  # an older file of that name kept its mode
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_config_file(path: Path, values: Mapping[str, str]) -> None:
    write_private(path, json.dumps(dict(sorted(values.items())), indent=2) + "\n")


# ---------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """One Tinkerbell to talk to."""

    submit_url: str
    status_url: str
    project: str
    api_key: str
    auth_emulator: str | None = None  # host:port of the Auth emulator
    firestore_emulator: str | None = None  # host:port of the Firestore emulator
    origin: str = ""  # where the configuration came from, for messages
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # App Check (cli/app_check.py): a debug token (or an App Check token), and its app.
    app_check_token: str | None = field(default=None, repr=False)
    app_check_app_id: str | None = None

    @property
    def local(self) -> bool:
        return self.auth_emulator is not None

    @property
    def identity_toolkit(self) -> str:
        if self.auth_emulator:
            return f"http://{self.auth_emulator}/identitytoolkit.googleapis.com/v1"
        return IDENTITY_TOOLKIT

    @property
    def secure_token(self) -> str:
        if self.auth_emulator:
            return f"http://{self.auth_emulator}/securetoken.googleapis.com/v1"
        return SECURE_TOKEN

    @property
    def credentials_key(self) -> str:
        """Which stored sign-in belongs to this target (users exist per Auth service)."""
        return f"{self.project}@{self.auth_emulator or 'firebase'}"

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "SUBMIT_URL": self.submit_url,
            "STATUS_URL": self.status_url,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "FIREBASE_API_KEY": self.api_key,
            "AUTH_EMULATOR_HOST": self.auth_emulator,
            "FIRESTORE_EMULATOR_HOST": self.firestore_emulator,
            "APP_CHECK_TOKEN": HIDDEN if self.app_check_token else None,
            "FIREBASE_APP_ID": self.app_check_app_id,
            "sources": dict(self.sources),
        }


def find_dev_state(start: Path) -> Path | None:
    """``.stack/dev/state.json`` in ``start`` or the nearest parent that has one."""
    for directory in (start, *start.parents):
        candidate = directory / DEV_STATE
        if candidate.is_file():
            return candidate
    return None


def stack_state_path(name_or_path: str, cwd: Path) -> Path:
    """``--stack test2`` (a stack's name, looked up like the dev stack) or a path."""
    if "/" in name_or_path or name_or_path.endswith(".json"):
        return Path(name_or_path)
    for directory in (cwd, *cwd.parents):
        candidate = directory / ".stack" / name_or_path / "state.json"
        if candidate.is_file():
            return candidate
    return cwd / ".stack" / name_or_path / "state.json"


def target_from_stack(path: Path) -> Target:
    try:
        state = json.loads(path.read_text())
        env: dict[str, str] = state["env"]
        submit, status = env["SUBMIT_URL"], env["STATUS_URL"]
    except FileNotFoundError:
        raise CliError(
            f"the local stack is not running ({path} missing): run `make up`", Exit.USAGE
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CliError(f"cannot read the local stack's state {path}: {error}", Exit.USAGE) from None
    return Target(
        submit_url=submit.rstrip("/"),
        status_url=status.rstrip("/"),
        project=env.get("GOOGLE_CLOUD_PROJECT", "demo-tinkerbell"),
        api_key=EMULATOR_API_KEY,
        auth_emulator=env.get("FIREBASE_AUTH_EMULATOR_HOST"),
        firestore_emulator=env.get("FIRESTORE_EMULATOR_HOST"),
        origin=f"local stack {state.get('name', '?')} ({path})",
    )


def _check_url(name: str, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise CliError(f"{name} must be an http(s) URL, not {value!r}", Exit.USAGE)
    return value.rstrip("/")


def app_check_value(key: str, env: Mapping[str, str], file_values: Mapping[str, str]) -> str | None:
    """``TINKERBELL_<KEY>``, else the config file's ``KEY`` (App Check's keys)."""
    value = env.get(ENV_PREFIX + key) or file_values.get(key) or ""
    return value.strip() or None


def resolve_target(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    file_values: Mapping[str, str],
    cwd: Path,
    *,
    stack_flag: str | None = None,
) -> Target:
    """The target, from flags (keys as in ``KEYS``), environment, config file, local stack;
    with App Check's token and app id from the environment or the config file."""
    target = _resolve_target(flags, env, file_values, cwd, stack_flag=stack_flag)
    return replace(
        target,
        app_check_token=app_check_value(APP_CHECK_TOKEN, env, file_values),
        app_check_app_id=app_check_value(APP_ID, env, file_values),
    )


def _resolve_target(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    file_values: Mapping[str, str],
    cwd: Path,
    *,
    stack_flag: str | None = None,
) -> Target:
    env_values = {k: env[ENV_PREFIX + k] for k in KEYS if env.get(ENV_PREFIX + k)}
    env_stack = next((env[name] for name in STACK_ENV if env.get(name)), None)
    levels: list[tuple[str, dict[str, str], str | None]] = [
        ("flag", {k: v for k, v in flags.items() if v}, stack_flag),
        ("environment", env_values, env_stack),
        ("config file", {k: v for k, v in file_values.items() if k in KEYS}, None),
    ]
    for _name, values, stack in levels:
        if stack:
            return target_from_stack(stack_state_path(stack, cwd))
        if any(values.get(k) for k in CONNECTION_KEYS):
            return _explicit_target(levels)  # higher levels may still set the project
    found = find_dev_state(cwd)
    if found is not None:
        return target_from_stack(found)
    raise CliError(
        "no Tinkerbell configured: run `make up` in the repository for the local stack, "
        "or `tinkerbell config set SUBMIT_URL|STATUS_URL|FIREBASE_API_KEY|"
        "GOOGLE_CLOUD_PROJECT VALUE` for a deployed one",
        Exit.USAGE,
    )


def _explicit_target(levels: list[tuple[str, dict[str, str], str | None]]) -> Target:
    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, values, _stack in reversed(levels):
        for key, value in values.items():
            merged[key] = value
            sources[key] = name
    auth_emulator = merged.get("AUTH_EMULATOR_HOST")
    if auth_emulator and not merged.get("FIREBASE_API_KEY"):
        merged["FIREBASE_API_KEY"] = EMULATOR_API_KEY
    missing = [k for k in KEYS[:4] if not merged.get(k)]
    if missing:
        raise CliError(
            f"incomplete configuration: {', '.join(missing)} missing "
            f"(flags, TINKERBELL_{missing[0]}, or `tinkerbell config set {missing[0]} VALUE`)",
            Exit.USAGE,
        )
    return Target(
        submit_url=_check_url("SUBMIT_URL", merged["SUBMIT_URL"]),
        status_url=_check_url("STATUS_URL", merged["STATUS_URL"]),
        project=merged["GOOGLE_CLOUD_PROJECT"],
        api_key=merged["FIREBASE_API_KEY"],
        auth_emulator=auth_emulator or None,
        firestore_emulator=merged.get("FIRESTORE_EMULATOR_HOST") or None,
        origin="configuration (" + ", ".join(sorted(set(sources.values()))) + ")",
        sources=sources,
    )


# ---------------------------------------------------------------- preferences


def default_language(env: Mapping[str, str] | None = None) -> str:
    """``ro`` when the user's locale is Romanian, else ``en``."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):  # POSIX order of precedence
        value = env.get(name)
        if value:
            return "ro" if value.lower().startswith("ro") else "en"
    return "en"
