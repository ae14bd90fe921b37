"""Firebase App Check for the command (docs/deploy.md, "App Check").

A deployment that enforces App Check refuses requests without an App Check token.
A command line has no reCAPTCHA to attest it, so an operator registers a *debug
token* for one of the project's apps in the Firebase console (App Check > Apps >
the app's menu > Manage debug tokens) and gives it to the command
(``TINKERBELL_APP_CHECK_TOKEN`` or ``tinkerbell config set APP_CHECK_TOKEN``), with
that app's id (``FIREBASE_APP_ID``, which infra/deploy.sh prints). The command
exchanges the debug token for an App Check token (``exchangeDebugToken``, with the
web API key, as Firebase's own SDKs do), keeps it while it lives, and sends it as
``X-Firebase-AppCheck``. A submit (POST /v1/strategies) instead gets a *limited-use*
token of its own, exchanged for it with ``"limitedUse": true`` and never reused: the
function consumes it (replay protection, shared/app_check.py), so every attempt of a
submit, a retry after a 5xx or a lost answer included, is sent with a fresh one
(:class:`LimitedUseToken`). A value that is already an App Check token (a JWT) is sent
as it is, for submits too (so it passes one submit at most where tokens are consumed).
The debug token is a secret: it never appears in messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from urllib.parse import quote

import httpx

from cli.config import Target
from cli.errors import CliError, Exit
from cli.transport import send

HEADER = "X-Firebase-AppCheck"
APP_CHECK_API = "https://firebaseappcheck.googleapis.com/v1"
REFRESH_MARGIN_S = 300.0  # a token this close to its end is exchanged again
DEFAULT_TTL_S = 3600.0


def looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and value.startswith("eyJ")


def _ttl_seconds(ttl: object) -> float:
    """``"3600s"`` (a protobuf Duration in JSON) as seconds."""
    if isinstance(ttl, str) and ttl.endswith("s"):
        try:
            return max(0.0, float(ttl[:-1]))
        except ValueError:
            pass
    return DEFAULT_TTL_S


class AppCheck:
    """The App Check token to send to the functions, or None when none is configured."""

    def __init__(
        self, target: Target, http: httpx.Client, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.target = target
        self.http = http
        self.clock = clock
        self._token: str | None = None
        self._good_until = 0.0

    def token(self) -> str | None:
        """The session token: exchanged once, kept until shortly before it expires."""
        secret = self.target.app_check_token
        if not secret:
            return None
        if looks_like_jwt(secret):
            return secret
        if self._token is None or self.clock() >= self._good_until:
            self._token, ttl_s = self._exchange(secret, limited_use=False)
            self._good_until = self.clock() + ttl_s - REFRESH_MARGIN_S
        return self._token

    def limited_use_token(self) -> str | None:
        """A limited-use token for one request, exchanged now and never kept."""
        secret = self.target.app_check_token
        if not secret:
            return None
        if looks_like_jwt(secret):
            return secret
        return self._exchange(secret, limited_use=True)[0]

    def _exchange(self, debug_token: str, *, limited_use: bool) -> tuple[str, float]:
        """A token and its lifetime (s) for the debug token."""
        app_id = self.target.app_check_app_id
        if not app_id:
            raise CliError(
                "APP_CHECK_TOKEN is a debug token: FIREBASE_APP_ID must name the app it is "
                "registered for (infra/deploy.sh prints it; TINKERBELL_FIREBASE_APP_ID or "
                "`tinkerbell config set FIREBASE_APP_ID ID`)",
                Exit.USAGE,
            )
        project = quote(self.target.project, safe="")
        url = f"{APP_CHECK_API}/projects/{project}/apps/{quote(app_id, safe='')}:exchangeDebugToken"
        body: dict[str, object] = {"debugToken": debug_token}
        if limited_use:
            body["limitedUse"] = True  # a token with a jti, for replay protection
        answer = send(self.http, "POST", url, params={"key": self.target.api_key}, json=body)
        if answer.status_code != 200:
            try:
                reason = str(answer.json()["error"]["message"])[:200]
            except (ValueError, KeyError, TypeError):
                reason = answer.reason_phrase
            raise CliError(
                f"App Check refused the debug token (HTTP {answer.status_code}: {reason}); "
                f"is it registered for the app {app_id} in the Firebase console (App Check > "
                "Apps > Manage debug tokens)?",
                Exit.AUTH,
                code="app_check",
            )
        try:
            reply = answer.json()
            token = reply["token"]
        except (ValueError, KeyError, TypeError):
            raise CliError("App Check answered without a token", Exit.NETWORK) from None
        if not isinstance(token, str) or not token:
            raise CliError("App Check answered without a token", Exit.NETWORK)
        return token, _ttl_seconds(reply.get("ttl"))


class LimitedUseToken(httpx.Auth):
    """Sets ``X-Firebase-AppCheck`` to a fresh limited-use token on each attempt of a
    request: httpx runs this flow once per ``Client.request``, so the retries of
    cli/transport.py (which resend a request as it was) do not replay a spent token."""

    def __init__(self, app_check: AppCheck) -> None:
        self.app_check = app_check

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.app_check.limited_use_token()
        if token:
            request.headers[HEADER] = token
        yield request
