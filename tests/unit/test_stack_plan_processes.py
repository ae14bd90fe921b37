"""``dev/stack/`` and the processes it runs: ports in use, kill-part / start-part, and
when a part started again is ready.

The kill-part / start-part test runs a tiny ``http.server`` as a stand-in part; the port
checks bind sockets on loopback only.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev import stack
from dev.stack import commands, plan
from tests.unit.stack_helpers import FakeProc, free_ports_env

# ------------------------------------------------------------------ port checks


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that a listening socket of this test holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_held_port_is_reported_busy(held_port: int) -> None:
    assert not stack.port_is_free(held_port)


def test_the_planner_refuses_a_port_in_use(held_port: int) -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS)) | {"PUBSUB_PORT": str(held_port)}
    problems = stack.busy_ports(plan(env, "test"))
    assert len(problems) == 1
    assert str(held_port) in problems[0]
    assert "pubsub" in problems[0] and "PUBSUB_PORT" in problems[0]


def test_free_ports_raise_no_problem() -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS))
    assert stack.busy_ports(plan(env, "test")) == []


def test_up_refuses_and_starts_nothing_when_a_port_is_taken(
    held_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = free_ports_env(len(stack.PORT_DEFAULTS)) | {"STORAGE_PORT": str(held_port)}
    stack_plan = plan(env, "test", root=tmp_path, python=Path(sys.executable))
    started: list[str] = []
    monkeypatch.setattr(commands, "start_part", lambda spec, log_dir: started.append(spec.name))
    monkeypatch.setattr(commands, "missing_tools", lambda _plan: [])
    assert stack.cmd_up(stack_plan, timeout=1) == 2
    assert started == []
    assert not stack_plan.state_path.exists()
    assert f"port {held_port} (storage) is already in use" in capsys.readouterr().err


# ------------------------------------------------------------------ kill-part / start-part


def test_a_killed_part_starts_again_with_its_env_and_state_follows(tmp_path: Path) -> None:
    port = int(free_ports_env(1)["FIRESTORE_PORT"])
    stack_dir = tmp_path / ".stack" / "test"
    (stack_dir / "logs").mkdir(parents=True)
    url = f"http://127.0.0.1:{port}"
    spec = stack.PartSpec(
        name="web",
        argv=(sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)),
        env={**os.environ, "TB_RESTART_MARK": "kept"},
        cwd=tmp_path,
        ports={"web": port},
        probe=stack.Probe(url=f"{url}/"),
        url=url,
    )
    first = stack.start_part(spec, stack_dir / "logs")
    state_path = stack_dir / "state.json"
    try:
        stack.wait_all_ready([first], 20, time.monotonic())
        stack.write_state(
            state_path, {"name": "test", "status": "up", "parts": {"web": first.record()}}
        )

        killed = stack.kill_part("test", "web", root=tmp_path)
        assert first.proc.wait(timeout=5) == -9  # SIGKILL, no grace
        assert "killed_at" in killed and not stack.part_alive(killed)
        assert stack.healthy_parts(stack.read_state(state_path) or {}) == {"web": (False, False)}
        with pytest.raises(stack.PartError, match="not running"):
            stack.kill_part("test", "web", root=tmp_path)

        again = stack.start_part_again("test", "web", root=tmp_path, timeout=20)
        assert again["pid"] != first.pid and stack.part_alive(again)
        assert again["restarts"] == 1
        environ = Path(f"/proc/{again['pid']}/environ").read_bytes()
        assert b"TB_RESTART_MARK=kept" in environ
        assert stack.read_state(state_path)["parts"]["web"]["pid"] == again["pid"]  # type: ignore[index]
        assert stack.http_get(f"{url}/") is not None
        assert not (stack_dir / "run" / "web.launch.json").exists()
        with pytest.raises(stack.PartError, match="is running"):
            stack.start_part_again("test", "web", root=tmp_path)
    finally:
        state = stack.read_state(state_path)
        if state:
            stack.stop_recorded(state, timeout=5)  # what `down` does
    assert state is not None and not stack.part_alive(state["parts"]["web"])


# ------------------------------------------------------------------ readiness after a restart


def test_a_part_started_again_is_not_ready_on_its_predecessors_log_line(tmp_path: Path) -> None:
    log = tmp_path / "bridge.log"
    log.write_text(f'{{"message": "{stack.BRIDGE_READY_MESSAGE}"}}\nBindException\n')
    spec = stack.PartSpec(
        name="bridge",
        argv=("true",),
        env={},
        cwd=tmp_path,
        ports={},
        probe=stack.Probe(log_line=stack.BRIDGE_READY_MESSAGE, fail_lines=("BindException",)),
    )
    offset = log.stat().st_size
    again = stack.Running(spec, FakeProc(1), log, None, log_offset=offset)  # type: ignore[arg-type]
    assert not stack.check_ready(again)  # neither ready nor failed: the old lines don't count
    with log.open("a") as handle:
        handle.write(f"{stack.BRIDGE_READY_MESSAGE}\n")
    assert stack.check_ready(again)
    first = stack.Running(spec, FakeProc(1), log, None)  # type: ignore[arg-type]
    with pytest.raises(stack.PartFailed, match="BindException"):
        stack.check_ready(first)
