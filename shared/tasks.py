"""The task store: ``tasks/{task_id}`` documents in Firestore (SPEC §3, §4).

State changes made by the worker go through transactions that check the
lease owner, so that a late or duplicate attempt can never overwrite the
outcome of another one, nor turn a cancelled task into a completed one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as google_exceptions
from google.api_core.exceptions import Aborted
from google.api_core.retry import Retry, if_exception_type
from google.cloud import firestore

from shared import clients, endings, quotas
from shared.endings import terminal_fields
from shared.errors import FailedPrecondition, NotFound
from shared.models import (
    Progress,
    StrategyDraft,
    TaskError,
    TaskRecord,
    TaskResult,
    TaskStatus,
    WebhookDelivery,
)
from shared.settings import get_settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, Transaction, WriteBatch

TERMINAL_STATUSES = frozenset(status.value for status in TaskStatus if status.is_terminal)
# The progress stage of a task whose attempt gave it back for a later delivery.
WAITING_TO_RETRY = "waiting_to_retry"
# Contended claims (duplicate deliveries at once) read and decide again this often
# before asking for a redelivery; outcomes retry their transaction as often.
CLAIM_ATTEMPTS = 10


@dataclass(frozen=True)
class Hold:
    """What a task holds until it ends: its places in the in-flight counts and its
    budget reservation (shared/quotas.py), and what earlier attempts spent."""

    uid: str
    counter_shard: int | None
    budget_day: int | None
    reserved_micros: int
    spent_before_micros: int

    @classmethod
    def of(cls, task: TaskRecord) -> Hold:
        return cls(
            task.uid,
            task.counter_shard,
            task.budget_day,
            task.budget_reserved_micros,
            task.spent_micros,
        )

    def spent(self, this_attempt: int | None) -> int | None:
        """All the task's attempts cost, given what the last one did (None: unknown)."""
        return None if this_attempt is None else self.spent_before_micros + this_attempt

    @classmethod
    def of_data(cls, data: dict[str, Any]) -> Hold:
        return cls(
            data["uid"],
            data.get("counter_shard"),
            data.get("budget_day"),
            int(data.get("budget_reserved_micros") or 0),
            int(data.get("spent_micros") or 0),
        )


@dataclass
class _Attempt:
    """An attempt this process claimed: the task document's update time after the
    attempt's last write (its next write is conditional on it: proof of ownership
    without a read or a lock), and what its end gives back besides the task."""

    version: datetime
    hold: Hold
    lock: threading.Lock = field(default_factory=threading.Lock)


# lease_owner -> the attempt; an attempt leaves when it ends or gives its lease back.
_attempts: dict[str, _Attempt] = {}
_attempts_lock = threading.Lock()
# A crashed attempt never leaves: keep the registry bounded all the same.
MAX_KNOWN_ATTEMPTS = 10_000


def _remember(lease_owner: str, attempt: _Attempt) -> None:
    with _attempts_lock:
        _attempts[lease_owner] = attempt
        while len(_attempts) > MAX_KNOWN_ATTEMPTS:
            del _attempts[next(iter(_attempts))]


def _forget(lease_owner: str) -> None:
    with _attempts_lock:
        _attempts.pop(lease_owner, None)


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this attempt holds the lease: do the work
    FINISHED = "finished"  # terminal already: acknowledge, do nothing
    LEASED = "leased"  # a live attempt holds it: ask for redelivery later
    MISSING = "missing"  # no such document (yet)
    EXHAUSTED = "exhausted"  # attempt cap reached: now FAILED, acknowledge


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    task: TaskRecord | None = None


def _ref(task_id: str) -> DocumentReference:
    settings = get_settings()
    return clients.firestore().collection(settings.tasks_collection).document(task_id)


def to_document(task: TaskRecord) -> dict[str, Any]:
    # Python mode keeps datetimes, which Firestore stores as timestamps.
    return task.model_dump(mode="python")


