"""What the user sees while a task runs: ``progress`` and the strategy ``draft``.

Both are advisory: a lost write costs nothing, and a slow one must never slow the
Gemini call that streams meanwhile. So one background thread per attempt does the
writing, always of the latest state: each new stage at once (the caller waits for
it, so that stages arrive in order), the first draft as soon as the streamed text
holds one (the user's first words), and after it updates within a stage (percent,
the draft) at most once per PROGRESS_MIN_INTERVAL_S, since listeners pay per write.
Streamed text that holds no draft yet is no reason to write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.drafts import draft_from_json
from shared.log import get_logger
from shared.models import Progress, StrategyDraft
from shared.settings import get_settings

log = get_logger("progress")

# (task_id, progress, draft or None, now): writes them (its answer is not used).
WriteProgress = Callable[[str, Progress, StrategyDraft | None, datetime], object]


@dataclass
class _State:
    progress: Progress
    text: str = ""
    stage_changed: bool = False
    progress_changed: bool = False  # by the worker's call; else only new text is pending
    draft_shown: bool = False  # a draft was written: from now on the interval applies


class ProgressWriter:
    def __init__(
        self,
        task_id: str,
        write: WriteProgress,
        *,
        first_stage: str,
        min_interval_s: float | None = None,
        write_timeout_s: float | None = None,
    ) -> None:
        settings = get_settings()
        self.task_id = task_id
        self._write = write
        self._interval_s = (
            settings.progress_min_interval_s if min_interval_s is None else min_interval_s
        )
        self._write_timeout_s = (
            settings.progress_write_timeout_s if write_timeout_s is None else write_timeout_s
        )
        # The claim has just written the first stage.
        self._state = _State(Progress(stage=first_stage))
        self._pending = False
        self._chunks: list[str] = []
        self._last_write = time.monotonic()
        self._written_seq = 0
        self._seq = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name=f"progress-{task_id[:8]}", daemon=True
        )
        self._thread.start()

    # -- the worker's side ------------------------------------------------------------

    def __call__(self, stage: str, message: str, percent: int) -> None:
        """A new stage is written before this returns (within the write deadline);
        an update within a stage is only queued."""
        with self._changed:
            new_stage = stage != self._state.progress.stage
            self._state.progress = Progress(stage=stage, message=message, percent=percent)
            self._state.stage_changed |= new_stage
            self._state.progress_changed = True
            self._pending = True
            self._seq += 1
            wanted = self._seq
            self._changed.notify_all()
            if new_stage:
                self._changed.wait_for(
                    lambda: self._written_seq >= wanted or self._closed, self._write_timeout_s
                )

    def add_text(self, piece: str) -> None:
        """More of the strategy's JSON arrived (never blocks the stream)."""
        if not piece:
            return
        with self._changed:
            self._chunks.append(piece)
            self._pending = True
            self._seq += 1
            self._changed.notify_all()

    def close(self) -> None:
        """No more writes: let an in-flight one end (within its deadline), drop the rest.
        Called before the outcome is written, so that no progress lands after it."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(self._write_timeout_s)

    # -- the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(self._due_or_closed)
                if self._closed:
                    return
                wait = self._interval_s - (time.monotonic() - self._last_write)
                throttled = self._state.draft_shown or not self._chunks
                if not self._state.stage_changed and throttled and wait > 0:
                    # Within a stage: wait out the interval, unless a stage comes.
                    self._changed.wait_for(lambda: self._closed or self._state.stage_changed, wait)
                    if self._closed:
                        return
                progress, text, seq = self._state.progress, "".join(self._chunks), self._seq
                progress_changed = self._state.progress_changed
                self._state.stage_changed = False
                self._state.progress_changed = False
                self._pending = False
            draft = self._draft(text)
            if draft is not None or progress_changed:
                self._write_now(progress, draft)
            with self._changed:
                if draft is not None:
                    self._state.draft_shown = True
                self._last_write = time.monotonic()
                self._written_seq = seq
                self._changed.notify_all()

    def _due_or_closed(self) -> bool:
        return self._closed or self._pending

    def _draft(self, text: str) -> StrategyDraft | None:
        try:
            return draft_from_json(text) if text else None
        except Exception:
            log.warning("draft not parsed", extra={"task_id": self.task_id})
            return None

    def _write_now(self, progress: Progress, draft: StrategyDraft | None) -> None:
        try:
            self._write(self.task_id, progress, draft, datetime.now(UTC))
        except Exception:
            # Advisory: a failed write (an API error, a RetryError past its deadline...)
            # must never cost the attempt, nor the Gemini call streaming meanwhile.
            log.warning("progress not recorded", extra={"task_id": self.task_id})
