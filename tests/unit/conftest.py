"""Fixtures of the unit tests that drive the in-process Gemini stand-in: a module
defines ``standin`` (how its stand-in runs), these give it a control client and a
reset before each test (``pytestmark = pytest.mark.usefixtures("fresh_standin")``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dev.gemini_standin import StandinServer


@pytest.fixture(scope="module")
def control(standin: StandinServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, timeout=10) as http:
        yield http


@pytest.fixture
def fresh_standin(control: httpx.Client) -> None:
    control.post("/_standin/reset").raise_for_status()
