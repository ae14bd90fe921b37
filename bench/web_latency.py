"""Click on "create" to the finished strategy on screen, in Chromium (run by hand).

    .venv/bin/python -m bench.web_latency --stack dev [--tasks 20] [--image]

Drives the web app of a running stack (``make up``) in Debian's Chromium with
Playwright, as a user would: types a brief, clicks the button, and takes the moment
the page shows the COMPLETED strategy (checked on every animation frame, so to about
16 ms). Then reads the task's ``created_at`` and ``completed_at`` from Firestore and
prints p50/p90 of: click → strategy shown, the task itself (created → completed), and
how long after ``completed_at`` the page showed it (issue 17's goal: 150 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

from bench.e2e_latency import load_state, pct

CHROMIUM = Path(os.environ.get("TB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
# The new task's strategy: the panel shows another task than before the click.
SHOWN = """(previous) => {
  const panel = document.querySelector('#task-panel');
  const status = document.querySelector('#task-status')?.dataset.status;
  const strategy = document.querySelector('#strategy');
  const fresh = panel && panel.dataset.taskId && panel.dataset.taskId !== previous;
  return fresh && status === 'COMPLETED' && strategy && !strategy.hidden ? Date.now() : null;
}"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.web_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--image", action="store_true", help="ask for the preview image too")
    args = parser.parse_args(argv)

    env = load_state(args.stack)["env"]
    for key in ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        os.environ[key] = env[key]
    from google.cloud import firestore

    db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    config = json.dumps(
        {
            "projectId": env["GOOGLE_CLOUD_PROJECT"],
            "apiKey": "demo-api-key",
            "authEmulatorUrl": env["AUTH_EMULATOR_URL"],
            "firestoreEmulatorHost": env["FIRESTORE_EMULATOR_HOST"],
            "submitUrl": env["SUBMIT_URL"],
            "statusUrl": env["STATUS_URL"],
        }
    )
    marker = f"web-{uuid.uuid4().hex[:8]}"
    shown_after_click: list[float] = []
    task_took: list[float] = []
    shown_after_end: list[float] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for index in range(args.tasks):
            if index % 10 == 0:  # a fresh user every 10 tasks (the per-user caps)
                context = browser.new_context(viewport={"width": 1280, "height": 900})

                def answer_config(route: Route) -> None:
                    route.fulfill(status=200, content_type="application/json", body=config)

                context.route("**/dist/config.json", answer_config)
                page = context.new_page()
                page.goto(env["WEB_URL"] + "/")
                page.wait_for_function("document.body.dataset.uid", timeout=30_000)
            page.fill("#brief", f"Bench web {index} {marker}")
            page.set_checked("#image", args.image)
            # Wait for the page to be idle (the previous task's panel settled), then click.
            page.wait_for_function("!document.querySelector('#submit').disabled")
            previous = page.locator("#task-panel").get_attribute("data-task-id") or ""
            clicked = page.evaluate(
                "() => { document.querySelector('#submit').click(); return Date.now(); }"
            )
            shown = page.wait_for_function(
                SHOWN, arg=previous, polling="raf", timeout=60_000
            ).json_value()
            task_id = page.locator("#task-panel").get_attribute("data-task-id")
            doc = db.collection("tasks").document(str(task_id)).get().to_dict() or {}
            created = doc["created_at"].timestamp() * 1000
            completed = doc["completed_at"].timestamp() * 1000
            shown_after_click.append((shown - clicked) / 1000)
            task_took.append((completed - created) / 1000)
            shown_after_end.append((shown - completed) / 1000)
        browser.close()

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {pct(values, 0.5) * 1000:.0f} ms | {pct(values, 0.9) * 1000:.0f} ms |"

    print(f"\n{args.tasks} tasks ({'with' if args.image else 'without'} image), stack {args.stack}")
    print("| | p50 | p90 |\n|---|---|---|")
    print(row("click -> strategy shown", shown_after_click))
    print(row("task: created_at -> completed_at", task_took))
    print(row("completed_at -> shown", shown_after_end))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
