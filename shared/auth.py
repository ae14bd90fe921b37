"""Firebase ID token verification (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.errors import Unauthenticated, Unavailable
from shared.settings import get_settings

_app_lock = threading.Lock()
_app: Any = None


def _firebase_app() -> Any:
    global _app
    with _app_lock:
        if _app is None:
            import firebase_admin

            project = get_settings().google_cloud_project
            # Only the project id is needed to verify tokens: no key file.
            _app = firebase_admin.initialize_app(options={"projectId": project}, name="tinkerbell")
    return _app


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a Firebase ID token is required: Authorization: Bearer <token>")
    return token.strip()


# Tokens whose revocation was checked lately (sha256 -> monotonic time of the next
# check): a revoked or disabled user is refused within TOKEN_REVOCATION_RECHECK_S,
# without a call to the Auth API on every request.
_revocation_checked: dict[str, float] = {}
_REVOCATION_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Caller:
    uid: str
    # Signed in anonymously (anyone can mint such a user with the public web key).
    anonymous: bool


def verify_user(authorization: str | None) -> str:
    """The uid of the signed-in user, or ``Unauthenticated`` (also for a token that
    was revoked or whose user is disabled or deleted)."""
    return verify_caller(authorization).uid


def verify_caller(authorization: str | None) -> Caller:
    """The signed-in user (see ``verify_user``) and how they signed in."""
    token = bearer_token(authorization)
    from firebase_admin import auth
    from firebase_admin.exceptions import FirebaseError

    key = hashlib.sha256(token.encode()).hexdigest()
    check_revoked = _revocation_checked.get(key, 0.0) <= time.monotonic()
    try:
        claims = auth.verify_id_token(token, app=_firebase_app(), check_revoked=check_revoked)
    except auth.CertificateFetchError as exc:
        raise Unavailable("could not verify the token now; try again") from exc
    except (auth.RevokedIdTokenError, auth.UserDisabledError) as exc:
        raise Unauthenticated("the ID token was revoked or the user is disabled") from exc
    except auth.UserNotFoundError as exc:
        raise Unauthenticated("the ID token's user no longer exists") from exc
    except (ValueError, auth.InvalidIdTokenError) as exc:
        raise Unauthenticated("the ID token is invalid or expired") from exc
    except FirebaseError as exc:
        # The Auth API could not be asked about revocation (outage, permission).
        raise Unavailable("could not verify the token now; try again") from exc
    if check_revoked:
        if len(_revocation_checked) >= _REVOCATION_CACHE_SIZE:
            _revocation_checked.clear()
        _revocation_checked[key] = time.monotonic() + get_settings().token_revocation_recheck_s
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("the ID token names no user")
    firebase = claims.get("firebase")
    provider = firebase.get("sign_in_provider") if isinstance(firebase, dict) else None
    return Caller(uid=uid, anonymous=provider == "anonymous")


def delete_user(uid: str) -> bool:
    """Delete the Firebase Auth user (DELETE /v1/me, last): True if it existed. Its ID
    tokens are refused from then on, within TOKEN_REVOCATION_RECHECK_S."""
    from firebase_admin import auth

    try:
        auth.delete_user(uid, app=_firebase_app())
    except auth.UserNotFoundError:
        return False
    _revocation_checked.clear()  # this instance asks again at once (tokens are not by uid)
    return True
