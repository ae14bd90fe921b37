"""Each user's webhook signing secret, and the Standard Webhooks signature (issue 19).

A secret is ``whsec_`` + base64 of SECRET_BYTES random bytes, kept in
``webhook_secrets/{uid}`` (Firestore rules let no client read it: only the owner, through
POST /v1/webhooks/secret). It is made on first need (the user's first request for it, or
the first event to sign) and stays the same until rotated. The signature is the Standard
Webhooks one: ``v1,`` + base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` keyed with the
secret's decoded bytes (docs/webhooks.md verifies it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared import clients
from shared.models import WebhookSecret
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of one POST."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _ref(uid: str) -> DocumentReference:
    return clients.firestore().collection(get_settings().webhook_secrets_collection).document(uid)


def get_or_create(uid: str) -> WebhookSecret:
    """The user's secret, made now if they have none; two first calls at once agree."""
    from google.api_core.exceptions import AlreadyExists

    ref = _ref(uid)
    snapshot = ref.get()
    if snapshot.exists:
        return WebhookSecret.model_validate(snapshot.to_dict())
    made = WebhookSecret(secret=new_secret(), created_at=datetime.now(UTC))
    try:
        ref.create(made.model_dump())
    except AlreadyExists:
        return WebhookSecret.model_validate(ref.get().to_dict())
    return made


def rotate(uid: str) -> WebhookSecret:
    """A new secret: events signed from now on use it; the old one stops verifying."""
    made = WebhookSecret(secret=new_secret(), created_at=datetime.now(UTC))
    _ref(uid).set(made.model_dump())
    return made


def delete(uid: str) -> bool:
    """Forget the user's secret (DELETE /v1/me); True if there was one."""
    ref = _ref(uid)
    existed = ref.get().exists
    ref.delete()
    return existed
