"""`make test` sets up its browser itself (issue 16): the Makefile's `chromium` target,
run with a PATH of stand-ins (`id`, `sudo`, `apt-get`) so that nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_target(
    tmp_path: Path, uid: int, sudo_ok: bool, chromium: bool = False
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`make chromium` on a PATH of stand-ins; returns the run and apt-get's call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "apt-get.log"
    shims = {
        "id": f"#!/bin/sh\necho {uid}\n",
        # `sudo -n true` asks whether sudo needs a password; `sudo CMD` runs it.
        "sudo": f'#!/bin/sh\n[ "$1" = -n ] && exit {0 if sudo_ok else 1}\nexec "$@"\n',
        "apt-get": f'#!/bin/sh\necho "$*" >>"{calls}"\n',
    }
    if chromium:
        shims["chromium"] = "#!/bin/sh\n"
    for name, text in shims.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    run = subprocess.run(
        ["make", "--no-print-directory", "-s", "chromium"],
        cwd=ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return run, calls


def test_a_user_who_may_not_install_gets_the_one_command(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=1000, sudo_ok=False)
    assert run.returncode != 0
    assert "sudo apt-get install -y chromium" in run.stderr
    assert not calls.exists()  # nothing was attempted


def test_root_installs_debian_chromium_with_apt(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq chromium"]


def test_sudo_without_a_password_installs_too(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=1000, sudo_ok=True)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq chromium"]
    assert "sudo apt-get install" in run.stdout


def test_nothing_happens_when_chromium_is_there(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, chromium=True)
    assert run.returncode == 0, run.stderr
    assert not calls.exists()
