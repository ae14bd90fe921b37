"""The strategy grows on the page as Gemini writes it (issue 11, item 5), end to end:
the stand-in streams the strategy slowly, the worker writes drafts, the page's
listener renders them before the task is COMPLETED."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import WebApp
from tests.e2e.helpers import submit_brief

pytestmark = pytest.mark.e2e

# Records what the page showed while the task was not finished yet.
RECORD_DRAFTS = """
() => {
  window.__drafts = [];
  const strategy = document.getElementById('strategy');
  const badge = document.getElementById('task-status');
  const note = () => {
    if (strategy.dataset.draft === 'true' && !strategy.hidden) {
      window.__drafts.push({
        status: badge.dataset.status,
        name: document.getElementById('strategy-name').textContent,
        steps: document.querySelectorAll('#strategy-steps li').length,
      });
    }
  };
  new MutationObserver(note).observe(document.body, {
    attributes: true, childList: true, subtree: true, characterData: true,
  });
}
"""


@pytest.fixture
def slow_stream(stack_env: dict[str, str]) -> Iterator[None]:
    base = stack_env["GEMINI_STANDIN_URL"]
    with httpx.Client(timeout=10) as client:
        previous = client.get(f"{base}/_standin/config").json()
        client.post(
            f"{base}/_standin/config", json={"stream_pieces": 12, "stream_pause_s": 0.4}
        ).raise_for_status()
        try:
            yield
        finally:
            client.post(f"{base}/_standin/config", json=previous).raise_for_status()


def test_the_strategy_is_rendered_as_it_is_written(
    web: WebApp, marker: str, slow_stream: None
) -> None:
    page = web.open()
    page.evaluate(RECORD_DRAFTS)
    submit_brief(page, f"Pottery workshop in Timisoara ({marker})", image=False)

    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=30_000
    )
    drafts = page.evaluate("window.__drafts")
    assert drafts, "no draft was shown before the strategy was finished"
    assert all(d["status"] == "PROCESSING" for d in drafts)
    final_name = page.locator("#strategy-name").text_content() or ""
    named = [d["name"] for d in drafts if d["name"]]
    assert named and all(final_name.startswith(name.strip()) for name in named), (
        named,
        final_name,
    )
    # The finished strategy replaced the draft.
    expect(page.locator("#strategy")).to_have_attribute("data-draft", "false")
    expect(page.locator("#draft-note")).to_be_hidden()
