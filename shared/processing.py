"""The worker's domain: one Pub/Sub delivery in, one finished task out (SPEC §4).

``Worker.handle_delivery`` returns normally when the message may be acknowledged
and raises ``RedeliverLater`` when Pub/Sub must bring it back. The claim makes
sure that, however often a message arrives, Gemini is paid once per task.

The work is checkpointed: the strategy is saved on the task as soon as it is
paid for, then the preview; a takeover resumes at the first step not done, so
no failure after the strategy call (Storage, Firestore, a crash) buys it again.

A retryable Gemini failure that outlasts the SDK's own retries ends the attempt,
not the task: the lease is released and the message comes back after Pub/Sub's
backoff, so an outage of minutes is ridden out without a worker sleeping
through it. After MAX_TASK_ATTEMPTS the task is FAILED (``retryable: true``)
and its message goes to the dead-letter topic.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from shared import abortable, costs, gemini
from shared.errors import Unavailable
from shared.log import get_logger
from shared.models import Cost, ImageRef, Progress, TaskError, TaskRecord, TaskResult, Usage
from shared.ports import DeadLetters, Gemini, PreviewStore, TaskStore
from shared.progress import ProgressWriter
from shared.queue import Delivery
from shared.settings import get_settings
from shared.tasks import WAITING_TO_RETRY, ClaimOutcome

log = get_logger("processing")


class RedeliverLater(Exception):
    """Answer non-2xx: the message must come back (task missing yet, leased, or
    its attempt failed in a way a later one may not)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(
        self,
        *,
        store: TaskStore,
        previews: PreviewStore,
        dead_letters: DeadLetters,
        gemini: Gemini,
        clock: type[datetime] = datetime,
    ) -> None:
        self.store = store
        self.previews = previews
        self.dead_letters = dead_letters
        self.gemini = gemini
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now(UTC)

    # -- one delivery --------------------------------------------------------------------

    def handle_delivery(self, delivery: Delivery) -> None:
        task_id = delivery.message.task_id
        context = {"task_id": task_id, "delivery_attempt": delivery.delivery_attempt}
        lease_owner = uuid.uuid4().hex
        claim = self.store.claim_task(task_id, lease_owner=lease_owner, now=self.now())
        if claim.outcome is ClaimOutcome.MISSING:
            if self._is_orphan(delivery):
                log.error("message for a task that never appeared: dropped", extra=context)
                return
            log.warning("task not found yet: asking for redelivery", extra=context)
            raise RedeliverLater(f"task {task_id} does not exist yet")
        if claim.outcome is ClaimOutcome.LEASED:
            log.info("task leased by a live attempt: asking for redelivery", extra=context)
            raise RedeliverLater(f"task {task_id} is being processed")
        if claim.outcome is ClaimOutcome.FINISHED:
            log.info("nothing to do: finished", extra=context)
            return
        if claim.outcome is ClaimOutcome.EXHAUSTED:
            log.warning("attempts exhausted: task failed", extra=context)
            self._dead_letter(task_id, reason="attempts_exhausted")
            return
        assert claim.task is not None
        try:
            self.run_task(claim.task, lease_owner)
        except RedeliverLater:
            raise
        except Exception:
            # An unexpected failure: give the task back for the redelivery, which
            # resumes from the last checkpoint.
            log.exception("processing crashed: releasing the lease", extra=context)
            self.store.release_lease(task_id, lease_owner=lease_owner, now=self.now())
            raise

    def _is_orphan(self, delivery: Delivery) -> bool:
        if delivery.publish_time is None:
            return False
        age = (self.now() - delivery.publish_time).total_seconds()
        return age > get_settings().orphan_message_max_age_s

    # -- one attempt ---------------------------------------------------------------------

    def run_task(self, task: TaskRecord, lease_owner: str) -> None:
        """Do the work of a claimed task, from its last checkpoint, and record the outcome."""
        started = time.monotonic()
        # One wall-clock deadline for the attempt, inside its lease.
        deadline = started + get_settings().attempt_worst_case_s()
        log.info(
            "processing started",
            extra={
                "task_id": task.task_id,
                "attempt": task.attempts,
                "resumed": task.checkpoint is not None,
            },
        )
        write = functools.partial(self.store.record_progress, lease_owner=lease_owner)
        progress = ProgressWriter(
            task.task_id,
            lambda task_id, p, draft, now: write(task_id, progress=p, draft=draft, now=now),
            first_stage="reading_sources",
        )
        # A cancel (or a takeover) while the attempt runs stops its Gemini calls at once:
        # a stream left open is generated, and billed, to its end.
        stopper = abortable.Stopper()
        stop_watching = self.store.watch_task(task.task_id, lease_owner, stopper.stop)
        calls = abortable.current.set(stopper)
        try:
            self._run_steps(task, lease_owner, progress, started, deadline)
        finally:
            abortable.current.reset(calls)
            stop_watching()
            progress.close()
        if stopper.stopped.is_set():
            # Cancelled under us: its in-flight places come back now that we stopped.
            self.store.release_stopped(task.task_id, lease_owner=lease_owner)

    def _run_steps(
        self,
        task: TaskRecord,
        lease_owner: str,
        progress: ProgressWriter,
        started: float,
        deadline: float,
    ) -> None:
        context = {"task_id": task.task_id, "attempt": task.attempts}
        result = task.checkpoint
        if result is None:
            try:
                answer = self._write_strategy(task, progress, deadline)
            except gemini.GeminiError as exc:
                progress.close()
                if exc.code == gemini.STOPPED:
                    # Cancelled or taken over: that write stands; this attempt adds none.
                    log.info("task no longer ours: Gemini call stopped", extra=context)
                    return
                self._fail_or_retry(task, lease_owner, exc)
                return
            result = TaskResult(
                strategy=answer.strategy,
                sources=answer.sources,
                search_entry_point=answer.search_entry_point,
                model=answer.model,
                usage=answer.usage,
                cost=_priced(
                    lambda: costs.strategy_micros(
                        answer.usage, grounded=answer.search_entry_point is not None
                    )
                ),
            )
        if task.request.image and result.image is None and result.image_error is None:
            # Paid for, and more work to come: from here on no failure (the image call,
            # Storage, a crash) may buy it again. (Without an image the outcome is the
            # next write, and a failed one gives the result back as the checkpoint.)
            if task.checkpoint is None:
                # The write is conditional on the lease: it also tells whether the task
                # was cancelled (or taken over) while the strategy was written.
                ours = self._checkpoint(task, lease_owner, result)
                if ours is None:  # not saved: ask
                    ours = self.store.holds_lease(task.task_id, lease_owner)
                if not ours:
                    log.info("task no longer ours: no image", extra=context)
                    _lost()
                    return
            progress("drawing_image", "Drawing the preview image", 70)
            self._add_image(task, result)
        progress.close()
        self._finish_paid(task, lease_owner, result)
        log.info(
            "task completed",
            extra={
                **context,
                "model": result.model,
                "prompt_tokens": result.usage.prompt_tokens,
                "output_tokens": result.usage.output_tokens,
                "thoughts_tokens": result.usage.thoughts_tokens,
                "total_tokens": result.usage.total_tokens,
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )

    def _write_strategy(
        self, task: TaskRecord, progress: ProgressWriter, deadline: float
    ) -> gemini.StrategyAnswer:
        pdf = task.request.pdf
        if pdf is None:
            progress("writing_strategy", "Writing the strategy", 20)
            return self.gemini.generate_strategy(
                task.request, on_progress=progress, on_text=progress.add_text, deadline=deadline
            )
        progress("reading_sources", "Reading the PDF", 10)
        with self.gemini.pdf_for_gemini(pdf, task_id=task.task_id, deadline=deadline) as file:
            progress("writing_strategy", "Writing the strategy", 20)
            return self.gemini.generate_strategy(
                task.request,
                file_parts=[file.part()],
                on_progress=progress,
                on_text=progress.add_text,
                deadline=deadline,
            )

    def _add_image(self, task: TaskRecord, result: TaskResult) -> None:
        """Draw and store the preview; a failure is recorded, the strategy is kept."""
        context = {"task_id": task.task_id}
        try:
            image = self.gemini.generate_image(result.strategy)
        except gemini.GeminiError as exc:
            result.image_error = TaskError(
                code=exc.code, message=exc.message, retryable=exc.retryable
            )
            if exc.usage is not None:  # answered, unusable: paid all the same
                _add_cost(result, exc.usage, images=0)
            log.warning("preview image failed", extra={**context, "code": exc.code})
            return
        _add_cost(result, image.usage, images=1)  # paid, stored or not
        try:
            gcs_uri = self.previews.store_preview(task.task_id, image.data, image.mime_type)
        except Exception:
            # Storage failing must not cost the strategy (nor the image) again.
            log.exception("preview not stored", extra={**context, "code": "preview_not_stored"})
            result.image_error = TaskError(
                code="preview_not_stored",
                message="The preview image was made but could not be stored.",
                retryable=True,
            )
            return
        result.image = ImageRef(
            gcs_uri=gcs_uri, mime_type=image.mime_type, width=image.width, height=image.height
        )

    def _checkpoint(self, task: TaskRecord, lease_owner: str, result: TaskResult) -> bool | None:
        """Save what was paid for: True, False when the task is no longer this attempt's,
        None when the write failed (the attempt goes on: its outcome may still land)."""
        try:
            return self.store.save_checkpoint(
                task.task_id, lease_owner=lease_owner, now=self.now(), checkpoint=result
            )
        except Exception:
            log.exception("checkpoint not saved", extra={"task_id": task.task_id})
            return None

    def _finish_paid(self, task: TaskRecord, lease_owner: str, result: TaskResult) -> None:
        """Write a paid outcome; if that fails, the redelivery resumes from the checkpoint."""
        try:
            self._finish(task, lease_owner, result=result, spent_micros=_micros(result))
        except Exception as exc:
            log.exception(
                "outcome not written: a redelivery resumes", extra={"task_id": task.task_id}
            )
            try:
                # The result goes with the lease: the redelivery writes it, pays nothing.
                self.store.release_lease(
                    task.task_id, lease_owner=lease_owner, now=self.now(), checkpoint=result
                )
            except Exception:
                log.exception("lease not released", extra={"task_id": task.task_id})
            raise RedeliverLater(f"task {task.task_id}: outcome not written") from exc

    # -- failures ------------------------------------------------------------------------

    def _fail_or_retry(self, task: TaskRecord, lease_owner: str, exc: gemini.GeminiError) -> None:
        """FAILED, or (retryable, attempts left) back to Pub/Sub for a later attempt.

        A failure that may be retried only once (an unusable answer) fails the task the
        second time it happens.
        """
        max_attempts = get_settings().max_task_attempts
        context = {"task_id": task.task_id, "attempt": task.attempts, "code": exc.code}
        # An unusable answer was billed; a failed call was not.
        spent: int | None = 0
        if exc.usage is not None:
            cost = _priced(lambda: costs.strategy_micros(exc.usage or Usage(), grounded=False))
            spent = costs.micros_of(cost) if cost is not None else None
        repeated = exc.once and exc.code in task.attempt_errors
        if exc.retryable and not repeated and task.attempts < max_attempts:
            waiting = Progress(
                stage=WAITING_TO_RETRY,
                message=(
                    "Gemini's answer was unusable; asking again shortly"
                    if exc.once
                    else "Gemini is busy; trying again shortly"
                )
                + f" ({task.attempts} of {max_attempts} attempts used)",
                percent=5,
            )
            released = self.store.release_lease(
                task.task_id,
                lease_owner=lease_owner,
                now=self.now(),
                progress=waiting,
                error=exc.code,
                # Not known (unpriced): count the whole reservation as spent.
                spent_micros=task.budget_reserved_micros if spent is None else spent,
            )
            if not released:
                log.info("attempt failed on a task no longer ours", extra=context)
                _lost()
                return
            log.warning(
                "attempt failed: the next delivery tries again", exc_info=exc, extra=context
            )
            raise RedeliverLater(f"task {task.task_id}: {exc.code}, attempt {task.attempts}")
        # An unusable answer that came twice will not be fixed by asking again.
        retryable = exc.retryable and not exc.once
        error = TaskError(code=exc.code, message=exc.message, retryable=retryable)
        kept = self._finish(task, lease_owner, error=error, spent_micros=spent)
        log.warning("task failed", exc_info=exc, extra={**context, "retryable": retryable})
        if kept and retryable:
            self._dead_letter(task.task_id, reason=exc.code)

    def _dead_letter(self, task_id: str, *, reason: str) -> None:
        try:
            self.dead_letters.dead_letter(task_id, reason=reason)
        except Exception:
            # The task's outcome is written already; the dead letter is the operators'
            # copy of it, not worth a redelivery (which would find the task finished).
            log.exception("dead letter not published", extra={"task_id": task_id})

    def _finish(
        self,
        task: TaskRecord,
        lease_owner: str,
        *,
        result: TaskResult | None = None,
        error: TaskError | None = None,
        spent_micros: int | None = 0,
    ) -> bool:
        kept = self.store.finish_task(
            task.task_id,
            lease_owner=lease_owner,
            now=self.now(),
            result=result,
            error=error,
            spent_micros=spent_micros,
            webhook_url=task.request.webhook_url,
        )
        if not kept:
            # Cancelled, or taken over after our lease expired: the other state wins.
            log.warning("outcome discarded: task no longer ours", extra={"task_id": task.task_id})
            _lost()
        return kept


def _lost() -> None:
    """The attempt found its task no longer its own: stop its calls (as its watch would)
    and, after it, give a cancel's held places back (Worker.run_task)."""
    stopper = abortable.current.get()
    if stopper is not None:
        stopper.stop()


def _priced(micros: Callable[[], int]) -> Cost | None:
    """A cost, or None when the price table lacks the model (logged by shared.costs):
    the task's budget then keeps its whole reservation."""
    try:
        return costs.as_cost(micros())
    except Unavailable:
        return None


def _add_cost(result: TaskResult, usage: Usage, *, images: int) -> None:
    """The preview's answer, paid: into the task's usage and cost."""
    result.usage = result.usage + usage
    if result.cost is not None:
        added = _priced(lambda: costs.image_micros(usage, images=images))
        result.cost = (
            None
            if added is None
            else costs.as_cost(costs.micros_of(result.cost) + costs.micros_of(added))
        )


def _micros(result: TaskResult) -> int | None:
    """What the result cost, None when not known."""
    return None if result.cost is None else costs.micros_of(result.cost)


@functools.cache
def default_worker() -> Worker:
    """The worker wired to the real services, once per process (clients stay lazy)."""
    from shared import gemini_port, queue, tasks, uploads

    return Worker(store=tasks, previews=uploads, dead_letters=queue, gemini=gemini_port)


def handle_delivery(delivery: Delivery) -> None:
    default_worker().handle_delivery(delivery)
