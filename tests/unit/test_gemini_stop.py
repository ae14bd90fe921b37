"""A cancel stops the bill (issue 18): the worker's stopper ends a Gemini stream that is
blocked in a read, through the real SDK and the real HTTP client, against the stand-in
streaming slowly; later reads of that call fail at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dev.gemini_standin import StandinServer
from shared import abortable, gemini
from shared.models import TaskRequest
from tests.standin_helpers import running_standin
from tests.unit.test_gemini_backend import standin_settings

# Between the two events of the answer: far longer than a stop may take, and within the
# call's deadline (GEMINI_STRATEGY_TIMEOUT_S, 6 s in the test settings).
PAUSE_S = 4.0


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


def test_a_stopped_stream_ends_at_once_not_at_its_next_event(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer
) -> None:
    standin_settings(monkeypatch, standin)
    httpx.post(
        f"{standin.url}/_standin/config", json={"stream_pieces": 2, "stream_pause_s": PAUSE_S}
    ).raise_for_status()
    stopper = abortable.Stopper()
    first_text = threading.Event()
    outcome: list[Any] = []

    def call() -> None:
        abortable.current.set(stopper)
        try:
            gemini.generate_strategy(
                TaskRequest(brief="Un atelier de ceramică din Sibiu", image=False),
                on_text=lambda _text: first_text.set(),
            )
            outcome.append("finished")
        except gemini.GeminiError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert first_text.wait(20), "the stream never started"
    # The call now waits PAUSE_S in a socket read for the next event.
    stopped_at = time.monotonic()
    stopper.stop()
    caller.join(PAUSE_S / 2)
    ended_in = time.monotonic() - stopped_at
    assert not caller.is_alive(), "the stopped call still waits for the next event"
    assert ended_in < PAUSE_S / 2
    (error,) = outcome
    assert isinstance(error, gemini.GeminiError) and error.code == gemini.STOPPED
    assert not error.retryable


def test_a_call_started_after_the_stop_never_reaches_gemini(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer
) -> None:
    standin_settings(monkeypatch, standin)
    stopper = abortable.Stopper()
    stopper.stop()
    token = abortable.current.set(stopper)
    try:
        with pytest.raises(gemini.GeminiError) as stopped:
            gemini.generate_strategy(TaskRequest(brief="Brutărie în Iași", image=False))
    finally:
        abortable.current.reset(token)
    assert stopped.value.code == gemini.STOPPED


def test_a_call_without_a_stopper_is_untouched(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer
) -> None:
    standin_settings(monkeypatch, standin)
    answer = gemini.generate_strategy(TaskRequest(brief="Florărie în Brașov", image=False))
    assert answer.strategy.strategy_name
