"""Caps on what the accept path lets in, per user and for the whole project.

Each cap is a counter document in ``quota_counters``: tasks created in the current
minute (one document per user or project and minute, deleted by a TTL policy) and
tasks in flight (PENDING or PROCESSING). A new task and the increments of its
counters go in one commit, and the commit's transform results are the new counts:
no read before, no check-then-act, so N parallel requests get N distinct counts
and exactly the cap gets in. A request over a cap undoes its commit (the task and
the increments) and answers 429. Every turn of a task to a terminal status takes
it out of the in-flight counters, in the transaction that makes that turn.

The project-wide caps bound what Gemini costs when many users (or a script minting
anonymous users) submit at once. A minute's counter is written once per
submission, so at caps of a few hundred a minute the documents stay well under
Firestore's sustained write rate for one document.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared import clients
from shared.errors import RateLimited
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

WINDOW_S = 60
IN_FLIGHT_RETRY_AFTER_S = 15
# Minute counters outlive their minute a little, then the TTL policy deletes them.
COUNTER_EXPIRY = timedelta(hours=1)


@dataclass(frozen=True)
class Counter:
    """One counter a new task counts in, and the cap on it (0: counted, not capped)."""

    doc_id: str
    cap: int
    refusal: str
    retry_after_s: int
    expires_at: datetime | None = None

    @property
    def ref(self) -> DocumentReference:
        collection = get_settings().quota_collection
        return clients.firestore().collection(collection).document(self.doc_id)


def user_key(uid: str) -> str:
    """Counter ids do not carry the uid itself (any characters, any length)."""
    return hashlib.sha256(uid.encode()).hexdigest()[:32]


def counters_for_new_task(uid: str, now: datetime) -> list[Counter]:
    settings = get_settings()
    minute = math.floor(now.timestamp() / WINDOW_S)
    window_end = datetime.fromtimestamp((minute + 1) * WINDOW_S, now.tzinfo)
    retry_after = max(1, math.ceil((window_end - now).total_seconds()))
    expires = window_end + COUNTER_EXPIRY
    user = user_key(uid)
    return [
        Counter(
            f"user-{user}-m{minute}",
            settings.max_tasks_per_user_per_minute,
            f"at most {settings.max_tasks_per_user_per_minute} tasks a minute per user",
            retry_after,
            expires,
        ),
        Counter(
            f"project-m{minute}",
            settings.max_tasks_per_minute,
            "the service takes at most "
            f"{settings.max_tasks_per_minute} tasks a minute; try again shortly",
            retry_after,
            expires,
        ),
        *in_flight_counters(uid),
    ]


def in_flight_counters(uid: str) -> list[Counter]:
    settings = get_settings()
    return [
        Counter(
            f"user-{user_key(uid)}-in-flight",
            settings.max_tasks_in_flight_per_user,
            f"at most {settings.max_tasks_in_flight_per_user} unfinished tasks per user",
            IN_FLIGHT_RETRY_AFTER_S,
        ),
        Counter(
            "project-in-flight",
            settings.max_tasks_in_flight,
            f"the service works on at most {settings.max_tasks_in_flight} tasks at once; "
            "try again shortly",
            IN_FLIGHT_RETRY_AFTER_S,
        ),
    ]


def refusal(counters: list[Counter], counts: list[int]) -> RateLimited | None:
    """The 429 for the first cap the new counts exceed, or None."""
    for counter, count in zip(counters, counts, strict=True):
        if counter.cap and count > counter.cap:
            return RateLimited(counter.refusal, retry_after_s=counter.retry_after_s)
    return None
