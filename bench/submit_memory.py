"""Peak memory of the submit function for a hostile 31 MiB JSON body (issue 18).

    .venv/bin/python -m bench.submit_memory [--stack .stack/dev/state.json] [--mib 31]

Sends ``{"brief": "x", "urls": ["a", "a", ...]}`` of the given size (4 bytes a URL: the
body that cost a submit instance ~770 MiB to parse before JSON bodies were capped)
and reads the peak resident set (VmHWM) of the submit processes before and after.
Goal: under 64 MiB of growth. Restart the part first for a clean high-water mark:
``python -m dev.stack restart-part submit --name NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import httpx

from bench.worker_memory import _group_pids, _peak_rss_kib

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--stack", default=os.environ.get("TB_STACK_STATE", ".stack/dev/state.json")
    )
    parser.add_argument("--mib", type=int, default=31)
    args = parser.parse_args()
    state = json.loads(Path(args.stack).read_text())
    env = state["env"]
    pids = _group_pids(state["parts"]["submit"]["pgid"])
    body = b'{"brief": "x", "urls": [' + b'"a",' * (args.mib * MIB // 4) + b'"a"]}'
    with httpx.Client(timeout=120) as http:
        token = http.post(
            f"{env['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "bench"},
            json={"returnSecureToken": True},
        ).json()["idToken"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # A small request first: the process's own warm-up is not the body's cost.
        http.post(f"{env['SUBMIT_URL']}/v1/strategies", headers=headers, content=b"{}")
        before = _peak_rss_kib(pids)
        started = time.monotonic()
        answer = http.post(f"{env['SUBMIT_URL']}/v1/strategies", headers=headers, content=body)
        took = time.monotonic() - started
        after = _peak_rss_kib(pids)
    grown = sum(after[p] - before.get(p, 0) for p in after) / 1024
    print(f"{len(body) / MIB:.0f} MiB JSON body: HTTP {answer.status_code} in {took:.2f} s")
    print(f"  {answer.text[:160]}")
    print(f"submit peak RSS {sum(before.values()) / 1024:.0f} MiB before, +{grown:.0f} MiB")


if __name__ == "__main__":
    main()
