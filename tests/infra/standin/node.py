"""node: only ``node web/build.mjs`` (the web build), recorded, nothing written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .common import REPO, Json, append, seq

BUILD_ENV = (
    "SUBMIT_URL",
    "STATUS_URL",
    "GOOGLE_CLOUD_PROJECT",
    "FIREBASE_API_KEY",
    "FIREBASE_AUTH_DOMAIN",
    "FIREBASE_APP_ID",
)


def node(argv: list[str]) -> int:
    record: Json = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "node",
        "argv": argv,
        "command": " ".join(argv),
    }
    append("calls.jsonl", record)
    problems = []
    if argv != ["web/build.mjs"] or Path.cwd() != REPO:
        problems.append("expected `node web/build.mjs` from the repo root")
    missing = [name for name in BUILD_ENV if not os.environ.get(name)]
    if missing:
        problems.append(f"web/build.mjs needs {missing}")
    emulated = [n for n in ("AUTH_EMULATOR_URL", "FIRESTORE_EMULATOR_HOST") if n in os.environ]
    if emulated:
        problems.append(f"emulator settings reach the production build: {emulated}")
    if problems:
        append("rejects.jsonl", {**record, "error": "; ".join(problems)})
        print("; ".join(problems), file=sys.stderr)
        return 1
    append("web_builds.jsonl", {name: os.environ[name] for name in BUILD_ENV})
    print("web/build.mjs: web/dist/app.js (rehearsal: nothing written)", file=sys.stderr)
    return 0
