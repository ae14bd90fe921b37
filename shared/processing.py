"""The worker's domain: one Pub/Sub delivery in, one finished task out (SPEC §4).

``handle_delivery`` returns normally when the message may be acknowledged and
raises ``RedeliverLater`` when Pub/Sub must bring it back. The claim makes
sure that, however often a message arrives, Gemini is paid once per task.

A retryable Gemini failure that outlasts the SDK's own retries ends the attempt,
not the task: the lease is released and the message comes back after Pub/Sub's
backoff, so an outage of minutes is ridden out without a worker sleeping
through it. After MAX_TASK_ATTEMPTS the task is FAILED (``retryable: true``)
and its message goes to the dead-letter topic.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from shared import gemini, gemini_files, queue, tasks, uploads
from shared.log import get_logger
from shared.models import ImageRef, Progress, TaskError, TaskRecord, TaskResult
from shared.progress import ProgressWriter
from shared.queue import Delivery
from shared.settings import get_settings
from shared.tasks import ClaimOutcome

log = get_logger("processing")


class RedeliverLater(Exception):
    """Answer non-2xx: the message must come back (task missing yet, leased, or
    its attempt failed in a way a later one may not)."""


def _now() -> datetime:
    return datetime.now(UTC)


def handle_delivery(delivery: Delivery) -> None:
    task_id = delivery.message.task_id
    context = {"task_id": task_id, "delivery_attempt": delivery.delivery_attempt}
    lease_owner = uuid.uuid4().hex
    claim = tasks.claim_task(task_id, lease_owner=lease_owner, now=_now())
    if claim.outcome is ClaimOutcome.MISSING:
        if _is_orphan(delivery):
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
        _dead_letter(task_id, reason="attempts_exhausted")
        return
    assert claim.task is not None
    try:
        run_task(claim.task, lease_owner)
    except RedeliverLater:
        raise
    except Exception:
        # An unexpected failure (not Gemini's): give the task back for the redelivery.
        log.exception("processing crashed: releasing the lease", extra=context)
        tasks.release_lease(task_id, lease_owner=lease_owner, now=_now())
        raise


def _is_orphan(delivery: Delivery) -> bool:
    if delivery.publish_time is None:
        return False
    age = (_now() - delivery.publish_time).total_seconds()
    return age > get_settings().orphan_message_max_age_s


def run_task(task: TaskRecord, lease_owner: str) -> None:
    """Do the work of a claimed task and record its outcome."""
    started = time.monotonic()
    context = {"task_id": task.task_id, "attempt": task.attempts}
    log.info("processing started", extra=context)
    progress = ProgressWriter(task.task_id, tasks.record_progress, first_stage="reading_sources")
    try:
        _run_claimed(task, lease_owner, progress, started)
    finally:
        progress.close()


def _run_claimed(
    task: TaskRecord, lease_owner: str, progress: ProgressWriter, started: float
) -> None:
    context = {"task_id": task.task_id, "attempt": task.attempts}
    try:
        answer = _write_strategy(task, progress)
    except gemini.GeminiError as exc:
        progress.close()
        _fail_or_retry(task, lease_owner, exc)
        return
    result = TaskResult(
        strategy=answer.strategy,
        sources=answer.sources,
        search_entry_point=answer.search_entry_point,
        model=answer.model,
        usage=answer.usage,
    )
    if task.request.image:
        if not tasks.holds_lease(task.task_id, lease_owner):
            # Cancelled (or taken over) while the strategy was written: pay no image.
            log.info("task no longer ours: no image", extra=context)
            return
        progress("drawing_image", "Drawing the preview image", 70)
        _add_image(task, result)
    progress("saving", "Saving the result", 95)
    progress.close()
    _finish(task, lease_owner, result=result)
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


def _fail_or_retry(task: TaskRecord, lease_owner: str, exc: gemini.GeminiError) -> None:
    """FAILED, or (retryable, attempts left) back to Pub/Sub for a later attempt.

    A failure that may be retried only once (an unusable answer) fails the task the
    second time it happens.
    """
    max_attempts = get_settings().max_task_attempts
    context = {"task_id": task.task_id, "attempt": task.attempts, "code": exc.code}
    repeated = exc.once and exc.code in task.attempt_errors
    if exc.retryable and not repeated and task.attempts < max_attempts:
        waiting = Progress(
            stage="waiting_to_retry",
            message=(
                "Gemini's answer was unusable; asking again shortly"
                if exc.once
                else "Gemini is busy; trying again shortly"
            )
            + f" ({task.attempts} of {max_attempts} attempts used)",
            percent=5,
        )
        if not tasks.release_lease(
            task.task_id, lease_owner=lease_owner, now=_now(), progress=waiting, error=exc.code
        ):
            log.info("attempt failed on a task no longer ours", extra=context)
            return
        log.warning("attempt failed: the next delivery tries again", extra=context)
        raise RedeliverLater(f"task {task.task_id}: {exc.code}, attempt {task.attempts}")
    # An unusable answer that came twice will not be fixed by asking again.
    retryable = exc.retryable and not exc.once
    error = TaskError(code=exc.code, message=exc.message, retryable=retryable)
    kept = _finish(task, lease_owner, error=error)
    log.warning("task failed", extra={**context, "retryable": retryable})
    if kept and retryable:
        _dead_letter(task.task_id, reason=exc.code)


def _dead_letter(task_id: str, *, reason: str) -> None:
    try:
        queue.dead_letter(task_id, reason=reason)
    except Exception:
        # The task's outcome is written already; the dead letter is the operators'
        # copy of it, not worth a redelivery (which would find the task finished).
        log.exception("dead letter not published", extra={"task_id": task_id})


def _write_strategy(task: TaskRecord, progress: ProgressWriter) -> gemini.StrategyAnswer:
    pdf = task.request.pdf
    if pdf is None:
        progress("writing_strategy", "Writing the strategy", 20)
        return gemini.generate_strategy(
            task.request, on_progress=progress, on_text=progress.add_text
        )
    progress("reading_sources", "Reading the PDF", 10)
    with gemini_files.pdf_for_gemini(pdf, task_id=task.task_id) as file:
        progress("writing_strategy", "Writing the strategy", 20)
        return gemini.generate_strategy(
            task.request, file_parts=[file.part()], on_progress=progress, on_text=progress.add_text
        )


def _add_image(task: TaskRecord, result: TaskResult) -> None:
    """Draw and store the preview; a failure is recorded, the strategy is kept."""
    try:
        image = gemini.generate_image(result.strategy)
        gcs_uri = uploads.store_preview(task.task_id, image.data, image.mime_type)
    except gemini.GeminiError as exc:
        result.image_error = TaskError(code=exc.code, message=exc.message, retryable=exc.retryable)
        log.warning("preview image failed", extra={"task_id": task.task_id, "code": exc.code})
        return
    result.image = ImageRef(
        gcs_uri=gcs_uri, mime_type=image.mime_type, width=image.width, height=image.height
    )
    result.usage = result.usage + image.usage


def _finish(
    task: TaskRecord,
    lease_owner: str,
    *,
    result: TaskResult | None = None,
    error: TaskError | None = None,
) -> bool:
    kept = tasks.finish_task(
        task.task_id, lease_owner=lease_owner, now=_now(), result=result, error=error
    )
    if not kept:
        # Cancelled, or taken over after our lease expired: the other state wins.
        log.warning("outcome discarded: task no longer ours", extra={"task_id": task.task_id})
    return kept