def create_task(task: TaskRecord) -> None:
    """Create the document and count it in its caps, in one commit (``shared.quotas``);
    over a cap, undo both and raise ``RateLimited``. Fails if the id is taken (ids
    are random, so it is not)."""
    task = task.model_copy(update={"counter_shard": quotas.shard_of(task.task_id)})
    assert task.counter_shard is not None
    users, project = quotas.task_counters(task)
    batch = clients.firestore().batch()
    batch.create(_ref(task.task_id), to_document(task))
    for counter in users:
        batch.set(counter.ref, counter.change(+counter.amount), merge=True)
    for sharded in project:
        batch.set(
            sharded.shard_ref(task.counter_shard), sharded.change(+sharded.amount), merge=True
        )
    results = batch.commit()
    # The commit's transform results are the users' new counts: no read, no race.
    counts = [int(result.transform_results[0].integer_value) for result in results[1:]]
    refused = quotas.refusal(users, counts[: len(users)])
    if refused is None:
        # The project's totals as of our commit (ADR 0009).
        capped = [sharded for sharded in project if sharded.cap]
        committed_at = batch.commit_time
        assert committed_at is not None  # set by a commit that succeeded
        totals = quotas.totals(capped, committed_at)
        refused = quotas.refusal(capped, totals)
        for sharded, total in zip(capped, totals, strict=True):
            if total > sharded.cap:
                quotas.remember_full(sharded, task.created_at)
    if refused is not None:
        discard_new_task(task)
        raise refused


def discard_new_task(task: TaskRecord) -> bool:
    """Remove a task that was never accepted, and its counts, if it was created: also
    after a create whose answer was lost (it may or may not have committed). Without a
    transaction (a burst of refusals must not queue on the user's counter locks): the
    delete is conditional on the version read, so of two discards one takes the counts
    back."""
    ref = _ref(task.task_id)
    snapshot = ref.get()
    if not snapshot.exists:
        return False
    data = snapshot.to_dict() or {}
    shard = data.get("counter_shard")
    # Cancelled while it was briefly visible: the cancel gave its hold back (the
    # in-flight places and the budget reservation); only its minute's counts are left.
    held = data.get("status") not in TERMINAL_STATUSES
    users, project = quotas.task_counters(task)
    client = clients.firestore()
    batch = client.batch()
    batch.delete(ref, option=client.write_option(last_update_time=snapshot.update_time))
    for counter in users:
        if held or counter is users[0]:  # [0]: the minute's count
            batch.set(counter.ref, counter.change(-counter.amount), merge=True)
    if shard is not None:
        for sharded in project:
            if held or sharded is project[0]:
                batch.set(sharded.shard_ref(shard), sharded.change(-sharded.amount), merge=True)
    try:
        batch.commit()
    except google_exceptions.FailedPrecondition:
        return False  # discarded (or changed) by someone else since we read it
    return True


def _give_back(writes: Transaction | WriteBatch, hold: Hold, spent_micros: int | None) -> None:
    """A task turns terminal: it no longer counts against the in-flight caps, and its
    budget reservation is settled at ``spent_micros``, all its attempts' real cost
    (None: not known, e.g. a crashed attempt may have paid; the reservation stays)."""
    user = quotas.user_in_flight(hold.uid)
    writes.set(user.ref, user.change(-1), merge=True)
    if hold.counter_shard is not None:
        project = quotas.project_in_flight()
        writes.set(project.shard_ref(hold.counter_shard), project.change(-1), merge=True)
    if hold.budget_day is None or spent_micros is None:
        return
    settle = spent_micros - hold.reserved_micros
    if settle == 0:
        return
    now = datetime.now(UTC)
    user_day = quotas.user_budget(hold.uid, hold.budget_day, now)
    writes.set(user_day.ref, user_day.change(settle), merge=True)
    if hold.counter_shard is not None:
        project_day = quotas.project_budget(hold.budget_day, now)
        writes.set(
            project_day.shard_ref(hold.counter_shard), project_day.change(settle), merge=True
        )


def get_task(task_id: str) -> TaskRecord | None:
    snapshot = _ref(task_id).get()
    if not snapshot.exists:
        return None
    return TaskRecord.model_validate(snapshot.to_dict())


def claim_task(task_id: str, *, lease_owner: str, now: datetime) -> Claim:
    """Take the task for one processing attempt (SPEC §4), without a transaction: read,
    decide, and write only if the document is still the version read (an update-time
    precondition). Claims of one task at once (duplicate deliveries) take no lock and
    wait for none: the one whose write lands first wins, the others read again and find
    it leased. After CLAIM_ATTEMPTS lost races in a row the answer is LEASED (try later)."""
    ref = _ref(task_id)
    client = clients.firestore()
    for _ in range(CLAIM_ATTEMPTS):
        snapshot = ref.get()
        claim, changes = decide_claim(_record(snapshot), lease_owner=lease_owner, now=now)
        if not changes:
            return claim
        batch = client.batch()
        batch.update(
            ref, changes, option=client.write_option(last_update_time=snapshot.update_time)
        )
        if claim.outcome is ClaimOutcome.EXHAUSTED and claim.task is not None:
            # No attempt is live: what the failed ones spent is all it cost.
            _give_back(batch, Hold.of(claim.task), claim.task.spent_micros)
        try:
            results = batch.commit()
        except google_exceptions.FailedPrecondition:
            continue  # written since we read it (another claim, a cancel): decide again
        if claim.outcome is ClaimOutcome.CLAIMED and claim.task is not None:
            task = claim.task
            _remember(lease_owner, _Attempt(results[0].update_time, Hold.of(task)))
        elif claim.task is not None and claim.task.request.webhook_url:
            endings.announce(task_id)  # failed here: its attempts were used up
        return claim
    return Claim(ClaimOutcome.LEASED)


