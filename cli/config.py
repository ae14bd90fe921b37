"""Where the ``tinkerbell`` command finds Tinkerbell, and where it keeps its files.

A *target* is one Tinkerbell: the two HTTP functions, the Firebase project and web
API key, and, locally, the Auth and Firestore emulators. It is resolved from, in
order: command-line flags, the environment (``TINKERBELL_*``), the config file
(``tinkerbell config set KEY VALUE``), and finally the local stack that ``make up``
started (``.stack/dev/state.json`` in the current directory or a parent). The first
of the first three that names a stack (``--stack``, ``TINKERBELL_STACK_STATE``) or
gives a connection key decides; connection keys then merge downwards (a flag beats
the environment, which beats the file).

Where an ID token may go. A stack's state file is a plain file any directory may
hold, so it is trusted only when it is the user's own and every URL and emulator host
in it is local (http on 127.0.0.1, ::1 or localhost; ``check_stack_state``), and it
names the Auth and Firestore emulators: a stack's tokens come from its Auth emulator
and go to loopback addresses only. A configured target that uses the Auth emulator
(an emulator token) must have local URLs too; one that uses the real Firebase Auth
has no emulator and sends its token over https (or to a loopback URL). Sign-ins are
kept per target *origin* (``Target.binding``: the project, the Auth endpoint and the
SUBMIT and STATUS origins), never per project alone (cli/auth.py).

Files, in ``$XDG_CONFIG_HOME/tinkerbell`` (default ``~/.config/tinkerbell``):
``config.json`` (the keys below) and ``credentials.json`` (refresh tokens, 0600).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

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
# A stack's state must name these (its tokens come from, and its listener reads, them).
STACK_EMULATORS = ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")
LOCAL_HOSTS = "127.0.0.1, ::1 or localhost"
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a URL's authority may hold: a host name or address and a port. No user info
# ("http://127.0.0.1@evil.example"), no backslash, no space, nothing two URL parsers
# could read as two different hosts.
AUTHORITY = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


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


# ---------------------------------------------------------------- URLs and origins


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost`` (a host name as ``urlsplit`` gives it)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_url(value: str) -> SplitResult | None:
    """``value`` as an http(s) URL with a plain host[:port] authority, else None."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port out of range raises
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    if not AUTHORITY.fullmatch(parts.netloc):
        return None
    return parts


