"""The worker's size from measurement and the Gemini tier (docs/capacity.md).

    python3 infra/capacity.py [--rpm 2000 --tpm 4000000] [--concurrency 8]

What a task costs the worker is measured (``TaskProfile``: bench/load.py for the time,
bench/worker_memory.py for the memory); what the project may ask of Gemini is its
tier's requests and tokens a minute (GEMINI_REQUESTS_PER_MINUTE,
GEMINI_TOKENS_PER_MINUTE). From both follow the worker's memory, its max instances
(instances x concurrency = the tasks Gemini's quota keeps busy) and the highest
MAX_TASKS_PER_MINUTE the tier sustains; infra/deploy_env.py deploys with them and
refuses a minute cap the tier cannot serve. Pure arithmetic, no Google call.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

# Cloud Run's memory sizes for a function with 1 vCPU (MiB), smallest first.
MEMORY_SIZES_MIB = (512, 1024, 2048, 4096)
# Headroom over the measured peak: a PDF of MAX_PDF_BYTES streamed through, GC slack.
MEMORY_HEADROOM = 1.5


@dataclass(frozen=True)
class TaskProfile:
    """What one task asks of the worker and of Gemini (docs/capacity.md, measured)."""

    # Worker seconds a task holds a slot: the strategy call (15 s ± 5 s in the load
    # model, streamed), the image for a share of tasks, Firestore writes.
    seconds: float = 20.0
    # Gemini text-model requests a task makes (one streamed strategy call; SDK retries
    # on 429/5xx add to it only when Gemini refuses).
    requests: float = 1.0
    # Input + output tokens of a task (docs/deploy.md's example: a brief, a 10-page
    # PDF, fetched pages in; a strategy with its thinking out).
    tokens: int = 21_000
    # Worker memory (bench/worker_memory.py, docs/capacity.md): an instance with the
    # clients loaded, and a task in flight at its largest (a 45 MiB PDF streamed to the
    # File API: +48 MiB; a task without a PDF: +0.4 MiB).
    base_mib: float = 205.0
    mib_per_task: float = 48.0


@dataclass(frozen=True)
class WorkerSize:
    tasks_per_minute: float  # what the tier sustains (inf when it is not given)
    slots: int  # tasks in flight that keeps the tier busy
    max_instances: int
    concurrency: int
    memory_mib: int


def sustained_tasks_per_minute(rpm: int, tpm: int, profile: TaskProfile) -> float:
    """Tasks a minute the tier serves: the smaller of its requests and tokens a minute
    over a task's share (0 for a limit means not given)."""
    limits = []
    if rpm:
        limits.append(rpm / profile.requests)
    if tpm:
        limits.append(tpm / profile.tokens)
    return min(limits) if limits else math.inf


def memory_mib(concurrency: int, profile: TaskProfile) -> int:
    """The smallest Cloud Run memory size that holds ``concurrency`` tasks with headroom."""
    needed = (profile.base_mib + concurrency * profile.mib_per_task) * MEMORY_HEADROOM
    for size in MEMORY_SIZES_MIB:
        if size >= needed:
            return size
    raise ValueError(
        f"{concurrency} tasks an instance need {needed:.0f} MiB, more than "
        f"{MEMORY_SIZES_MIB[-1]} MiB at 1 vCPU: lower the concurrency"
    )


def worker_size(
    rpm: int,
    tpm: int,
    concurrency: int,
    default_max_instances: int,
    profile: TaskProfile | None = None,
) -> WorkerSize:
    """The worker for a tier: as many instances as keep its quota busy, no more (the
    default when the tier is not given)."""
    profile = profile or TaskProfile()
    per_minute = sustained_tasks_per_minute(rpm, tpm, profile)
    if math.isinf(per_minute):
        slots = default_max_instances * concurrency
        instances = default_max_instances
    else:
        slots = max(1, math.ceil(per_minute / 60 * profile.seconds))
        instances = max(1, math.ceil(slots / concurrency))
    return WorkerSize(per_minute, slots, instances, concurrency, memory_mib(concurrency, profile))


def problems(max_tasks_per_minute: int, size: WorkerSize) -> list[str]:
    """What a deployment with these numbers would get wrong."""
    found = []
    if not math.isinf(size.tasks_per_minute) and (
        max_tasks_per_minute == 0 or max_tasks_per_minute > size.tasks_per_minute
    ):
        found.append(
            f"MAX_TASKS_PER_MINUTE={max_tasks_per_minute or 'off'} lets in more than the "
            f"Gemini tier serves ({size.tasks_per_minute:.0f} tasks a minute): tasks would "
            f"wait for Gemini's 429s to clear; set it to at most {int(size.tasks_per_minute)}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rpm", type=int, default=0, help="the tier's requests a minute")
    parser.add_argument("--tpm", type=int, default=0, help="the tier's tokens a minute")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-instances", type=int, default=100, help="without a tier")
    args = parser.parse_args(argv)
    size = worker_size(args.rpm, args.tpm, args.concurrency, args.max_instances)
    profile = TaskProfile()
    lines = [
        f"tasks a minute the tier serves: {size.tasks_per_minute:.0f}",
        f"worker: {size.max_instances} instances x {size.concurrency} tasks, "
        f"{size.memory_mib} MiB each ({size.slots} tasks in flight)",
    ]
    for rate in (10, 100, 1000):
        need = math.ceil(rate * profile.seconds)
        lines.append(
            f"{rate} tasks a second: {need} in flight, "
            f"{math.ceil(need / size.concurrency)} instances, "
            f"{rate * 60 * profile.requests:.0f} requests and "
            f"{rate * 60 * profile.tokens / 1e6:.1f} M tokens a minute"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
