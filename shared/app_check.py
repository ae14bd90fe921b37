"""Firebase App Check on the HTTP functions (SPEC §5): the ``X-Firebase-AppCheck`` header.

With ``APP_CHECK_ENFORCED`` a request must carry a token that one of the project's
registered apps obtained from App Check (the web app through reCAPTCHA Enterprise,
the CLI with a debug token), so that a script minting anonymous users cannot spend
the Gemini budget. Without it the header is ignored.

The token is verified as Firebase documents for custom backends: a JWT whose header
says ``typ`` JWT, ``alg`` RS256 and a ``kid`` of the JSON Web Key Set at
``APP_CHECK_JWKS_URL``, signed by that key; its ``iss`` is
``https://firebaseappcheck.googleapis.com/<PROJECT_NUMBER>``, its ``aud`` names
``projects/<PROJECT_NUMBER>`` (or ``projects/<PROJECT_ID>``), it has not expired and
its ``sub`` is the app's id. The key set is fetched once per process and cached
(``APP_CHECK_JWKS_CACHE_S``); a token with an unknown ``kid`` (a key rotated in since)
refetches it, at most once every 30 s (PyJWT's cooldown), so that made-up kids cannot
make every request fetch.
"""

from __future__ import annotations

import threading

import jwt

from shared.errors import Unauthenticated, Unavailable
from shared.settings import Settings, get_settings

HEADER = "X-Firebase-AppCheck"
ISSUER_PREFIX = "https://firebaseappcheck.googleapis.com/"
ALGORITHM = "RS256"
MISSING = f"an App Check token is required ({HEADER} header)"
INVALID = "the App Check token is invalid or expired"
UNAVAILABLE = "could not verify the App Check token now; try again"

_lock = threading.Lock()
_client: jwt.PyJWKClient | None = None
_client_config: tuple[str, float, float] | None = None


def _jwks_client(settings: Settings) -> jwt.PyJWKClient:
    """One client (and so one cached key set) per process, made when first needed."""
    global _client, _client_config
    config = (
        settings.app_check_jwks_url,
        settings.app_check_jwks_cache_s,
        settings.app_check_jwks_timeout_s,
    )
    with _lock:
        if _client is None or _client_config != config:
            _client = jwt.PyJWKClient(config[0], lifespan=config[1], timeout=config[2])
            _client_config = config
        return _client


def verify_app_check(header: str | None) -> str | None:
    """The id of the app the request's App Check token was issued to, or None when App
    Check is not enforced (the header is then ignored). ``Unauthenticated`` for a
    missing or invalid token; ``Unavailable`` when the key set cannot be fetched."""
    settings = get_settings()
    if not settings.app_check_enforced:
        return None
    token = (header or "").strip()
    if not token:
        raise Unauthenticated(MISSING)
    return verify_token(token, settings)


def verify_token(token: str, settings: Settings) -> str:
    """The ``sub`` (app id) of a valid App Check token of this project."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(INVALID) from None
    kid = header.get("kid")
    if header.get("typ") != "JWT" or header.get("alg") != ALGORITHM:
        raise Unauthenticated(INVALID)
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated(INVALID)
    key = _signing_key(kid, settings)
    number = settings.app_check_project_number
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=[f"projects/{number}", f"projects/{settings.google_cloud_project}"],
            issuer=f"{ISSUER_PREFIX}{number}",
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError:
        raise Unauthenticated(INVALID) from None
    app_id = claims.get("sub")
    # App Check's audience is always a list (PyJWT would also take a string).
    if not isinstance(claims.get("aud"), list) or not isinstance(app_id, str) or not app_id:
        raise Unauthenticated(INVALID)
    return app_id


def _signing_key(kid: str, settings: Settings) -> jwt.PyJWK:
    client = _jwks_client(settings)
    try:
        client.get_signing_keys()  # the cached set, fetched when missing or stale
    except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
        # Unreachable, an error status, not JSON, or no usable key in it.
        raise Unavailable(UNAVAILABLE) from exc
    try:
        return client.get_signing_key(kid)
    except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError) as exc:
        raise Unavailable(UNAVAILABLE) from exc  # the refetch for an unknown kid failed
    except jwt.PyJWKClientError:
        raise Unauthenticated(INVALID) from None  # no key of the set has that kid