def url_origin(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL (the port always written), or ``""``."""
    parts = split_url(url)
    if parts is None or parts.hostname is None:
        return ""
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower case, without the brackets of an IPv6 address
    port = parts.port or DEFAULT_PORTS[scheme]
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def is_local_url(value: str) -> bool:
    """An http URL (not https: the stack serves none) on a loopback address."""
    parts = split_url(value)
    return (
        parts is not None
        and parts.scheme.lower() == "http"
        and parts.hostname is not None
        and is_loopback_host(parts.hostname)
    )


def is_local_host(value: str) -> bool:
    """An emulator's ``host:port`` (or ``http://host:port``) on a loopback address."""
    url = value if "://" in value else f"http://{value}"
    parts = split_url(url)
    return (
        is_local_url(url)
        and parts is not None
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


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
class Binding:
    """What one kept sign-in is for: the ID token it holds goes to these origins only,
    and its refresh token to the Auth endpoint it came from only."""

    project: str
    auth_endpoint: str  # the Identity Toolkit it signed in at (the emulator's, or Firebase's)
    submit_origin: str  # scheme://host:port
    status_origin: str

    @property
    def emulated(self) -> bool:
        """A token of the Auth emulator (unsigned; for local URLs only)."""
        return self.auth_endpoint != IDENTITY_TOOLKIT

    @property
    def origins(self) -> tuple[str, str]:
        return (self.submit_origin, self.status_origin)


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
    def binding(self) -> Binding:
        """The sign-in this target may use: one made at its Auth endpoint, for its origins."""
        return Binding(
            project=self.project,
            auth_endpoint=self.identity_toolkit,
            submit_origin=url_origin(self.submit_url),
            status_origin=url_origin(self.status_url),
        )

    @property
    def credentials_key(self) -> str:
        """Which stored sign-in belongs to this target: its project and Auth service, and
        the two origins its ID token goes to (another server is another sign-in)."""
        binding = self.binding
        return f"{self.legacy_credentials_key} for {binding.submit_origin} {binding.status_origin}"

    @property
    def legacy_credentials_key(self) -> str:
        """The key of an older tinkerbell's sign-ins (per project and Auth service only),
        never used now: such a sign-in is not bound to any server."""
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
    check_stack_state(path, state)
    return Target(
        submit_url=submit.rstrip("/"),
        status_url=status.rstrip("/"),
        project=env.get("GOOGLE_CLOUD_PROJECT", "demo-tinkerbell"),
        api_key=EMULATOR_API_KEY,
        auth_emulator=env["FIREBASE_AUTH_EMULATOR_HOST"],
        firestore_emulator=env["FIRESTORE_EMULATOR_HOST"],
        origin=f"local stack {state.get('name', '?')} ({path})",
    )


def check_stack_state(path: Path, state: Mapping[str, Any]) -> None:
    """A stack's state is trusted only when it is the user's own file, names the Auth
    and Firestore emulators, and every URL and emulator host in its ``env`` and
    ``urls`` is local (http on a loopback address): else one line naming the first
    entry that is not, before any request (a planted ``.stack/dev/state.json`` in a
    directory must not send the user's token, or password, anywhere)."""

    def refuse(reason: str) -> CliError:
        return CliError(
            f"refusing the stack state {path}: {reason}; nothing was sent to it", Exit.USAGE
        )

    try:
        owner = path.stat().st_uid
    except OSError as error:
        raise refuse(f"cannot stat it ({error.strerror or error})") from None
    if hasattr(os, "getuid") and owner != os.getuid():
        raise refuse(f"it belongs to another user (uid {owner}), not to you")
    env = state["env"]
    if not isinstance(env, dict):
        raise refuse('its "env" is not an object')
    urls = state.get("urls") or {}
    if not isinstance(urls, dict):
        raise refuse('its "urls" is not an object')
    first = ("SUBMIT_URL", "STATUS_URL", *STACK_EMULATORS)
    entries = [(key, env[key]) for key in first if key in env]
    entries += [(key, value) for key, value in env.items() if key not in first]
    entries += [(f"urls.{key}", value) for key, value in urls.items()]
    local = f"must be http on {LOCAL_HOSTS}"
    for name, value in entries:
        if not isinstance(value, str):
            if name.startswith("urls.") or name.endswith(("_URL", "_HOST")):
                raise refuse(f"{name} is not a string")
            continue
        if name.endswith("_EMULATOR_HOST"):
            if not is_local_host(value):
                raise refuse(f"{name} {value[:200]!r} is not a local emulator host ({local})")
        elif (name.startswith("urls.") or name.endswith("_URL") or "://" in value) and (
            not is_local_url(value)
        ):
            raise refuse(f"{name} {value[:200]!r} is not a local URL (a stack's URLs {local})")
    for key in STACK_EMULATORS:
        if not env.get(key):
            raise refuse(f"it names no {key} (a stack signs in with its own emulators only)")


def _check_url(name: str, value: str) -> str:
    if split_url(value) is None:
        raise CliError(
            f"{name} must be an http(s) URL with a host (and a port), not {value!r}", Exit.USAGE
        )
    return value.rstrip("/")


def check_token_destinations(target: Target) -> None:
    """Where a configured target's ID token would go (a stack's are checked with its
    state): an Auth emulator's token only to local URLs and a local Firestore emulator;
    a Firebase token never to an emulator, and over https unless the URL is local."""
    urls = (("SUBMIT_URL", target.submit_url), ("STATUS_URL", target.status_url))
    if target.auth_emulator:
        local = f"http on {LOCAL_HOSTS}"
        if not is_local_host(target.auth_emulator):
            raise CliError(
                f"AUTH_EMULATOR_HOST {target.auth_emulator!r} is not local: the Auth "
                f"emulator's address must be {local}",
                Exit.USAGE,
            )
        for name, url in urls:
            if not is_local_url(url):
                raise CliError(
                    f"{name} {url!r} is not a local URL, and AUTH_EMULATOR_HOST is set: "
                    f"an Auth emulator's ID token is sent only to {local}",
                    Exit.USAGE,
                )
        if target.firestore_emulator and not is_local_host(target.firestore_emulator):
            raise CliError(
                f"FIRESTORE_EMULATOR_HOST {target.firestore_emulator!r} is not local: "
                f"the emulator's address must be {local}",
                Exit.USAGE,
            )
        return
    if target.firestore_emulator:
        raise CliError(
            "FIRESTORE_EMULATOR_HOST is set without AUTH_EMULATOR_HOST: a Firebase ID token "
            "is never sent to an emulator (set both for a local stack, neither for a "
            "deployed project)",
            Exit.USAGE,
        )
    for name, url in urls:
        if url_origin(url).startswith("http://") and not is_local_url(url):
            raise CliError(
                f"{name} {url!r} is plain http: a Firebase ID token is sent over https "
                "only (or to a URL on this machine)",
                Exit.USAGE,
            )


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
    target = Target(
        submit_url=_check_url("SUBMIT_URL", merged["SUBMIT_URL"]),
        status_url=_check_url("STATUS_URL", merged["STATUS_URL"]),
        project=merged["GOOGLE_CLOUD_PROJECT"],
        api_key=merged["FIREBASE_API_KEY"],
        auth_emulator=auth_emulator or None,
        firestore_emulator=merged.get("FIRESTORE_EMULATOR_HOST") or None,
        origin="configuration (" + ", ".join(sorted(set(sources.values()))) + ")",
        sources=sources,
    )
    check_token_destinations(target)
    return target


# ---------------------------------------------------------------- preferences


def default_language(env: Mapping[str, str] | None = None) -> str:
    """``ro`` when the user's locale is Romanian, else ``en``."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):  # POSIX order of precedence
        value = env.get(name)
        if value:
            return "ro" if value.lower().startswith("ro") else "en"
    return "en"
