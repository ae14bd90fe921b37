"""Firebase App Check for tests, with no network: a local RSA key whose key set a tiny
server on 127.0.0.1 serves (as ``https://firebaseappcheck.googleapis.com/v1/jwks``
would), and tokens signed by it as App Check signs them; and a ``submit_strategy``
process of a running stack's environment with App Check enforced against that key set.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from tests.local_servers import serving, stack_submit

ISSUER_PREFIX = "https://firebaseappcheck.googleapis.com/"
PROJECT_NUMBER = "123456789012"
APP_ID = f"1:{PROJECT_NUMBER}:web:0123456789abcdef"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SigningKey:
    """One RSA key pair, as one entry of a JSON Web Key Set."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }


class KeySetServer:
    """Serves ``{"keys": [...]}`` on 127.0.0.1; ``status`` != 200 answers that error
    instead, ``body`` (bytes) replaces the answer; ``fetches`` counts the requests."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.status = 200
        self.body: bytes | None = None
        self.fetches = 0
        self._serving = serving(self._app)
        self._base = ""

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        self.fetches += 1
        body = self.body
        if body is None:
            body = json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()
        if self.status != 200:
            body = b'{"error": "unavailable"}'
        return Response(body, self.status, content_type="application/json")

    @property
    def url(self) -> str:
        return f"{self._base}/v1/jwks"

    def __enter__(self) -> KeySetServer:
        self._base = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(None, None, None)


def app_check_token(
    key: SigningKey,
    *,
    project_number: str = PROJECT_NUMBER,
    app_id: str = APP_ID,
    ttl_s: float = 3600,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A token as App Check issues it for ``project_number``; ``claims`` override any
    claim (``iss``, ``aud``...; None drops one), ``header`` adds to the JWT header."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": f"{ISSUER_PREFIX}{project_number}",
        "aud": [f"projects/{project_number}", "projects/some-project-id"],
        "sub": app_id,
        "iat": now,
        "exp": now + int(ttl_s),
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(
        payload,
        key.private,
        algorithm="RS256",
        headers={"kid": key.kid, "typ": "JWT", **(header or {})},
    )


def new_jti() -> str:
    """A ``jti`` as App Check gives a limited-use token: random, 16 to 500 bytes."""
    return secrets.token_urlsafe(32)


def limited_use_token(key: SigningKey, *, jti: str | None = None, **options: Any) -> str:
    """A limited-use token (``getLimitedUseToken``, ``limitedUse`` exchanges): one with a
    ``jti``, a new one unless given; ``options`` as for :func:`app_check_token`."""
    return app_check_token(key, jti=jti or new_jti(), **options)


@contextlib.contextmanager
def enforced_submit(
    state_file: Path, run_dir: Path, key_set_url: str, project_number: str = PROJECT_NUMBER
) -> Iterator[str]:
    """A ``submit_strategy`` process of its own, with the environment of the stack's
    submit function (its emulators, topic, CORS origins) and App Check enforced against
    ``key_set_url``; yields its base URL. The stack itself does not enforce App Check."""
    overrides = {
        "APP_CHECK_ENFORCED": "true",
        "APP_CHECK_PROJECT_NUMBER": project_number,
        "APP_CHECK_JWKS_URL": key_set_url,
    }
    with stack_submit(state_file, run_dir, overrides) as url:
        yield url
