"""``shared.progress.ProgressWriter`` and ``shared.drafts``: what a user sees while a
task runs, written by a background thread that never holds up the Gemini stream."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest
from google.api_core.exceptions import RetryError

from shared.drafts import draft_from_json
from shared.models import MarketingStrategy, Progress, StrategyDraft
from shared.progress import ProgressWriter

STRATEGY = {
    "strategy_name": "Cafe Campus",
    "target_audience": "Students in Cluj",
    "required_budget": 4200.0,
    "steps": [
        {"step_number": 1, "description": "Open with a tasting week"},
        {"step_number": 2, "description": "Weekly open-mic evenings"},
    ],
    "channels": [{"name": "Instagram", "rationale": "Where students are", "budget_share": 0.6}],
    "kpis": ["300 loyalty cards"],
    "timeline_weeks": 12,
}


class FakeStore:
    """Records every write; can hold writes back or make them fail."""

    def __init__(self) -> None:
        self.writes: list[tuple[Progress, StrategyDraft | None]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.failure: Exception | None = None

    def write(
        self, task_id: str, progress: Progress, draft: StrategyDraft | None, now: datetime
    ) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.failure is not None:
            raise self.failure
        self.writes.append((progress, draft))


def writer(store: FakeStore, interval_s: float = 0.05) -> ProgressWriter:
    return ProgressWriter(
        "task-1",
        store.write,
        first_stage="reading_sources",
        min_interval_s=interval_s,
        write_timeout_s=5,
    )


def finishes(action: object, timeout_s: float = 5) -> bool:
    """Run ``action`` in a thread: did it return (rather than hang on a held write)?"""
    thread = threading.Thread(target=action)  # type: ignore[arg-type]
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive()


# ------------------------------------------------------------------ the writer


def test_each_new_stage_is_written_before_the_call_returns_and_in_order() -> None:
    store = FakeStore()
    progress = writer(store)
    for stage in ("writing_strategy", "drawing_image", "saving"):
        progress(stage, stage, 50)
        assert store.writes[-1][0].stage == stage
    progress.close()
    assert [p.stage for p, _ in store.writes] == ["writing_strategy", "drawing_image", "saving"]


def test_updates_within_a_stage_are_coalesced_to_the_latest() -> None:
    store = FakeStore()
    progress = writer(store, interval_s=3600)  # nothing within the stage is due
    progress("writing_strategy", "Writing", 20)
    for percent in range(21, 60):
        progress("writing_strategy", "Writing", percent)
    progress("drawing_image", "Drawing", 70)  # a stage brings the latest state along
    progress.close()
    assert [(p.stage, p.percent) for p, _ in store.writes] == [
        ("writing_strategy", 20),
        ("drawing_image", 70),
    ]


def test_the_first_draft_is_written_at_once_and_later_text_waits_its_turn() -> None:
    """Issue 17: the user's first words need not wait out the interval; after them,
    the throttle applies; text that holds no draft yet is no reason to write."""
    store = FakeStore()
    progress = writer(store, interval_s=3600)
    progress("writing_strategy", "Writing", 20)
    written = len(store.writes)
    progress.add_text("{")  # nothing to show yet
    progress.add_text('"strategy_name": "Cafe')
    deadline = time.monotonic() + 5
    while len(store.writes) == written and time.monotonic() < deadline:
        time.sleep(0.01)
    drafts = [d for _, d in store.writes[written:]]
    assert len(drafts) == 1 and drafts[0] is not None  # "{" alone wrote nothing
    assert drafts[0].strategy_name is not None
    progress.add_text(' Campus", "target_audience": "Students"')
    time.sleep(0.2)  # the thread would have written by now, were it not throttled
    assert len(store.writes) == written + 1
    progress.close()


def test_a_held_write_never_blocks_the_stream() -> None:
    store = FakeStore()
    progress = writer(store, interval_s=0)
    store.release.clear()
    progress.add_text('{"strategy_name": "Ca')
    assert store.entered.wait(5)  # the thread is inside a write that does not end

    def stream() -> None:
        for n in range(200):
            progress.add_text("x")
            progress("reading_sources", "Reading", n % 100)

    assert finishes(stream), "updates within a stage waited for a held write"
    store.release.set()
    progress.close()


def test_a_failing_write_is_dropped_and_the_next_goes_on() -> None:
    store = FakeStore()
    store.failure = RetryError("deadline exceeded", cause=TimeoutError())
    progress = writer(store)
    progress("writing_strategy", "Writing", 20)  # fails inside the thread, not here
    store.failure = None
    progress("drawing_image", "Drawing", 70)
    progress.close()
    assert [p.stage for p, _ in store.writes] == ["drawing_image"]


def test_nothing_is_written_after_close() -> None:
    store = FakeStore()
    progress = writer(store, interval_s=3600)
    progress("writing_strategy", "Writing", 20)
    progress("writing_strategy", "Writing", 40)  # pending, not yet due
    progress.close()
    count = len(store.writes)
    progress.add_text('{"strategy_name": "late"}')
    progress("saving", "Saving", 95)
    assert len(store.writes) == count


def test_the_draft_is_parsed_from_the_streamed_text() -> None:
    store = FakeStore()
    progress = writer(store, interval_s=0)
    text = json.dumps(STRATEGY)
    cut = text.index('"Weekly')  # mid-way through the second step
    for i in range(0, cut, 7):
        progress.add_text(text[i : min(i + 7, cut)])
    progress("drawing_image", "Drawing", 70)
    progress.close()
    drafts = [d for _, d in store.writes if d is not None]
    assert drafts
    last = drafts[-1]
    assert last.strategy_name == "Cafe Campus"
    assert last.steps is not None and [s.step_number for s in last.steps] == [1]


# ------------------------------------------------------------------ drafts


def test_draft_fields_are_those_of_the_strategy() -> None:
    assert set(StrategyDraft.model_fields) == set(MarketingStrategy.model_fields)


@pytest.mark.parametrize("text", ["", "{", "[1, 2", "null", '"text'])
def test_nothing_usable_yet_is_no_draft(text: str) -> None:
    assert draft_from_json(text) is None


def test_a_growing_string_is_shown_as_far_as_it_goes() -> None:
    draft = draft_from_json('{"strategy_name": "Cafe Cam')
    assert draft is not None and draft.strategy_name == "Cafe Cam"


def test_list_items_are_kept_up_to_the_first_incomplete_one() -> None:
    text = json.dumps(STRATEGY)
    draft = draft_from_json(text[: text.index('"step_number": 2') + 5])
    assert draft is not None
    assert draft.steps is not None and len(draft.steps) == 1
    assert draft.required_budget == 4200.0
    assert draft.channels is None  # not reached yet


def test_invalid_values_are_left_out_not_fatal() -> None:
    draft = draft_from_json(
        '{"strategy_name": "X", "required_budget": -5, "channels": ['
        '{"name": "IG", "rationale": "r", "budget_share": 0.5},'
        '{"name": "TV", "rationale": "r", "budget_share": 1.5}]}'
    )
    assert draft is not None
    assert draft.required_budget is None  # below 0: not a budget
    assert draft.channels is not None and [c.name for c in draft.channels] == ["IG"]


def test_the_complete_json_gives_the_whole_strategy() -> None:
    draft = draft_from_json(json.dumps(STRATEGY))
    assert draft is not None
    # Every field that the JSON has, as the strategy itself validates it.
    full = MarketingStrategy.model_validate(STRATEGY).model_dump()
    assert draft.model_dump(exclude_none=True) == {k: full[k] for k in STRATEGY}