def _record(snapshot: Any) -> TaskRecord | None:
    return TaskRecord.model_validate(snapshot.to_dict()) if snapshot.exists else None


def decide_claim(
    task: TaskRecord | None, *, lease_owner: str, now: datetime
) -> tuple[Claim, dict[str, Any]]:
    """The claim's rule, apart from where the task is stored: the outcome, and the
    changes to write (none when the claim writes nothing)."""
    settled = settled_claim(task, now)
    if settled is not None:
        return settled, {}
    assert task is not None
    if task.attempts >= get_settings().max_task_attempts:
        error = attempts_exhausted(task.attempts)
        return Claim(ClaimOutcome.EXHAUSTED, task), terminal_fields(
            TaskStatus.FAILED, now, error=error, webhook_url=task.request.webhook_url
        )
    changes: dict[str, Any] = {
        "status": TaskStatus.PROCESSING.value,
        "attempts": task.attempts + 1,
        "lease_owner": lease_owner,
        "lease_expires_at": now + timedelta(seconds=get_settings().lease_seconds),
        "started_at": task.started_at or now,
        "updated_at": now,
        "progress": Progress(stage="reading_sources", message="Started", percent=5).model_dump(),
    }
    return Claim(ClaimOutcome.CLAIMED, task.model_copy(update=_as_model_fields(changes))), changes


def attempts_exhausted(attempts: int) -> TaskError:
    """The error of a task whose processing was interrupted too often."""
    return TaskError(
        code="attempts_exhausted",
        message=f"Processing was interrupted {attempts} times; giving up.",
        retryable=True,
    )


def settled_claim(task: TaskRecord | None, now: datetime) -> Claim | None:
    """The claim's outcome when no write is needed: missing, finished or leased."""
    if task is None:
        return Claim(ClaimOutcome.MISSING)
    if task.status.is_terminal:
        return Claim(ClaimOutcome.FINISHED, task)
    lease_live = task.lease_expires_at is not None and task.lease_expires_at > now
    if task.status is TaskStatus.PROCESSING and lease_live:
        return Claim(ClaimOutcome.LEASED, task)
    return None


def _as_model_fields(changes: dict[str, Any]) -> dict[str, Any]:
    fields = dict(changes)
    fields["status"] = TaskStatus(fields["status"])
    if "progress" in fields:
        fields["progress"] = Progress.model_validate(fields["progress"])
    if fields.get("webhook") is not None:
        fields["webhook"] = WebhookDelivery.model_validate(fields["webhook"])
    return fields


def finish_task(
    task_id: str,
    *,
    lease_owner: str,
    now: datetime,
    result: TaskResult | None = None,
    error: TaskError | None = None,
    spent_micros: int | None = 0,
    webhook_url: str | None = None,
) -> bool:
    """COMPLETED with ``result`` or FAILED with ``error``, if this attempt still owns it;
    ``spent_micros``: what this attempt's paid answers cost (the budget is settled
    with it and what earlier attempts spent; None: not known, the reservation stays).

    Returns False (and writes nothing) when the task was cancelled or taken over
    meanwhile: that attempt's outcome is then discarded.
    """
    status = TaskStatus.COMPLETED if result is not None else TaskStatus.FAILED
    changes = terminal_fields(status, now, result=result, error=error, webhook_url=webhook_url)
    kept = _outcome_retry()(_update_if_owned)(task_id, lease_owner, changes, spent=spent_micros)
    if kept and webhook_url:
        endings.announce(task_id)
    return bool(kept)


