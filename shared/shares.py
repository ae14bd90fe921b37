"""Read-only links to a finished strategy (issue 19, SPEC §2.7).

A share is ``shares/{share_id}`` in Firestore: an unguessable id (192 random bits), the
task, its owner and an expiry the owner picks (at most a year; a TTL policy deletes
it after). Anyone with the id reads the strategy through ``task_status``, never
through Firestore (its rules stay owner-only), and sees only what ``SharedStrategy``
holds. Revoked, expired or never made: the same 404. Lookups are counted per client
address and minute, so that a scraper cannot walk the id space or hammer one link.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import clients, quotas, tasks
from shared.errors import FailedPrecondition, NotFound, RateLimited
from shared.models import (
    ImageRef,
    Share,
    SharedStrategy,
    ShareList,
    ShareRequest,
    TaskRecord,
    TaskStatus,
)
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference

SHARE_ID_BYTES = 24
NOT_SHARED = "no such shared strategy (the link may have expired or been revoked)"


def _collection() -> CollectionReference:
    return clients.firestore().collection(get_settings().shares_collection)


def share_url(share_id: str) -> str:
    """The web app's page for a share (SHARE_BASE_URL, else the first CORS origin)."""
    settings = get_settings()
    base = settings.share_base_url or next(iter(sorted(settings.allowed_origins)), "")
    return f"{base.rstrip('/')}/s/{share_id}"


def _share(share_id: str, data: dict[str, Any]) -> Share:
    return Share(
        share_id=share_id,
        task_id=data["task_id"],
        url=share_url(share_id),
        created_at=data["created_at"],
        expires_at=data["expires_at"],
    )


def create_share(task_id: str, *, uid: str, request: ShareRequest) -> Share:
    """A new link to the owner's COMPLETED task."""
    task = tasks.get_owned_task(task_id, uid=uid)
    if task.status is not TaskStatus.COMPLETED or task.result is None:
        raise FailedPrecondition("only a COMPLETED task can be shared")
    share_id = secrets.token_urlsafe(SHARE_ID_BYTES)
    now = datetime.now(UTC)
    data = {
        "task_id": task_id,
        "uid": uid,
        "created_at": now,
        "expires_at": now + timedelta(days=request.expires_in_days),
    }
    _collection().document(share_id).create(data)
    return _share(share_id, data)


def list_shares(task_id: str, *, uid: str) -> ShareList:
    """The owner's live links to one task, newest first."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    tasks.get_owned_task(task_id, uid=uid)
    query = (
        _collection()
        .where(filter=FieldFilter("task_id", "==", task_id))
        .where(filter=FieldFilter("uid", "==", uid))
    )
    now = datetime.now(UTC)
    found = [_share(snap.id, snap.to_dict() or {}) for snap in query.stream()]
    live = [share for share in found if share.expires_at > now]
    return ShareList(shares=sorted(live, key=lambda share: share.created_at, reverse=True))


def revoke_share(share_id: str, *, uid: str) -> None:
    """Delete the owner's link at once; someone else's is as unknown as a missing one."""
    ref = _collection().document(share_id)
    snapshot = ref.get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("uid") != uid:
        raise NotFound(NOT_SHARED)
    ref.delete()


def shared_task(share_id: str, *, client: str) -> tuple[TaskRecord, datetime]:
    """The task behind a live link, counted against ``client``'s lookups; 404 for a
    revoked, expired or unknown one, or one whose task is gone."""
    _count_lookup(client)
    snapshot = _collection().document(share_id).get()
    data = snapshot.to_dict() if snapshot.exists else None
    if data is None or data["expires_at"] <= datetime.now(UTC):
        raise NotFound(NOT_SHARED)
    task = tasks.get_task(data["task_id"])
    if task is None or task.uid != data.get("uid") or task.result is None:
        raise NotFound(NOT_SHARED)
    return task, data["expires_at"]


def public_view(share_id: str, *, client: str, image_path: str) -> SharedStrategy:
    """What the link shows: the strategy, its sources and preview, nothing private."""
    task, expires_at = shared_task(share_id, client=client)
    assert task.result is not None
    return SharedStrategy(
        strategy=task.result.strategy,
        language=task.request.language,
        image_url=image_path if task.result.image is not None else None,
        sources=task.result.sources,
        expires_at=expires_at,
    )


def shared_image(share_id: str, *, client: str) -> ImageRef:
    task, _ = shared_task(share_id, client=client)
    assert task.result is not None
    if task.result.image is None:
        raise NotFound("this shared strategy has no preview image")
    return task.result.image


def delete_shares(*, uid: str, task_id: str | None = None) -> int:
    """Delete a user's links (to one task, or all of them): erasure (shared/erasure.py)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = _collection().where(filter=FieldFilter("uid", "==", uid))
    if task_id is not None:
        query = query.where(filter=FieldFilter("task_id", "==", task_id))
    deleted = 0
    for snapshot in query.stream():
        snapshot.reference.delete()
        deleted += 1
    return deleted


def _count_lookup(client: str) -> None:
    """One lookup more for this client this minute (a counter in the quota collection,
    keyed by a hash of the address); past SHARE_LOOKUPS_PER_CLIENT_PER_MINUTE: 429."""
    cap = get_settings().share_lookups_per_client_per_minute
    if not cap:
        return
    now = datetime.now(UTC)
    minute, retry_after, expires = quotas.minute_window(now)
    key = hashlib.sha256(client.encode()).hexdigest()[:32]
    counter = quotas.Counter(
        f"share-lookups-{key}-m{minute}",
        cap,
        f"at most {cap} shared-strategy lookups a minute from one address",
        retry_after,
        expires,
    )
    batch = clients.firestore().batch()
    batch.set(counter.ref, counter.change(+1), merge=True)
    # The commit's transform result is the new count: one write, no read.
    (result,) = batch.commit()
    if int(result.transform_results[0].integer_value) > cap:
        raise RateLimited(counter.refusal, retry_after_s=retry_after)
