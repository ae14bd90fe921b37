"""``make demo``: one brief through the local stack with the ``tinkerbell`` command.

Runs the commands a user would type after ``make up`` (``cli.tinkerbell.run``, the
same code as the installed ``tinkerbell``), printing each one first: ``login``
(anonymous, in the Auth emulator; kept in the user's config directory like any
``tinkerbell login``, so that ``tinkerbell list`` shows the demo's tasks afterwards),
then ``submit --wait`` of a Romanian brief with a URL and the client's own PDF,
which follows the task live through a Firestore listener as that user and prints
the strategy. The exit code is that of ``submit`` (0 when the task COMPLETED).
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

from cli.sample_pdf import sample_pdf
from cli.tinkerbell import run

SAMPLE_URL = "https://example.com/"
SAMPLE_BRIEF = (
    "Lansăm o cafenea de specialitate în Cluj-Napoca, lângă campusul universitar. "
    "Vrem să atragem studenți și tineri profesioniști în primele trei luni, "
    "cu un buget modest și accent pe comunitate și evenimente."
)


def show(args: list[str]) -> None:
    shown = [a if len(a) < 60 else a[:57] + "..." for a in args]
    print(f"\n$ tinkerbell {shlex.join(shown)}", flush=True)


def main() -> int:
    show(["login"])
    code = run(["login"])
    if code:
        return code
    with tempfile.TemporaryDirectory(prefix="tinkerbell-demo-") as directory:
        pdf = Path(directory) / "cafeneaua-boaba.pdf"
        pdf.write_bytes(sample_pdf())
        submit = ["submit", "--wait", "--language", "ro", "--url", SAMPLE_URL]
        submit += ["--pdf", str(pdf), SAMPLE_BRIEF]
        show(submit)
        code = run(submit)
    print("\n(`pip install .` installs this as `tinkerbell`; here: python -m cli.tinkerbell)")
    return code


if __name__ == "__main__":
    sys.exit(main())