def _outcome_retry() -> Retry:
    """A paid outcome is worth retrying: the whole transaction, when it aborts also in
    its read (lock timeouts), which the library's own retry (commit only) does not
    cover; for up to OUTCOME_WRITE_TIMEOUT_S."""
    return Retry(
        predicate=if_exception_type(Aborted),
        initial=0.05,
        maximum=1.0,
        multiplier=2.0,
        timeout=get_settings().outcome_write_timeout_s,
    )


def owned(data: dict[str, Any] | None, lease_owner: str) -> bool:
    """Whether a task document is still this attempt's: PROCESSING under its lease owner."""
    return bool(
        data
        and data.get("status") == TaskStatus.PROCESSING.value
        and data.get("lease_owner") == lease_owner
    )


def _update_if_owned(
    task_id: str,
    lease_owner: str,
    changes: dict[str, Any],
    tries: int = CLAIM_ATTEMPTS,
    spent: int | None = 0,
) -> bool:
    """Apply ``changes`` if the attempt still owns the task: one write, conditional on
    the document being as the attempt's last write left it. When something else wrote
    it meanwhile, a read tells whether the task is still ours (then write again) or not
    (then nothing is written). A terminal change takes the task out of the in-flight
    counts and settles its budget (``spent``: this attempt's cost) in the same commit."""
    attempt = _attempts.get(lease_owner)
    if attempt is None:  # not claimed by this process (tests, tools): the safe way
        return _update_if_owned_in_transaction(task_id, lease_owner, changes, spent)
    ref = _ref(task_id)
    client = clients.firestore()
    terminal = changes.get("status") in TERMINAL_STATUSES
    with attempt.lock:  # the attempt's own writers (progress, outcome) take turns
        for _ in range(tries):
            batch = client.batch()
            batch.update(ref, changes, option=client.write_option(last_update_time=attempt.version))
            if terminal:
                _give_back(batch, attempt.hold, attempt.hold.spent(spent))
            try:
                results = batch.commit()
            except google_exceptions.FailedPrecondition:
                snapshot = ref.get()
                if not owned(snapshot.to_dict() if snapshot.exists else None, lease_owner):
                    _forget(lease_owner)  # cancelled or taken over: never written again
                    return False
                attempt.version = snapshot.update_time
                continue
            attempt.version = results[0].update_time
            if terminal:
                _forget(lease_owner)
            return True
    raise Aborted(f"task {task_id}: written by others {tries} times in a row")


