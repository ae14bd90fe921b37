"""Signing in to Firebase Auth over its REST API, and keeping the user signed in.

``tinkerbell login`` signs up an anonymous user (``accounts:signUp``) or signs in
with email and password (``accounts:signInWithPassword``) through the Identity
Toolkit API, against the real service or the Auth emulator. The refresh token is
kept in ``credentials.json`` in the config directory (mode 0600), and ID tokens are
refreshed through the Secure Token API a few minutes before they expire.

A kept sign-in is bound to where it was made (``cli.config.Binding``): the project,
the Auth endpoint it came from, and the SUBMIT and STATUS origins (scheme://host:port)
of the target it was made for. It is one entry per binding, used only by a target
with exactly that binding: its ID token goes to those two origins only (``token_for``;
and to the Firestore that matches its Auth service, ``firestore_user``), its refresh
token to its own Auth endpoint only. Another server is another sign-in, never this
one's token. An entry of an older tinkerbell (keyed by project and Auth service, with
no origins) is never used: the user signs in again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from cli.config import LOCAL_HOSTS, Binding, Target, is_local_host, url_origin, write_private
from cli.errors import CliError, Exit
from cli.transport import send

CREDENTIALS_FILE = "credentials.json"
REFRESH_MARGIN_S = 300.0  # refresh an ID token this long before it expires
LOGIN_HINT = "run `tinkerbell login`"

# Identity Toolkit / Secure Token error codes, in words.
AUTH_ERRORS = {
    "EMAIL_NOT_FOUND": "no account with this email (add --create to make one)",
    "INVALID_PASSWORD": "wrong password",
    "INVALID_LOGIN_CREDENTIALS": "wrong email or password",
    "USER_DISABLED": "this account is disabled",
    "EMAIL_EXISTS": "an account with this email exists already (leave out --create)",
    "WEAK_PASSWORD": "the password is too weak (at least 6 characters)",
    "INVALID_EMAIL": "not a valid email address",
    "OPERATION_NOT_ALLOWED": "this sign-in method is not enabled for the project",
    "ADMIN_ONLY_OPERATION": "anonymous sign-in is not enabled for the project",
    "TOKEN_EXPIRED": f"the sign-in has expired: {LOGIN_HINT}",
    "INVALID_REFRESH_TOKEN": f"the sign-in is no longer valid: {LOGIN_HINT}",
    "USER_NOT_FOUND": f"the signed-in user no longer exists: {LOGIN_HINT}",
    "INVALID_GRANT_TYPE": "the Secure Token API refused the request",
    "MISSING_REFRESH_TOKEN": f"no refresh token: {LOGIN_HINT}",
    "PROJECT_NUMBER_MISMATCH": "the API key belongs to another project",
}


@dataclass
class StoredUser:
    """One signed-in user, as kept in credentials.json."""

    uid: str
    refresh_token: str
    id_token: str
    expires_at: float  # epoch seconds when id_token expires
    email: str | None = None
    anonymous: bool = True
    # What it is for (cli.config.Binding); None in an older tinkerbell's entry.
    project: str | None = None
    auth_endpoint: str | None = None
    submit_origin: str | None = None
    status_origin: str | None = None

    @classmethod
    def bound_to(cls, binding: Binding, **fields: Any) -> StoredUser:
        return cls(
            **fields,
            project=binding.project,
            auth_endpoint=binding.auth_endpoint,
            submit_origin=binding.submit_origin,
            status_origin=binding.status_origin,
        )

    @property
    def binding(self) -> Binding | None:
        """What this sign-in is for; None when it does not say (never used then)."""
        project, auth, submit, status = (
            self.project,
            self.auth_endpoint,
            self.submit_origin,
            self.status_origin,
        )
        if not (project and auth and submit and status):
            return None
        return Binding(project, auth, submit, status)

    def needs_refresh(self, now: float, margin_s: float = REFRESH_MARGIN_S) -> bool:
        return now >= self.expires_at - margin_s

    def describe(self) -> str:
        return f"{self.email} ({self.uid})" if self.email else f"anonymous user {self.uid}"

    def public(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "email": self.email,
            "anonymous": self.anonymous,
            "origins": list(self.binding.origins) if self.binding else None,
        }


class CredentialStore:
    """credentials.json: ``{"users": {Target.credentials_key: StoredUser}}``, mode 0600."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CREDENTIALS_FILE

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise CliError(f"cannot read {self.path}: {error}", Exit.AUTH) from None
        users = data.get("users") if isinstance(data, dict) else None
        return users if isinstance(users, dict) else {}

    def get(self, key: str) -> StoredUser | None:
        entry = self._load().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return StoredUser(**entry)
        except TypeError:
            return None

    def put(self, key: str, user: StoredUser, *, replacing: tuple[str, ...] = ()) -> None:
        """Keep ``user`` as ``key``, dropping the entries ``replacing`` names."""
        users = {k: v for k, v in self._load().items() if k not in replacing}
        users[key] = asdict(user)
        write_private(self.path, json.dumps({"users": users}, indent=2) + "\n")

    def remove(self, *keys: str) -> bool:
        users = self._load()
        if not any(key in users for key in keys):
            return False
        for key in keys:
            users.pop(key, None)
        if users:
            write_private(self.path, json.dumps({"users": users}, indent=2) + "\n")
        else:
            self.path.unlink(missing_ok=True)
        return True

    def remove_all(self) -> bool:
        existed = self.path.exists()
        self.path.unlink(missing_ok=True)
        return existed


