"""Caps on what the accept path lets in, per user and for the whole project (ADR 0009).

Per user: a counter document in ``quota_counters`` for the tasks created in the current
minute (one per user and minute, deleted by a TTL policy) and one for the tasks in
flight (PENDING or PROCESSING). A new task and the increments of its counters go in
one commit, and the commit's transform results are the new counts: no read before, no
check-then-act, so N parallel requests get N distinct counts and exactly the cap gets
in. A user's documents take that user's writes only.

Project-wide: the same two counts, sharded, so that no document takes more than its
share of the whole project's writes: ``quota_counters/{counter}/quota_shards/s{k}``,
where k is the task's ``counter_shard`` (drawn from its id among QUOTA_SHARDS). The
commit that creates a task increments its shards; then a sum over the shards (one
aggregation query, billed as one read per 1,000 shards) read *at that commit's time*
gives the total of every increment committed up to ours, and no later one. Ordered by
commit time, a task is accepted when at most the cap were counted up to and including
it: the last task accepted counted every accepted one, so never more than the cap get
in, and a burst of N > cap requests admits exactly the cap (the first cap commits).
The only slack: a refused request's increment counts until its undo commits, so a
place freed meanwhile may be refused to one request more.

Refusals that cost nothing (issue 18): an instance that saw a project-wide count refuse
a task remembers it, and refuses the same count from memory, before any write or upload:
a minute's count until its minute ends (the accepted tasks in it never leave it, so it
stays full), the in-flight count and the day budget for PROJECT_FULL_MEMO_S (they fall
when tasks end). A flood on a full service then costs one +1/-1 per instance and memo.

A request over a cap undoes its commit and answers 429. Every turn of a task to a
terminal status takes it out of the in-flight counts, in the write that makes that turn.

Day budgets (ADR 0010) are counters of the same two kinds, in micro-EUR: a task adds
its worst-case cost (``shared.costs``) to its user's day counter and to its shard of
the project's, in the commit that creates it, and is refused when a total passes the
budget (429 budget_exhausted, until UTC midnight). Its end settles the hold: the
counters take back the worst case and add what it really cost, in the write that ends
it, in the day it was reserved in.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from shared import clients
from shared.errors import BudgetExhausted, RateLimited
from shared.models import TaskRecord
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference

WINDOW_S = 60
IN_FLIGHT_RETRY_AFTER_S = 15
# Minute counters outlive their minute a little, then the TTL policy deletes them.
COUNTER_EXPIRY = timedelta(hours=1)
DAY_S = 86_400
# A day's budget counters outlive it: a task reserved late in the day settles there.
BUDGET_COUNTER_EXPIRY = timedelta(days=2)


@dataclass(frozen=True)
class Cap:
    """A count a new task adds to (``amount``: 1, or its reserved micro-EUR for a budget),
    the cap on it (0: counted, not capped) and the 429 past it."""

    key: str
    cap: int
    refusal: str
    retry_after_s: int
    expires_at: datetime | None = None
    amount: int = 1
    error: type[RateLimited] = RateLimited
    resets_at: datetime | None = None
    # A count that only grows until this moment (a minute's): refused once, full till then.
    window_end: datetime | None = None

    def change(self, by: int) -> dict[str, Any]:
        from google.cloud import firestore

        fields: dict[str, Any] = {"count": firestore.Increment(by)}
        if self.expires_at is not None:
            # Also on a decrement: one that lands after the TTL deleted the document
            # makes it again, and it must expire too.
            fields["expires_at"] = self.expires_at
        return fields

    def refuse(self) -> RateLimited:
        return self.error(self.refusal, retry_after_s=self.retry_after_s, resets_at=self.resets_at)


class Counter(Cap):
    """A per-user count: one document, the user's own writes."""

    @property
    def ref(self) -> DocumentReference:
        collection = get_settings().quota_collection
        return clients.firestore().collection(collection).document(self.key)


class ShardedCounter(Cap):
    """A project-wide count kept in shards; the cap is on their total."""

    @property
    def shards(self) -> CollectionReference:
        settings = get_settings()
        parent = clients.firestore().collection(settings.quota_collection).document(self.key)
        return parent.collection(settings.quota_shards_collection)

    def shard_ref(self, shard: int) -> DocumentReference:
        return self.shards.document(f"s{shard}")

    def total(self, at: datetime) -> int:
        """The sum over the shards of every write committed up to ``at`` (a commit time)."""
        (results,) = self.shards.sum("count", alias="total").get(read_time=read_time(at))
        return int(results[0].value or 0)


