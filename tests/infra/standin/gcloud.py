"""gcloud: parse with the installed gcloud, simulate, print with gcloud's own printer."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# Imported for what they register in the command table.
from . import gcloud_compute, gcloud_data, gcloud_projects  # noqa: F401
from .calls import GCLOUD, Call
from .common import ApiError, FailedAfterChanges, Json, append, ask_parser, locked_state, seq


def render(result: Any, fmt: str, single: bool) -> str:
    request: Json = {"op": "render", "format": fmt}
    request["resource" if single else "resources"] = result
    answer = ask_parser(request)
    if not answer["ok"]:
        raise SystemExit(f"render failed: {answer['error']}")
    out: str = answer["out"]
    return out


def gcloud(argv: list[str]) -> int:
    answer = ask_parser({"op": "parse", "argv": argv, "cwd": str(Path.cwd())})
    record = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "gcloud",
        "argv": argv,
        "command": answer.get("command"),
    }
    append("calls.jsonl", record)
    if not answer["ok"]:
        append("rejects.jsonl", {**record, "error": answer["error"]})
        print(answer["error"], file=sys.stderr)
        return 2
    command_path: str = answer["command"]
    handler = GCLOUD.get(command_path)
    if handler is None:
        append("rejects.jsonl", {**record, "error": "command not simulated"})
        print(f"rehearsal: {command_path} is not simulated", file=sys.stderr)
        return 3
    try:
        failure: ApiError | None = None
        with locked_state() as state:
            call = Call(state, command_path, answer["args"])
            call.require_apis()
            try:
                result = handler(call)
            except FailedAfterChanges as exc:
                failure = exc  # the project keeps what the call did before it failed
        if failure is not None:
            raise failure
    except ApiError as exc:
        print(f"ERROR: ({command_path}) {exc}", file=sys.stderr)
        return 1
    if result is None:
        print(f"Updated [{command_path}].", file=sys.stderr)
        return 0
    listing = isinstance(result, list)
    if listing and call.arg("--filter"):
        keep = ask_parser({"op": "filter", "expression": call.arg("--filter"), "resources": result})
        result = [r for r, k in zip(result, keep["keep"], strict=True) if k]
    if listing and call.arg("--limit"):
        result = result[: call.arg("--limit")]
    fmt = call.arg("--format") or ("yaml" if not listing else "json")
    sys.stdout.write(render(result, fmt, single=not listing))
    return 0