def _update_if_owned_in_transaction(
    task_id: str, lease_owner: str, changes: dict[str, Any], spent: int | None = 0
) -> bool:
    ref = _ref(task_id)

    @firestore.transactional
    def run(transaction: Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        data = snapshot.to_dict() if snapshot.exists else None
        if not owned(data, lease_owner):
            return False
        assert data is not None
        transaction.update(ref, changes)
        if changes.get("status") in TERMINAL_STATUSES:
            hold = Hold.of_data(data)
            _give_back(transaction, hold, hold.spent(spent))
        return True

    return bool(run(clients.firestore().transaction(max_attempts=CLAIM_ATTEMPTS)))


def watch_task(task_id: str, lease_owner: str, on_lost: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_lost`` (once) as soon as the task is no longer this attempt's: cancelled,
    taken over or deleted. A realtime listener on the document, no polling: the worker
    stops its Gemini stream within a moment of a cancel. Returns what stops watching."""
    fired = threading.Event()

    def on_snapshot(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snapshot in snapshots or [None]:
            data = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
            if not owned(data, lease_owner) and not fired.is_set():
                fired.set()
                on_lost()

    watch = _ref(task_id).on_snapshot(on_snapshot)

    def stop() -> None:
        # Closing the listener's stream may take a moment: not on the delivery's time.
        threading.Thread(target=watch.unsubscribe, name="unwatch", daemon=True).start()

    return stop


def holds_lease(task_id: str, lease_owner: str) -> bool:
    """Whether this attempt still owns the task (not cancelled, not taken over)."""
    snapshot = _ref(task_id).get()
    return owned(snapshot.to_dict() if snapshot.exists else None, lease_owner)


def record_progress(
    task_id: str,
    *,
    lease_owner: str,
    progress: Progress,
    draft: StrategyDraft | None,
    now: datetime,
) -> bool:
    """Progress (and the draft) of a task this attempt still owns: a cancelled or
    finished task is never written again. One try: progress is advisory."""
    changes: dict[str, Any] = {"progress": progress.model_dump(), "updated_at": now}
    if draft is not None:
        changes["draft"] = draft.model_dump(exclude_none=True)
    return _update_if_owned(task_id, lease_owner, changes, tries=2)


def save_checkpoint(
    task_id: str, *, lease_owner: str, now: datetime, checkpoint: TaskResult
) -> bool:
    """Keep what this attempt paid for, so that a takeover does not pay again.
    Retried like the outcome (a lost checkpoint may cost a second Gemini call)."""
    changes = {"checkpoint": checkpoint.model_dump(), "updated_at": now}
    return bool(_outcome_retry()(_update_if_owned)(task_id, lease_owner, changes))


def get_owned_task(task_id: str, *, uid: str) -> TaskRecord:
    """The task if ``uid`` owns it; a stranger's task is as unknown as a missing one."""
    task = get_task(task_id)
    if task is None or task.uid != uid:
        raise NotFound("no such task")
    return task


def cancel_task(task_id: str, *, uid: str) -> TaskRecord:
    """PENDING or PROCESSING → CANCELLED for the owner; a finished task is left alone."""
    ref = _ref(task_id)

    @firestore.transactional
    def run(transaction: Transaction) -> TaskRecord:
        # Taken at each try: a retry after another write must not date the cancel before it.
        now = datetime.now(UTC)
        snapshot = ref.get(transaction=transaction)
        task = TaskRecord.model_validate(snapshot.to_dict()) if snapshot.exists else None
        if task is None or task.uid != uid:
            raise NotFound("no such task")
        if task.status.is_terminal:
            raise FailedPrecondition(f"the task is already {task.status.value}")
        changes = terminal_fields(TaskStatus.CANCELLED, now, webhook_url=task.request.webhook_url)
        if held_by_an_attempt(task, now):
            # The attempt still streams until its watch stops it: it keeps its lease,
            # and so its in-flight places, until it has (release_stopped); what it
            # paid is not known, so the budget reservation stays.
            changes["lease_expires_at"] = task.lease_expires_at
        else:
            _give_back(transaction, Hold.of(task), task.spent_micros)
        transaction.update(ref, changes)
        return task.model_copy(update=_as_model_fields(changes))

    cancelled = run(clients.firestore().transaction())
    if cancelled.request.webhook_url:
        endings.announce(task_id)
    return cancelled


def held_by_an_attempt(task: TaskRecord, now: datetime) -> bool:
    """PROCESSING under a live lease: an attempt may be calling Gemini right now."""
    return (
        task.status is TaskStatus.PROCESSING
        and task.lease_expires_at is not None
        and task.lease_expires_at > now
    )


def release_stopped(task_id: str, *, lease_owner: str | None) -> bool:
    """A task cancelled while an attempt held it gives the attempt's in-flight places
    back once that attempt has stopped (its own call, or the sweeper's when it died and
    its lease ran out): conditional on the version read, so only once. The budget
    reservation stays (what the stopped attempt paid is not known)."""
    ref = _ref(task_id)
    client = clients.firestore()
    for _ in range(CLAIM_ATTEMPTS):
        snapshot = ref.get()
        data = snapshot.to_dict() if snapshot.exists else None
        held = (
            data is not None
            and data.get("status") == TaskStatus.CANCELLED.value
            and data.get("lease_expires_at") is not None
            and data.get("lease_owner") == lease_owner
        )
        if not held:
            return False
        assert data is not None
        batch = client.batch()
        batch.update(
            ref,
            {"lease_expires_at": None},
            option=client.write_option(last_update_time=snapshot.update_time),
        )
        _give_back(batch, Hold.of_data(data), None)
        try:
            batch.commit()
        except google_exceptions.FailedPrecondition:
            continue
        return True
    return False


def delete_finished(task_id: str, *, uid: str) -> TaskRecord:
    """Delete the owner's finished task (issue 19): its document only (its objects are
    the caller's, shared/erasure.py). A task cancelled while an attempt still held it
    gives that attempt's places back in the same commit: the attempt's next write finds
    no task and it stops. Conditional on the version read: a change meanwhile reads again."""
    ref = _ref(task_id)
    client = clients.firestore()
    deleting: dict[str, Any] | None = None  # a commit sent whose answer was lost
    for _ in range(CLAIM_ATTEMPTS):
        snapshot = ref.get()
        data = snapshot.to_dict() if snapshot.exists else None
        if data is None and deleting is not None:
            return TaskRecord.model_validate(deleting)  # that commit went through
        if data is None or data.get("uid") != uid:
            raise NotFound("no such task")
        if data.get("status") not in TERMINAL_STATUSES:
            raise FailedPrecondition("the task is unfinished: cancel it first")
        batch = client.batch()
        batch.delete(ref, option=client.write_option(last_update_time=snapshot.update_time))
        if data.get("status") == TaskStatus.CANCELLED.value and data.get("lease_expires_at"):
            _give_back(batch, Hold.of_data(data), None)
        try:
            batch.commit()
        except google_exceptions.FailedPrecondition:
            continue
        except (google_exceptions.Cancelled, google_exceptions.DeadlineExceeded):
            # The answer was lost (the emulator has answered 499 to a commit that may have
            # landed): read again; a task gone now was deleted by it.
            deleting = data
            continue
        return TaskRecord.model_validate(data)
    raise google_exceptions.Aborted(f"task {task_id} kept changing while it was deleted")


def fail_if_abandoned(task_id: str, *, now: datetime, error: TaskError) -> ClaimOutcome:
    """FAILED for a task no live attempt holds; used for dead letters and the sweeper.

    Returns LEASED when a live lease may still finish it (leave it alone),
    FINISHED when it had ended already, EXHAUSTED when this call failed it.
    """
    ref = _ref(task_id)
    webhook_url: list[str | None] = [None]  # the failed task's, known once it is read

    @firestore.transactional
    def run(transaction: Transaction) -> ClaimOutcome:
        task = _record(ref.get(transaction=transaction))
        outcome = decide_abandoned(task, now)
        if outcome is ClaimOutcome.EXHAUSTED and task is not None:
            webhook_url[0] = url = task.request.webhook_url
            ending = terminal_fields(TaskStatus.FAILED, now, error=error, webhook_url=url)
            transaction.update(ref, ending)
            # Its last attempt may have paid before it died: the reservation stays.
            _give_back(transaction, Hold.of(task), None)
        return outcome

    outcome = run(clients.firestore().transaction())
    if outcome is ClaimOutcome.EXHAUSTED and webhook_url[0]:
        endings.announce(task_id)
    return outcome


def decide_abandoned(task: TaskRecord | None, now: datetime) -> ClaimOutcome:
    """Whether a task may be failed as abandoned (EXHAUSTED), and why not otherwise."""
    settled = settled_claim(task, now)
    return settled.outcome if settled is not None else ClaimOutcome.EXHAUSTED


def stale_task_ids(*, now: datetime, pending_before: datetime, limit: int) -> list[str]:
    """Tasks nobody works on: expired leases, old PENDING ones, and cancelled ones whose
    attempt died holding its places."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    collection = clients.firestore().collection(get_settings().tasks_collection)
    expired = (
        collection.where(filter=FieldFilter("status", "==", TaskStatus.PROCESSING.value))
        .where(filter=FieldFilter("lease_expires_at", "<", now))
        .limit(limit)
    )
    waiting = (
        collection.where(filter=FieldFilter("status", "==", TaskStatus.PENDING.value))
        .where(filter=FieldFilter("created_at", "<", pending_before))
        .limit(limit)
    )
    # Cancelled while an attempt held them, and that attempt died before it stopped.
    held = (
        collection.where(filter=FieldFilter("status", "==", TaskStatus.CANCELLED.value))
        .where(filter=FieldFilter("lease_expires_at", "<", now))
        .limit(limit)
    )
    return [snap.id for query in (expired, waiting, held) for snap in query.stream()]


def release_lease(
    task_id: str,
    *,
    lease_owner: str,
    now: datetime,
    progress: Progress | None = None,
    error: str | None = None,
    checkpoint: TaskResult | None = None,
    spent_micros: int = 0,
) -> bool:
    """End this attempt's lease early, so that a redelivery may take over at once.

    The task stays PROCESSING (its lease expired), ``progress`` tells the user why,
    ``error`` (the failure's code) is added to ``attempt_errors``, and ``checkpoint``
    (what the attempt paid for) is kept for the takeover; ``spent_micros`` (what its
    unusable paid answers cost) is added to what the task's end settles.
    Returns False when the task was no longer this attempt's (cancelled, taken over).
    """
    changes: dict[str, Any] = {"lease_expires_at": now, "updated_at": now}
    if progress is not None:
        changes["progress"] = progress.model_dump()
    if error is not None:
        changes["attempt_errors"] = firestore.ArrayUnion([error])
    if checkpoint is not None:
        changes["checkpoint"] = checkpoint.model_dump()
    if spent_micros:
        changes["spent_micros"] = firestore.Increment(spent_micros)
    try:
        return _update_if_owned(task_id, lease_owner, changes)
    finally:
        _forget(lease_owner)