def read_time(commit_time: datetime) -> datetime:
    """A commit time as a read time: Firestore takes microseconds; rounding up keeps
    the commit in (a nanosecond part, if any, would otherwise drop it)."""
    exact = datetime(
        commit_time.year,
        commit_time.month,
        commit_time.day,
        commit_time.hour,
        commit_time.minute,
        commit_time.second,
        commit_time.microsecond,
        tzinfo=commit_time.tzinfo,
    )
    if getattr(commit_time, "nanosecond", 0) % 1000:
        exact += timedelta(microseconds=1)
    return exact


def user_key(uid: str) -> str:
    """Counter ids do not carry the uid itself (any characters, any length)."""
    return hashlib.sha256(uid.encode()).hexdigest()[:32]


def delete_user_counters(uid: str) -> int:
    """Delete every counter of ``uid`` (DELETE /v1/me): the documents whose id starts with
    ``user-{user_key(uid)}-`` (minutes, in flight, day budgets, upload hours)."""
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.field_path import FieldPath

    collection = clients.firestore().collection(get_settings().quota_collection)
    prefix = f"user-{user_key(uid)}-"
    query = collection.where(
        filter=FieldFilter(FieldPath.document_id(), ">=", collection.document(prefix))
    ).where(filter=FieldFilter(FieldPath.document_id(), "<", collection.document(prefix + "~")))
    deleted = 0
    for snapshot in query.stream():
        snapshot.reference.delete()
        deleted += 1
    return deleted


def shard_of(task_id: str) -> int:
    """The shard a task counts in: spread evenly over QUOTA_SHARDS by its id."""
    digest = hashlib.sha256(task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % get_settings().quota_shards


def minute_window(now: datetime) -> tuple[int, int, datetime]:
    """The minute's number, the seconds left in it, its counters' expiry (for counters
    kept elsewhere: shared/shares.py)."""
    return _minute(now)


def _minute(now: datetime) -> tuple[int, int, datetime]:
    """The minute's number, the seconds left in it (at least 1), its counters' expiry."""
    minute = math.floor(now.timestamp() / WINDOW_S)
    window_end = datetime.fromtimestamp((minute + 1) * WINDOW_S, now.tzinfo)
    retry_after = max(1, math.ceil((window_end - now).total_seconds()))
    return minute, retry_after, window_end + COUNTER_EXPIRY


def user_counters(uid: str, now: datetime) -> list[Counter]:
    settings = get_settings()
    minute, retry_after, expires = _minute(now)
    return [
        Counter(
            f"user-{user_key(uid)}-m{minute}",
            settings.max_tasks_per_user_per_minute,
            f"at most {settings.max_tasks_per_user_per_minute} tasks a minute per user",
            retry_after,
            expires,
        ),
        user_in_flight(uid),
    ]


def user_in_flight(uid: str) -> Counter:
    settings = get_settings()
    return Counter(
        f"user-{user_key(uid)}-in-flight",
        settings.max_tasks_in_flight_per_user,
        f"at most {settings.max_tasks_in_flight_per_user} unfinished tasks per user",
        IN_FLIGHT_RETRY_AFTER_S,
    )


def project_counters(now: datetime) -> list[ShardedCounter]:
    settings = get_settings()
    minute, retry_after, expires = _minute(now)
    return [
        ShardedCounter(
            f"project-m{minute}",
            settings.max_tasks_per_minute,
            "the service takes at most "
            f"{settings.max_tasks_per_minute} tasks a minute; try again shortly",
            retry_after,
            expires,
            window_end=now + timedelta(seconds=retry_after),
        ),
        project_in_flight(),
    ]


def project_in_flight() -> ShardedCounter:
    settings = get_settings()
    return ShardedCounter(
        "project-in-flight",
        settings.max_tasks_in_flight,
        f"the service works on at most {settings.max_tasks_in_flight} tasks at once; "
        "try again shortly",
        IN_FLIGHT_RETRY_AFTER_S,
    )


@cache
def _summing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="quota-sum")


def totals(counters: list[ShardedCounter], at: datetime) -> list[int]:
    """The counters' totals at commit time ``at`` (one aggregation each, in parallel)."""
    if len(counters) <= 1:
        return [counter.total(at) for counter in counters]
    return list(_summing_pool().map(lambda counter: counter.total(at), counters))


def refusal(counters: Sequence[Cap], counts: list[int]) -> RateLimited | None:
    """The 429 for the first cap the new counts exceed, or None."""
    for counter, count in zip(counters, counts, strict=True):
        if counter.cap and count > counter.cap:
            return counter.refuse()
    return None


@dataclass(frozen=True)
class _Full:
    until: datetime
    amount: int  # the smallest amount refused: a smaller one may still fit (budgets)


_full: dict[str, _Full] = {}
_full_lock = threading.Lock()


