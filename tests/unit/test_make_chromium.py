"""`make test` sets up its browser itself (issue 16): the Makefile's `chromium` target,
run with a PATH of stand-ins (`id`, `sudo`, `apt-get`) so that nothing is installed.

It checks the path the browser tests launch (TB_CHROMIUM, else Debian's
/usr/bin/chromium: tests/e2e/conftest.py), not PATH; here that default is a path under
tmp_path (DEBIAN_CHROMIUM=...), where the stand-in apt-get puts its "browser"."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = ["update -qq", "install -y -qq chromium"]


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def run_target(
    tmp_path: Path,
    uid: int,
    sudo_ok: bool,
    chromium: bool = False,
    *,
    on_path: bool = False,
    tb_chromium: Path | None = None,
    apt_installs: bool = True,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`make chromium` on a PATH of stand-ins; returns the run and apt-get's call log.

    ``chromium``: the default browser path exists; ``on_path``: a `chromium` on PATH;
    ``apt_installs``: `apt-get install` puts the browser at the default path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash", "chmod"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    debian_chromium = tmp_path / "usr" / "bin" / "chromium"
    calls = tmp_path / "apt-get.log"
    install = f'[ "$1" = install ] && printf "#!/bin/sh\\n" >"{debian_chromium}" && '
    install += f'chmod +x "{debian_chromium}"\nexit 0\n'
    shims = {
        "id": f"#!/bin/sh\necho {uid}\n",
        # `sudo -n true` asks whether sudo needs a password; `sudo CMD` runs it.
        "sudo": f'#!/bin/sh\n[ "$1" = -n ] && exit {0 if sudo_ok else 1}\nexec "$@"\n',
        "apt-get": f'#!/bin/sh\necho "$*" >>"{calls}"\n' + (install if apt_installs else ""),
    }
    if on_path:
        shims["chromium"] = "#!/bin/sh\n"
    for name, text in shims.items():
        executable(bin_dir / name, text)
    debian_chromium.parent.mkdir(parents=True)
    if chromium:
        executable(debian_chromium, "#!/bin/sh\n")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    if tb_chromium is not None:
        env["TB_CHROMIUM"] = str(tb_chromium)
    run = subprocess.run(
        ["make", "--no-print-directory", "-s", "chromium", f"DEBIAN_CHROMIUM={debian_chromium}"],
        cwd=ROOT,
        env=env,
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
    assert "TB_CHROMIUM" in run.stderr  # the way out off Debian
    assert not calls.exists()  # nothing was attempted


def test_root_installs_debian_chromium_with_apt(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == INSTALLED


def test_sudo_without_a_password_installs_too(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=1000, sudo_ok=True)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == INSTALLED
    assert "sudo apt-get install" in run.stdout


def test_nothing_happens_when_chromium_is_there(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, chromium=True)
    assert run.returncode == 0, run.stderr
    assert not calls.exists()


def test_a_chromium_on_path_elsewhere_is_not_the_one_the_tests_launch(tmp_path: Path) -> None:
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, on_path=True)
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == INSTALLED


def test_an_install_that_leaves_the_path_empty_fails(tmp_path: Path) -> None:
    # Ubuntu, say: its `chromium` is a snap or nothing, never /usr/bin/chromium from apt.
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, apt_installs=False)
    assert run.returncode != 0
    assert calls.read_text().splitlines() == INSTALLED
    assert "still missing" in run.stderr and "TB_CHROMIUM" in run.stderr


def test_a_tb_chromium_that_is_there_is_enough(tmp_path: Path) -> None:
    browser = tmp_path / "opt" / "chromium"
    executable(browser, "#!/bin/sh\n")
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, tb_chromium=browser)
    assert run.returncode == 0, run.stderr
    assert not calls.exists()  # Debian's path is not needed then


def test_a_tb_chromium_that_is_missing_is_named_and_nothing_installed(tmp_path: Path) -> None:
    browser = tmp_path / "opt" / "chromium"
    run, calls = run_target(tmp_path, uid=0, sudo_ok=False, chromium=True, tb_chromium=browser)
    assert run.returncode != 0
    assert f"TB_CHROMIUM={browser} is not an executable file" in run.stderr
    assert not calls.exists()
