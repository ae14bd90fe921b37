"""Firebase ID token verification (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import threading
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


def verify_user(authorization: str | None) -> str:
    """The uid of the signed-in user, or ``Unauthenticated``."""
    token = bearer_token(authorization)
    from firebase_admin import auth

    try:
        claims = auth.verify_id_token(token, app=_firebase_app())
    except auth.CertificateFetchError as exc:
        raise Unavailable("could not verify the token now; try again") from exc
    except (ValueError, auth.InvalidIdTokenError) as exc:
        raise Unauthenticated("the ID token is invalid or expired") from exc
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("the ID token names no user")
    return uid
