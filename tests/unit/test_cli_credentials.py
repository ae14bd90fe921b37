"""Where the command's tokens may go (issue 18, item 6): a kept sign-in is bound to the
SUBMIT and STATUS origins and the Auth endpoint it was made for, and a stack's state
is trusted only when every URL and emulator host in it is local.

The command runs whole (``run``) with every HTTP request it makes recorded by a fake
transport (``Wire``), so "refused" also means "nothing was sent": no request, to any
host. The loopback stack that is accepted is served for real on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import config, tinkerbell, transport
from cli.auth import Auth, CredentialStore, StoredUser
from cli.config import IDENTITY_TOOLKIT, Target, resolve_target
from cli.errors import CliError, Exit
from cli.tinkerbell import run
from tests.local_servers import free_port, serving
from tests.unit.test_cli_config import write_state

FRESH = 4_000_000_000.0  # an ID token that expires in 2096: never refreshed first
PROD = {
    "--submit-url": "https://submit-prod.example",
    "--status-url": "https://status-prod.example",
    "--project": "tinkerbell-prod",
    "--api-key": "AIza-prod",
}


def flags(values: dict[str, str]) -> list[str]:
    return [part for flag, value in values.items() for part in (flag, value)]


def entry(token: str, **binding: str) -> dict[str, Any]:
    """A credentials.json entry; without ``binding``, as an older tinkerbell wrote it."""
    return {
        "uid": f"uid-{token}",
        "refresh_token": f"refresh-{token}",
        "id_token": token,
        "expires_at": FRESH,
        "email": None,
        "anonymous": True,
        **binding,
    }


def write_credentials(home: Path, users: dict[str, dict[str, Any]]) -> Path:
    path = home / "config" / "tinkerbell" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"users": users}))
    return path


class Wire:
    """Every request the command sends, to any host; Auth's two APIs (real or emulator)
    and ``GET /v1/tasks/t1`` answer as the services would."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/accounts:signUp"):
            self.tokens += 1
            token = f"minted-{request.url.host}-{self.tokens}"
            answer = {"localId": "uid-new", "idToken": token, "refreshToken": "refresh-new"}
            return httpx.Response(200, json=answer | {"expiresIn": "3600"})
        if path == "/v1/tasks/t1":
            return httpx.Response(200, json={"task_id": "t1", "status": "PENDING"})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    def bearers(self) -> list[tuple[str, str]]:
        """(origin, token) of every request that carried an ID token."""
        return [
            (
                f"{r.url.scheme}://{r.url.host}:{r.url.port or 443}",
                r.headers["Authorization"].removeprefix("Bearer "),
            )
            for r in self.requests
            if "Authorization" in r.headers
        ]


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    recorder = Wire()
    client = httpx.Client(transport=httpx.MockTransport(recorder.handler))
    monkeypatch.setattr(tinkerbell.Context, "http", property(lambda _ctx: client))
    monkeypatch.setattr(transport.time, "sleep", lambda _s: None)
    return recorder


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    def invoke(
        *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        environment = {"XDG_CONFIG_HOME": str(tmp_path / "config")} | (env or {})
        code = run(list(argv), env=environment, cwd=cwd or tmp_path, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return invoke


def plant(directory: Path, **env: str | None) -> Path:
    """``.stack/dev/state.json`` in ``directory``: a loopback stack, changed by ``env``
    (a None value leaves the key out)."""
    path = write_state(directory)
    state = json.loads(path.read_text())
    for key, value in env.items():
        if value is None:
            state["env"].pop(key, None)
        else:
            state["env"][key] = value
    path.write_text(json.dumps(state))
    return path


# ---------------------------------------------------------------- a planted stack state


@pytest.mark.parametrize("found_by", ["directory", "environment"])
@pytest.mark.parametrize("kept", ["firebase", "emulator"])
def test_a_planted_state_pointing_elsewhere_is_refused_and_nothing_is_sent(
    tmp_path: Path, wire: Wire, cli: Cli, found_by: str, kept: str
) -> None:
    """A directory the user cds into holds ``.stack/dev/state.json`` naming
    http://evil.example:8001, and the user's real (Firebase) or local (emulator)
    sign-in for that project is kept, fresh. Before: that token was sent there."""
    evil = {"SUBMIT_URL": "http://evil.example:8001", "STATUS_URL": "http://evil.example:8001"}
    if kept == "firebase":
        project, auth = "tinkerbell-prod", None  # no emulator: the Firebase sign-in's key
        legacy_key = "tinkerbell-prod@firebase"
        key = f"{legacy_key} for https://submit-prod.example:443 https://status-prod.example:443"
        binding = {
            "auth_endpoint": IDENTITY_TOOLKIT,
            "submit_origin": "https://submit-prod.example:443",
            "status_origin": "https://status-prod.example:443",
        }
    else:
        project, auth = "demo-tinkerbell", "127.0.0.1:9099"
        legacy_key = "demo-tinkerbell@127.0.0.1:9099"
        key = f"{legacy_key} for http://127.0.0.1:8001 http://127.0.0.1:8003"
        binding = {
            "auth_endpoint": "http://127.0.0.1:9099/identitytoolkit.googleapis.com/v1",
            "submit_origin": "http://127.0.0.1:8001",
            "status_origin": "http://127.0.0.1:8003",
        }
    write_credentials(
        tmp_path,
        {
            legacy_key: entry("secret-legacy-token"),  # an older tinkerbell's entry
            key: entry("secret-bound-token", project=project, **binding),
        },
    )
    planted_dir = tmp_path / "downloads" / "someones-repo"
    planted_dir.mkdir(parents=True)
    state = plant(
        planted_dir, GOOGLE_CLOUD_PROJECT=project, FIREBASE_AUTH_EMULATOR_HOST=auth, **evil
    )
    cwd = planted_dir / "src"  # found from a subdirectory, as `make up`'s is
    cwd.mkdir()
    env = {"TINKERBELL_STACK_STATE": str(state)} if found_by == "environment" else {}

    for argv in (("status", "t1"), ("submit", "a brief"), ("login",)):
        code, _, err = cli(*argv, env=env, cwd=cwd)
        assert code == Exit.USAGE, (argv, err)
        assert err == (
            f"tinkerbell: refusing the stack state {state}: SUBMIT_URL "
            "'http://evil.example:8001' is not a local URL (a stack's URLs must be http on "
            "127.0.0.1, ::1 or localhost); nothing was sent to it\n"
        )
    assert wire.requests == []  # not to evil.example, not to Auth: nothing at all


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("SUBMIT_URL", "http://evil.example:8001", "SUBMIT_URL 'http://evil.example:8001'"),
        ("STATUS_URL", "http://10.0.0.7:8003", "STATUS_URL"),
        ("STATUS_URL", "https://127.0.0.1:8003", "STATUS_URL"),  # a stack serves http
        ("STATUS_URL", "http://127.0.0.1:8003@evil.example", "STATUS_URL"),
        ("STATUS_URL", "http://127.0.0.1:8003\\@evil.example", "STATUS_URL"),
        ("STATUS_URL", "http://localhost.evil.example:8003", "STATUS_URL"),
        ("STATUS_URL", "http://127.0.0.1.nip.io:8003", "STATUS_URL"),
        ("STATUS_URL", "http://[::ffff:10.0.0.7]:8003", "STATUS_URL"),
        ("FIREBASE_AUTH_EMULATOR_HOST", "evil.example:9099", "FIREBASE_AUTH_EMULATOR_HOST"),
        ("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099@evil.example", "FIREBASE_AUTH_EMULATOR"),
        ("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099/x", "FIREBASE_AUTH_EMULATOR_HOST"),
        ("FIRESTORE_EMULATOR_HOST", "192.168.1.5:8080", "FIRESTORE_EMULATOR_HOST"),
        ("PUBSUB_EMULATOR_HOST", "evil.example:8085", "PUBSUB_EMULATOR_HOST"),
        ("STORAGE_EMULATOR_HOST", "http://evil.example:9199", "STORAGE_EMULATOR_HOST"),
        ("WEB_URL", "http://evil.example", "WEB_URL"),
        ("FIREBASE_AUTH_EMULATOR_HOST", None, "names no FIREBASE_AUTH_EMULATOR_HOST"),
        ("FIRESTORE_EMULATOR_HOST", None, "names no FIRESTORE_EMULATOR_HOST"),
    ],
)
def test_every_url_and_emulator_host_of_a_state_must_be_local(
    tmp_path: Path, key: str, value: str | None, named: str
) -> None:
    plant(tmp_path, **{key: value})
    with pytest.raises(CliError) as raised:
        resolve_target({}, {}, {}, tmp_path)
    assert raised.value.exit == Exit.USAGE
    assert named in raised.value.message and "\n" not in raised.value.message


