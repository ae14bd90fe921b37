"""How ``make test`` splits the suite to run it in parallel (see the Makefile).

Most stack tests are apart by construction (a user, a marker, a task id of their own),
so they run side by side on xdist workers against the test stack. A test that changes
what others see (kills a function process, changes the stand-in's global config,
counts every message published or every object uploaded, races project-wide caps) is
``exclusive``: ``make test`` runs those one at a time on a second stack of their own,
beside the parallel run. Exclusive are the tests marked so, and those that use a
fixture that sees or changes the whole stack.

Groups (``--dist loadgroup``): a test file runs on one worker, so that its module
fixtures (a deploy rehearsal, a pip install) run once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXCLUSIVE_FIXTURES = frozenset(
    {"topic_probe", "dead_letter_probe", "restore_standin", "slow_stream"}
)
# Reads what the whole run recorded (make test runs it after the rest).
RUNS_LAST = Path(__file__).parent / "infra" / "test_index_coverage.py"


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if EXCLUSIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.exclusive)
        group = Path(str(item.path)).relative_to(config.rootpath)
        item.add_marker(pytest.mark.xdist_group(str(group)))
    # A plain `pytest` (one process) runs the files with heavy tests (hundreds of tasks
    # at once) last, whole, and the index coverage after everything; `make test` runs
    # them in phases of their own (tests/run_suite.sh).
    heavy_files = {item.path for item in items if item.get_closest_marker("heavy")}
    items.sort(key=lambda item: (item.path == RUNS_LAST, item.path in heavy_files))
