"""Where ``make smoke`` goes: a deployed project (what ``infra/deploy.sh`` prints, from the
environment or an env file) or the local stack (its state file), as a ``Target``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("SUBMIT_URL", "STATUS_URL", "FIREBASE_API_KEY", "GOOGLE_CLOUD_PROJECT")
AUTH_EMULATOR = "FIREBASE_AUTH_EMULATOR_HOST"
FIRESTORE_EMULATOR = "FIRESTORE_EMULATOR_HOST"
IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com/v1"
EMULATOR_API_KEY = "emulator-key"  # the Auth emulator takes any key
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class ConfigError(Exception):
    """The configuration is missing or wrong (exit 2)."""


@dataclass(frozen=True)
class Target:
    """Where the smoke test goes, and how it signs in."""

    origin: str  # where the configuration came from, for the report
    submit_url: str
    status_url: str
    project: str
    api_key: str
    auth_emulator: str | None = None
    firestore_emulator: str | None = None

    @property
    def identity_toolkit(self) -> str:
        if self.auth_emulator:
            return f"http://{self.auth_emulator}/identitytoolkit.googleapis.com/v1"
        return IDENTITY_TOOLKIT


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (optionally ``export``ed or quoted); other lines are skipped,
    so the whole output of deploy.sh may be given."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        if (found := ENV_LINE.match(line)) is None:
            continue
        value = found[2].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[found[1]] = value
    return values


def _http_url(name: str, value: str, origin: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{origin}: {name} must be an http(s) URL, not {value!r}")
    return value.strip().rstrip("/")


def target_from_values(values: Mapping[str, str], origin: str) -> Target:
    """A configuration given explicitly (deploy.sh's output lines)."""
    missing = [key for key in REQUIRED if not values.get(key, "").strip()]
    if missing:
        raise ConfigError(
            f"{origin}: {', '.join(missing)} missing (infra/deploy.sh prints them at the end)"
        )
    emulators = [values.get(key, "").strip() or None for key in (AUTH_EMULATOR, FIRESTORE_EMULATOR)]
    if (emulators[0] is None) != (emulators[1] is None):
        raise ConfigError(
            f"{origin}: set both {AUTH_EMULATOR} and {FIRESTORE_EMULATOR} or neither "
            "(tokens of one Auth must reach the same Firestore)"
        )
    return Target(
        origin=origin,
        submit_url=_http_url("SUBMIT_URL", values["SUBMIT_URL"], origin),
        status_url=_http_url("STATUS_URL", values["STATUS_URL"], origin),
        project=values["GOOGLE_CLOUD_PROJECT"].strip(),
        api_key=values["FIREBASE_API_KEY"].strip(),
        auth_emulator=emulators[0],
        firestore_emulator=emulators[1],
    )


def target_from_stack(state_path: Path) -> Target:
    """The local stack that ``python -m dev.stack up`` recorded in its state file."""
    name = state_path.parent.name
    try:
        state = json.loads(state_path.read_text())
    except FileNotFoundError:
        start = "make up" if name == "dev" else f"python -m dev.stack up --name {name}"
        raise ConfigError(
            f"the local stack {name!r} is not running ({state_path} missing): `{start}`, "
            "or give a deployed project's SUBMIT_URL, STATUS_URL, FIREBASE_API_KEY and "
            "GOOGLE_CLOUD_PROJECT"
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {state_path}: {error}") from None
    if state.get("status") != "up":
        raise ConfigError(f"the local stack {name!r} is not up (status {state.get('status')!r})")
    env: dict[str, str] = state.get("env") or {}
    values = {**env, "FIREBASE_API_KEY": EMULATOR_API_KEY}
    for key in (AUTH_EMULATOR, FIRESTORE_EMULATOR):
        if not values.get(key):
            raise ConfigError(f"{state_path}: {key} missing: is it a stack of dev.stack?")
    return target_from_values(values, f"local stack {name!r}")


def resolve_target(env_file: Path | None, stack: str | None, environ: Mapping[str, str]) -> Target:
    """``--env-file``, else ``--stack``, else the environment when it names a deployed
    project (FIREBASE_API_KEY), else the local stack (TB_STACK_STATE or dev)."""
    if env_file is not None:
        return target_from_values(read_env_file(env_file), str(env_file))
    if stack is None and environ.get("FIREBASE_API_KEY"):
        return target_from_values(environ, "the environment")
    if stack is not None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", stack):
            raise ConfigError(f"--stack: not a stack name: {stack!r}")
        return target_from_stack(ROOT / ".stack" / stack / "state.json")
    state = environ.get("TB_STACK_STATE") or str(ROOT / ".stack" / "dev" / "state.json")
    return target_from_stack(Path(state))