def test_the_urls_of_a_state_must_be_local_too(tmp_path: Path) -> None:
    path = plant(tmp_path)
    state = json.loads(path.read_text())
    state["urls"] = {"auth": "http://127.0.0.1:9099", "submit": "http://evil.example:8001"}
    path.write_text(json.dumps(state))
    with pytest.raises(CliError) as raised:
        resolve_target({}, {}, {}, tmp_path)
    assert "urls.submit 'http://evil.example:8001' is not a local URL" in raised.value.message


def test_a_state_file_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(tmp_path)
    someone_else = os.getuid() + 1
    monkeypatch.setattr(config.os, "getuid", lambda: someone_else)
    with pytest.raises(CliError) as raised:
        resolve_target({}, {}, {}, tmp_path)
    assert "belongs to another user" in raised.value.message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_loopback_state_is_accepted(tmp_path: Path, host: str) -> None:
    plant(
        tmp_path,
        SUBMIT_URL=f"http://{host}:8001",
        STATUS_URL=f"http://{host}:8003/",
        FIREBASE_AUTH_EMULATOR_HOST=f"{host}:9099",
        FIRESTORE_EMULATOR_HOST=f"{host}:8080",
        STORAGE_EMULATOR_HOST=f"http://{host}:9199",
        PUBSUB_EMULATOR_HOST=f"{host}:8085",
        WEB_URL=f"http://{host}:5173",
    )
    target = resolve_target({}, {}, {}, tmp_path)
    assert target.submit_url == f"http://{host}:8001"
    assert target.binding.origins == (f"http://{host}:8001", f"http://{host}:8003")
    assert target.binding.emulated


