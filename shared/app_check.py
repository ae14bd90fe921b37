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

Replay protection (issue 18): an ordinary App Check token lives about an hour and
serves any number of requests, so whoever copies one out of a browser can replay it
from a script until it expires. For the one expensive request, a submit (POST
/v1/strategies, which spends Gemini), the clients therefore send a *limited-use*
token, fresh for that request (the web SDK's ``getLimitedUseToken``, the CLI's
``exchangeDebugToken`` with ``limitedUse``), which carries a ``jti``, and the function
consumes it: with ``APP_CHECK_CONSUME_SUBMITS`` (on by default; it matters only when
App Check is enforced) a submit's token must have a ``jti`` ("send a limited-use App
Check token" otherwise), is verified as above, and after the ID token (a refused ID
token leaves the App Check token unspent, so the client's retry with a fresh ID token
still works) and before anything else is written, :func:`consume` records it with an
atomic ``create`` of ``{APP_CHECK_TOKENS_COLLECTION}/{sha256(jti)}``. The second use
of the token finds the document: 401 "the App Check token was already used", with
nothing written. The document's ``expires_at`` is the token's ``exp``: a Firestore TTL
policy deletes it after that, when the token is refused as expired anyway (no leeway
on ``exp``), so the record never goes before the token could be used again. Cost: one
Firestore write per submit. Status reads and upload sessions keep the ordinary cached
token (they spend nothing the ID token's caps do not bound already).

Why a local record rather than App Check's own consume: Firebase offers one, the REST
method ``POST https://firebaseappcheck.googleapis.com/v1beta/projects/{project}:
verifyAppCheckToken`` with ``{"app_check_token": ...}``, answering ``alreadyConsumed``
(Node's ``verifyToken(token, {consume: true})`` and firebase-admin for Python's
``app_check.verify_token(token, consume=True)`` call it). It is a v1beta method, needs
the *Firebase App Check Token Verifier* role for the functions' service account, and
is a network round trip to Google on every submit; the local stack and the tests
(which sign their own tokens, tests/app_check_keys.py) could not reach it at all. The
Firestore record gives the same guarantee for this service's own endpoint (App Check,
too, counts a token as used only when that method has seen it, so either way a token
is spent only by this check), in the database every submit writes to anyway.
docs/deploy.md ("App Check") says how a deployment could switch to the REST method.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from google.api_core.exceptions import AlreadyExists, GoogleAPICallError, RetryError

from shared import clients
from shared.errors import Unauthenticated, Unavailable
from shared.settings import Settings, get_settings

HEADER = "X-Firebase-AppCheck"
ISSUER_PREFIX = "https://firebaseappcheck.googleapis.com/"
ALGORITHM = "RS256"
MISSING = f"an App Check token is required ({HEADER} header)"
INVALID = "the App Check token is invalid or expired"
UNAVAILABLE = "could not verify the App Check token now; try again"
NOT_LIMITED_USE = (
    "send a limited-use App Check token with a submit (one per request: the web SDK's "
    "getLimitedUseToken, exchangeDebugToken with limitedUse)"
)
ALREADY_USED = "the App Check token was already used; send a fresh limited-use token"

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


@dataclass(frozen=True)
class AppCheckToken:
    """A verified App Check token: its app, its ``jti`` (None: not a limited-use
    token) and when it expires."""

    app_id: str
    jti: str | None
    expires_at: datetime


def verify_app_check(header: str | None) -> str | None:
    """The id of the app the request's App Check token was issued to, or None when App
    Check is not enforced (the header is then ignored). ``Unauthenticated`` for a
    missing or invalid token; ``Unavailable`` when the key set cannot be fetched."""
    token = _verified(header, get_settings())
    return token.app_id if token is not None else None


def verify_limited_use(header: str | None) -> AppCheckToken | None:
    """For a submit: the request's App Check token, verified, when it is to be consumed
    (App Check enforced and ``APP_CHECK_CONSUME_SUBMITS``; pass it to :func:`consume`
    after the ID token is checked), else None (the token, if enforced, checked as by
    :func:`verify_app_check`). A token without a ``jti`` is refused (401): it is not a
    limited-use token."""
    settings = get_settings()
    token = _verified(header, settings)
    if token is None or not settings.app_check_consume_submits:
        return None
    if token.jti is None:
        raise Unauthenticated(NOT_LIMITED_USE)
    return token


def consume(token: AppCheckToken | None) -> None:
    """Spend a limited-use token (from :func:`verify_limited_use`; None: nothing to do):
    create its document, or 401 when it exists, i.e. the token was used before. Only
    the hash of the ``jti`` names the document; ``expires_at`` (the token's ``exp``) is
    the TTL policy's field. A Firestore failure is 503 (the client retries with a
    fresh token: the create may have happened)."""
    if token is None or token.jti is None:
        return
    settings = get_settings()
    doc_id = hashlib.sha256(token.jti.encode()).hexdigest()
    ref = clients.firestore().collection(settings.app_check_tokens_collection).document(doc_id)
    try:
        ref.create(
            {
                "app_id": token.app_id,
                "consumed_at": datetime.now(UTC),
                "expires_at": token.expires_at,
            }
        )
    except AlreadyExists:
        raise Unauthenticated(ALREADY_USED) from None
    except (GoogleAPICallError, RetryError) as exc:
        raise Unavailable(UNAVAILABLE) from exc


def _verified(header: str | None, settings: Settings) -> AppCheckToken | None:
    if not settings.app_check_enforced:
        return None
    token = (header or "").strip()
    if not token:
        raise Unauthenticated(MISSING)
    return _verify_claims(token, settings)


def verify_token(token: str, settings: Settings) -> str:
    """The ``sub`` (app id) of a valid App Check token of this project."""
    return _verify_claims(token, settings).app_id


def _verify_claims(token: str, settings: Settings) -> AppCheckToken:
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
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise Unauthenticated(INVALID)
    try:  # PyJWT has checked that int() takes it and that it is in the future
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unauthenticated(INVALID) from None  # past the year 9999
    return AppCheckToken(app_id=app_id, jti=jti or None, expires_at=expires_at)


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
