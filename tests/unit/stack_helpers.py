"""Helpers of the dev/stack/ unit tests (test_stack_plan*.py): ports free a moment
ago, and a process that is alive without being one."""

from __future__ import annotations

import socket

from dev import stack


def free_ports_env(count: int) -> dict[str, str]:
    """Port variables set to ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    variables = [variable for variable, _default in stack.PORT_DEFAULTS.values()]
    return dict(zip(variables, map(str, ports), strict=False))


class FakeProc:
    """Stands for a Popen: alive, with a pid no real process of ours has."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode = None

    def poll(self) -> None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return 0