def auth_error(answer: httpx.Response, action: str) -> CliError:
    """The Identity Toolkit's ``{"error": {"message": "EMAIL_NOT_FOUND : ..."}}`` in words."""
    try:
        raw = str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        raw = answer.text[:200] or answer.reason_phrase
    code = raw.split(":")[0].strip().split(" ")[0]
    words = AUTH_ERRORS.get(code, raw)
    if answer.status_code >= 500:
        return CliError(f"{action}: the Auth service answered {answer.status_code}", Exit.NETWORK)
    return CliError(f"{action}: {words}", Exit.AUTH, code=code.lower() or "unauthenticated")


class Auth:
    """The signed-in user of one target, with ID tokens refreshed as needed."""

    def __init__(
        self,
        target: Target,
        http: httpx.Client,
        store: CredentialStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.http = http
        self.store = store
        self.clock = clock
        self._hint = " (is the local stack up? `make up`)" if target.local else ""

    # -- signing in ----------------------------------------------------------------------

    def sign_up_anonymous(self) -> StoredUser:
        body = self._identity("accounts:signUp", {"returnSecureToken": True}, "anonymous sign-up")
        return self._keep(body, email=None)

    def sign_in_email(self, email: str, password: str, *, create: bool = False) -> StoredUser:
        method = "accounts:signUp" if create else "accounts:signInWithPassword"
        payload = {"email": email, "password": password, "returnSecureToken": True}
        body = self._identity(method, payload, "sign-up" if create else "sign-in")
        return self._keep(body, email=email)

    def _identity(self, method: str, payload: dict[str, Any], action: str) -> dict[str, Any]:
        answer = send(
            self.http,
            "POST",
            f"{self.target.identity_toolkit}/{method}",
            params={"key": self.target.api_key},
            json=payload,
            hint=self._hint,
        )
        if answer.status_code != 200:
            raise auth_error(answer, action)
        body: dict[str, Any] = answer.json()
        return body

    def _keep(self, body: dict[str, Any], *, email: str | None) -> StoredUser:
        user = StoredUser.bound_to(
            self.target.binding,
            uid=str(body["localId"]),
            refresh_token=str(body["refreshToken"]),
            id_token=str(body["idToken"]),
            expires_at=self.clock() + float(body.get("expiresIn") or 3600),
            email=email,
            anonymous=email is None,
        )
        # An older tinkerbell's unbound entry for this project is replaced, not kept.
        legacy = self._legacy_key()
        self.store.put(self.target.credentials_key, user, replacing=(legacy,) if legacy else ())
        return user

    def logout(self) -> StoredUser | None:
        user = self.current() or self.legacy()
        self.store.remove(self.target.credentials_key, *filter(None, [self._legacy_key()]))
        return user

    # -- tokens --------------------------------------------------------------------------

    def current(self) -> StoredUser | None:
        """The sign-in kept for this target: made at its Auth endpoint for its two origins
        (an entry that says otherwise is not this target's, whatever its key)."""
        user = self.store.get(self.target.credentials_key)
        if user is None or user.binding != self.target.binding:
            return None
        return user

    def _legacy_key(self) -> str | None:
        legacy = self.target.legacy_credentials_key
        user = self.store.get(legacy)
        return legacy if user is not None and user.binding is None else None

    def legacy(self) -> StoredUser | None:
        """An older tinkerbell's sign-in for this project and Auth service: bound to no
        server, so never used (only named, so that the user knows to sign in again)."""
        key = self._legacy_key()
        return self.store.get(key) if key else None

    def user(self) -> StoredUser:
        """The signed-in user with a valid ID token (refreshed first when needed)."""
        user = self.current()
        if user is None:
            binding = self.target.binding
            where = f"{self.target.project} at {binding.submit_origin}"
            if binding.status_origin != binding.submit_origin:
                where += f" and {binding.status_origin}"
            if self.legacy() is not None:
                raise CliError(
                    f"the sign-in kept for {self.target.project} by an older tinkerbell is not "
                    f"bound to a server, so it is not used: {LOGIN_HINT} again for {where}",
                    Exit.AUTH,
                )
            raise CliError(f"not logged in to {where}: {LOGIN_HINT}", Exit.AUTH)
        if user.needs_refresh(self.clock()):
            user = self.refresh(user)
        return user

    def id_token(self, *, force_refresh: bool = False) -> str:
        user = self.user()
        if force_refresh:
            user = self.refresh(user)
        return user.id_token

    def token_for(self, url: str, *, force_refresh: bool = False) -> str:
        """The ID token to send to ``url``: only to an origin the sign-in was made for."""
        user = self.user()
        origins = user.binding.origins if user.binding else ()
        origin = url_origin(url)
        if not origin or origin not in origins:
            raise CliError(
                f"refusing to send the ID token to {origin or url[:200]!r}: this sign-in is "
                f"for {' and '.join(dict.fromkeys(origins)) or 'no server'} only",
                Exit.AUTH,
            )
        if force_refresh:
            user = self.refresh(user)
        return user.id_token

    def firestore_user(self) -> StoredUser:
        """The user whose ID token the Firestore client may carry: an Auth emulator's
        token to a local Firestore emulator only, a Firebase token to Firestore only."""
        user = self.user()
        emulator = self.target.firestore_emulator
        emulated = user.binding is not None and user.binding.emulated
        if emulated and not emulator:
            raise CliError(
                "this sign-in comes from the Auth emulator and no FIRESTORE_EMULATOR_HOST is "
                "set: an emulator's ID token is never sent to Firestore itself",
                Exit.USAGE,
            )
        if emulator and not emulated:
            raise CliError(
                f"FIRESTORE_EMULATOR_HOST {emulator!r} is set for a Firebase sign-in: a "
                "Firebase ID token is never sent to an emulator",
                Exit.USAGE,
            )
        if emulator and not is_local_host(emulator):
            raise CliError(
                f"FIRESTORE_EMULATOR_HOST {emulator!r} is not local ({LOCAL_HOSTS}): the "
                "ID token is not sent to it",
                Exit.USAGE,
            )
        return user

    def refresh(self, user: StoredUser) -> StoredUser:
        """A new ID token for the stored refresh token (Secure Token API), which goes
        only to the Auth endpoint the sign-in came from."""
        if user.binding is None or user.binding != self.target.binding:
            raise CliError(
                f"this sign-in is not for {self.target.origin or self.target.project}: "
                f"{LOGIN_HINT}",
                Exit.AUTH,
            )
        answer = send(
            self.http,
            "POST",
            f"{self.target.secure_token}/token",
            params={"key": self.target.api_key},
            data={"grant_type": "refresh_token", "refresh_token": user.refresh_token},
            hint=self._hint,
        )
        if answer.status_code != 200:
            raise auth_error(answer, "refreshing the sign-in")
        body = answer.json()
        fresh = replace(
            user,
            uid=str(body.get("user_id") or user.uid),
            refresh_token=str(body.get("refresh_token") or user.refresh_token),
            id_token=str(body["id_token"]),
            expires_at=self.clock() + float(body.get("expires_in") or 3600),
        )
        self.store.put(self.target.credentials_key, fresh)
        return fresh