# ---------------------------------------------------------------- a real loopback stack


class LocalStack:
    """The Auth emulator's sign-up and the status function, served on 127.0.0.1."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Authorization)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        self.seen.append((path, environ.get("HTTP_AUTHORIZATION", "")))
        if path.endswith("/accounts:signUp"):
            body = {"localId": "u1", "idToken": "local-token", "refreshToken": "r1"}
        elif path == "/v1/tasks/t1":
            body = {"task_id": "t1", "status": "PENDING"}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b"{}"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body | {"expiresIn": "3600"}).encode()]


@pytest.fixture
def local_stack() -> Iterator[tuple[LocalStack, str]]:
    app = LocalStack()
    with serving(app) as url:
        yield app, url


def test_a_loopback_stack_gets_its_own_token(
    tmp_path: Path, cli: Cli, local_stack: tuple[LocalStack, str]
) -> None:
    app, url = local_stack
    host = url.removeprefix("http://")
    plant(
        tmp_path,
        SUBMIT_URL=url,
        STATUS_URL=url,
        FIREBASE_AUTH_EMULATOR_HOST=host,
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}",
    )
    inner = tmp_path / "docs"
    inner.mkdir()
    code, _, err = cli("login", cwd=inner)
    assert code == Exit.OK, err
    code, out, err = cli("status", "t1", "--json", cwd=inner)
    assert code == Exit.OK, err
    assert json.loads(out)["status"] == "PENDING"
    assert app.seen[-1] == ("/v1/tasks/t1", "Bearer local-token")


# ---------------------------------------------------------------- sign-ins bound to origins


def test_a_sign_in_for_one_server_is_not_used_for_another(
    tmp_path: Path, wire: Wire, cli: Cli
) -> None:
    code, _, err = cli("login", *flags(PROD))
    assert code == Exit.OK, err
    minted = "minted-identitytoolkit.googleapis.com-1"
    # Another deployment of the same project (same Firebase Auth): not this sign-in.
    other = PROD | {
        "--submit-url": "https://submit-other.example",
        "--status-url": "https://status-other.example",
    }
    sent_before = len(wire.requests)
    code, _, err = cli("status", "t1", *flags(other))
    assert code == Exit.AUTH
    assert "not logged in to tinkerbell-prod at https://submit-other.example:443" in err
    assert wire.requests[sent_before:] == []
    # ... and one server of the two changed is another server too.
    code, _, _ = cli("status", "t1", *flags(PROD | {"--status-url": "https://x.example"}))
    assert code == Exit.AUTH and wire.requests[sent_before:] == []
    # Its own target gets it, at its status origin.
    code, _, err = cli("status", "t1", *flags(PROD))
    assert code == Exit.OK, err
    assert wire.bearers() == [("https://status-prod.example:443", minted)]


def test_an_entry_under_another_targets_key_is_not_used(tmp_path: Path, wire: Wire) -> None:
    """The key only finds an entry; the origins written in it decide (a file edited by
    hand, or a key that happens to match)."""
    a = Target("https://a.example", "https://a.example", "p", "k")
    b = Target("https://b.example", "https://b.example", "p", "k")
    store = CredentialStore(tmp_path)
    store.put(b.credentials_key, StoredUser.bound_to(a.binding, **entry("a-token")))
    http = httpx.Client(transport=httpx.MockTransport(wire.handler))
    assert Auth(b, http, store).current() is None
    assert Auth(a, http, store).current() is None  # not under a's key either
    with pytest.raises(CliError) as raised:
        Auth(b, http, store).token_for("https://b.example/v1/tasks/t1")
    assert raised.value.exit == Exit.AUTH
    assert wire.requests == []


def test_the_token_goes_to_the_bound_origins_only(tmp_path: Path, wire: Wire) -> None:
    target = Target("https://submit.example", "https://status.example:8443", "p", "k")
    store = CredentialStore(tmp_path)
    store.put(target.credentials_key, StoredUser.bound_to(target.binding, **entry("t")))
    auth = Auth(target, httpx.Client(transport=httpx.MockTransport(wire.handler)), store)
    assert auth.token_for("https://submit.example/v1/strategies") == "t"
    assert auth.token_for("https://SUBMIT.example:443/v1/uploads") == "t"
    assert auth.token_for("https://status.example:8443/v1/tasks/t1") == "t"
    for url in (
        "https://status.example/v1/tasks/t1",  # another port
        "http://submit.example/v1/strategies",  # another scheme
        "https://storage.example/upload",
        "https://submit.example@evil.example/v1/strategies",
    ):
        with pytest.raises(CliError) as raised:
            auth.token_for(url)
        assert raised.value.exit == Exit.AUTH and "refusing to send the ID token" in str(
            raised.value
        )
    assert wire.requests == []


def test_an_emulator_sign_in_and_a_firebase_one_never_stand_in_for_each_other(
    tmp_path: Path, wire: Wire, cli: Cli
) -> None:
    local = {
        "--submit-url": "http://127.0.0.1:8001",
        "--status-url": "http://127.0.0.1:8003",
        "--project": "demo-x",
    }
    emulator = {"TINKERBELL_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}
    assert cli("login", *flags(local), env=emulator)[0] == Exit.OK
    sent = len(wire.requests)
    # The same URLs, with the real Firebase Auth: the emulator's token is not its.
    code, _, err = cli("status", "t1", *flags(local | {"--api-key": "AIza"}))
    assert code == Exit.AUTH and "not logged in" in err
    assert wire.requests[sent:] == []
    # An emulator's token goes to local URLs only; a Firebase token to no emulator.
    code, _, err = cli("status", "t1", *flags(PROD), env=emulator)
    assert code == Exit.USAGE and "SUBMIT_URL 'https://submit-prod.example' is not a local" in err
    firestore = {"TINKERBELL_FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"}
    code, _, err = cli("status", "t1", *flags(PROD), env=firestore)
    assert code == Exit.USAGE and "never sent to an emulator" in err
    # A Firebase token over https only, unless the URL is on this machine.
    code, _, err = cli("status", "t1", *flags(PROD | {"--status-url": "http://status.example"}))
    assert code == Exit.USAGE and "plain http" in err
    assert wire.requests[sent:] == []


def test_firestore_gets_a_token_of_its_own_kind_only(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    http = httpx.Client(transport=httpx.MockTransport(Wire().handler))

    def auth_for(target: Target) -> Auth:
        store.put(target.credentials_key, StoredUser.bound_to(target.binding, **entry("t")))
        return Auth(target, http, store)

    local = Target("http://127.0.0.1:1", "http://127.0.0.1:2", "demo-x", "k", "127.0.0.1:3")
    with pytest.raises(CliError) as raised:
        auth_for(local).firestore_user()  # would be Firestore itself
    assert "never sent to Firestore itself" in raised.value.message
    assert auth_for(replace(local, firestore_emulator="127.0.0.1:4")).firestore_user()
    deployed = Target("https://s.example", "https://t.example", "p", "k")
    assert auth_for(deployed).firestore_user()
    with pytest.raises(CliError) as raised:
        auth_for(replace(deployed, firestore_emulator="127.0.0.1:4")).firestore_user()
    assert "never sent to an emulator" in raised.value.message


# ---------------------------------------------------------------- an older tinkerbell's entry


def test_an_older_entry_is_not_used_and_login_replaces_it(
    tmp_path: Path, wire: Wire, cli: Cli
) -> None:
    path = write_credentials(tmp_path, {"tinkerbell-prod@firebase": entry("old-token")})
    code, _, err = cli("status", "t1", *flags(PROD))
    assert code == Exit.AUTH and err.count("\n") == 1
    assert "older tinkerbell is not bound to a server" in err and "tinkerbell login" in err
    code, out, _ = cli("config", "show", "--json", *flags(PROD))
    assert code == Exit.OK and json.loads(out)["user"] is None
    assert "older tinkerbell" in json.loads(out)["problem"]
    assert wire.requests == []  # the old refresh token was not even refreshed

    code, _, err = cli("login", *flags(PROD))
    assert code == Exit.OK and "not used, and replaced" in err
    (signed_up,) = wire.requests  # a new sign-in, not a refresh of the old one
    assert signed_up.url.path.endswith("/accounts:signUp")
    users = json.loads(path.read_text())["users"]
    assert list(users) == [
        "tinkerbell-prod@firebase for https://submit-prod.example:443 "
        "https://status-prod.example:443"
    ]
    assert cli("status", "t1", *flags(PROD))[0] == Exit.OK
    assert "old-token" not in {token for _, token in wire.bearers()}


def test_logout_forgets_the_older_entry_too(tmp_path: Path, cli: Cli) -> None:
    path = write_credentials(tmp_path, {"tinkerbell-prod@firebase": entry("old-token")})
    code, out, _ = cli("logout", "--json", *flags(PROD))
    assert code == Exit.OK and json.loads(out)["removed"]
    assert not path.exists()