def _memo_key(counter: Cap) -> str:
    return f"{get_settings().quota_collection}/{counter.key}"


def remember_full(counter: Cap, now: datetime) -> None:
    """This process saw ``counter`` refuse a task: refuse its like from memory for a while."""
    memo_s = get_settings().project_full_memo_s
    if not memo_s:
        return
    until = counter.window_end or now + timedelta(seconds=memo_s)
    key = _memo_key(counter)
    with _full_lock:
        known = _full.get(key)
        amount = (
            min(counter.amount, known.amount) if known and known.until > now else counter.amount
        )
        _full[key] = _Full(until, amount)
        for key in [key for key, full in _full.items() if full.until <= now]:
            del _full[key]


def check_project_room(now: datetime, *, reserved: int) -> None:
    """Refuse (429) from memory, before any write or upload, a request a project-wide
    count refused moments ago in this process (see the module's docstring)."""
    if not _full:
        return
    counters = project_counters(now)
    if get_settings().budgets_on:
        counters.append(project_budget(day_of(now), now, reserved=reserved))
    with _full_lock:
        for counter in counters:
            full = _full.get(_memo_key(counter))
            if full is not None and now < full.until and counter.amount >= full.amount:
                raise counter.refuse()


def forget_full() -> None:
    """Tests: start with no memory of full counts."""
    with _full_lock:
        _full.clear()


def task_counters(task: TaskRecord) -> tuple[list[Counter], list[ShardedCounter]]:
    """What a new task counts in: its user's counters and the project's, with its
    budget reservation when it has one."""
    now = task.created_at
    users = user_counters(task.uid, now)
    project = project_counters(now)
    if task.budget_day is not None:
        reserved = task.budget_reserved_micros
        users.append(
            user_budget(
                task.uid, task.budget_day, now, anonymous=task.anonymous_user, reserved=reserved
            )
        )
        project.append(project_budget(task.budget_day, now, reserved=reserved))
    return users, project


# ---------------------------------------------------------------- day budgets


def day_of(now: datetime) -> int:
    """The UTC day's number: a task's budget hold counts in it until it settles."""
    return math.floor(now.timestamp() / DAY_S)


def _day_end(day: int, now: datetime) -> tuple[datetime, int]:
    end = datetime.fromtimestamp((day + 1) * DAY_S, now.tzinfo)
    return end, max(1, math.ceil((end - now).total_seconds()))


def _micros(eur: float) -> int:
    return round(eur * 1_000_000)


def user_budget(
    uid: str, day: int, now: datetime, *, anonymous: bool = False, reserved: int = 0
) -> Counter:
    settings = get_settings()
    eur = (
        settings.daily_budget_per_anonymous_user_eur
        if anonymous
        else settings.daily_budget_per_user_eur
    )
    end, retry_after = _day_end(day, now)
    who = "an anonymous user" if anonymous else "a user"
    return Counter(
        f"user-{user_key(uid)}-d{day}",
        _micros(eur),
        f"the day's budget of {eur:.2f} EUR for {who} is used up (finished tasks at their "
        f"cost, unfinished ones at their most); it starts again at {end:%H:%M} UTC",
        retry_after,
        end + BUDGET_COUNTER_EXPIRY,
        amount=reserved,
        error=BudgetExhausted,
        resets_at=end,
    )


def project_budget(day: int, now: datetime, *, reserved: int = 0) -> ShardedCounter:
    settings = get_settings()
    end, retry_after = _day_end(day, now)
    return ShardedCounter(
        f"project-d{day}",
        _micros(settings.daily_budget_eur),
        f"the service's budget for today ({settings.daily_budget_eur:.2f} EUR) is used up; "
        f"it starts again at {end:%H:%M} UTC",
        retry_after,
        end + BUDGET_COUNTER_EXPIRY,
        amount=reserved,
        error=BudgetExhausted,
        resets_at=end,
    )


def check_user_room(uid: str, now: datetime, *, anonymous: bool, reserved: int) -> None:
    """Refuse, before any Storage read, hash or upload, a request its user's counts
    already refuse (429): one batched read of the user's documents, no write. Only a
    shortcut: the commit that creates the task still decides."""
    counters = user_counters(uid, now)
    if get_settings().budgets_on:
        counters.append(user_budget(uid, day_of(now), now, anonymous=anonymous, reserved=reserved))
    capped = [counter for counter in counters if counter.cap]
    if not capped:
        return
    snapshots = clients.firestore().get_all([counter.ref for counter in capped])
    counts = {
        snapshot.id: int((snapshot.to_dict() or {}).get("count", 0)) for snapshot in snapshots
    }
    for counter in capped:
        if counts.get(counter.key, 0) + counter.amount > counter.cap:
            raise counter.refuse()
