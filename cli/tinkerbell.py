"""``python -m cli.tinkerbell``: submit briefs and follow tasks over the HTTP API.

Configuration: ``TINKERBELL_SUBMIT_URL``, ``TINKERBELL_STATUS_URL`` and
``TINKERBELL_TOKEN`` (a Firebase ID token), or the matching options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cli.render import render_strategy
from shared.models import MarketingStrategy, TaskStatus

POLL_INTERVAL_S = 1.0


def _client(args: argparse.Namespace) -> httpx.Client:
    if not args.token:
        sys.exit("a Firebase ID token is needed: --token or TINKERBELL_TOKEN")
    return httpx.Client(headers={"Authorization": f"Bearer {args.token}"}, timeout=60)


def submit(args: argparse.Namespace) -> dict[str, Any]:
    brief = Path(args.brief_file).read_text() if args.brief_file else args.brief
    fields: dict[str, Any] = {"brief": brief, "language": args.language}
    fields |= {"image": not args.no_image, "grounding": args.grounding}
    with _client(args) as client:
        url = f"{args.submit_url.rstrip('/')}/v1/strategies"
        if args.pdf:
            parts: list[tuple[str, Any]] = [
                (k, (None, json.dumps(v) if isinstance(v, bool) else v)) for k, v in fields.items()
            ]
            parts += [("urls", (None, u)) for u in args.url]
            pdf = Path(args.pdf)
            parts.append(("pdf", (pdf.name, pdf.read_bytes(), "application/pdf")))
            answer = client.post(url, files=parts)
        else:
            answer = client.post(url, json=fields | {"urls": args.url})
    return _checked(answer)


def _checked(answer: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    if answer.status_code >= 400:
        error = body.get("error", {})
        sys.exit(f"error {answer.status_code} {error.get('code')}: {error.get('message')}")
    return body


def status(args: argparse.Namespace, task_id: str) -> dict[str, Any]:
    with _client(args) as client:
        return _checked(client.get(f"{args.status_url.rstrip('/')}/v1/tasks/{task_id}"))


def wait(args: argparse.Namespace, task_id: str) -> dict[str, Any]:
    """Poll the status function (clients with Firestore access use a listener)."""
    last = None
    while True:
        task = status(args, task_id)
        progress = task.get("progress") or {}
        line = f"{task['status']:<10} {progress.get('stage', '')} {progress.get('percent', '')}"
        if line != last:
            print(line, file=sys.stderr)
            last = line
        if TaskStatus(task["status"]).is_terminal:
            return task
        time.sleep(POLL_INTERVAL_S)


def print_task(task: dict[str, Any]) -> None:
    if task.get("result"):
        print(render_strategy(MarketingStrategy.model_validate(task["result"]["strategy"])))
    elif task.get("error"):
        print(f"{task['status']}: {task['error']['message']}")
    else:
        print(json.dumps(task, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tinkerbell", description=__doc__)
    parser.add_argument("--submit-url", default=os.environ.get("TINKERBELL_SUBMIT_URL", ""))
    parser.add_argument("--status-url", default=os.environ.get("TINKERBELL_STATUS_URL", ""))
    parser.add_argument("--token", default=os.environ.get("TINKERBELL_TOKEN"))
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("submit", help="submit a brief and wait for the strategy")
    sub.add_argument("--brief", default="")
    sub.add_argument("--brief-file")
    sub.add_argument("--pdf")
    sub.add_argument("--url", action="append", default=[])
    sub.add_argument("--language", default="en")
    sub.add_argument("--no-image", action="store_true")
    sub.add_argument("--grounding", action="store_true")
    sub.add_argument("--no-wait", action="store_true")
    for name in ("status", "wait", "cancel"):
        commands.add_parser(name).add_argument("task_id")
    args = parser.parse_args(argv)

    if args.command == "submit":
        accepted = submit(args)
        print(json.dumps(accepted), file=sys.stderr)
        if not args.no_wait:
            print_task(wait(args, accepted["task_id"]))
    elif args.command == "status":
        print(json.dumps(status(args, args.task_id), indent=2, ensure_ascii=False))
    elif args.command == "wait":
        print_task(wait(args, args.task_id))
    elif args.command == "cancel":
        with _client(args) as client:
            url = f"{args.status_url.rstrip('/')}/v1/tasks/{args.task_id}"
            print(json.dumps(_checked(client.delete(url)), indent=2))


if __name__ == "__main__":
    main()
