"""Gemini calls that can be stopped mid-read (issue 18: a cancel stops the bill).

A streaming call blocks its thread in a socket read for as long as the model thinks;
httpx has no way to end that read from outside, and a stream left open is generated
(and billed) to its end. So the Gemini client's transport hands out connections whose
reads are registered by thread: ``abort(thread)`` shuts the socket that thread reads
from (``shutdown`` wakes a blocked ``recv`` at once, TLS or not), and any later read in
that thread fails at once. The SDK then sees a transport error, the connection is
closed, and Gemini stops generating for it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

# thread -> the stream it is reading from now; threads told to stop, until they end
# (by the thread, not its ident: a new thread may get a finished one's ident; weakly, so
# that a thread told to stop just after its call ended is not kept for ever).
_reading: dict[threading.Thread, Any] = {}
_aborted: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_lock = threading.Lock()


class CallAborted(ConnectionAbortedError):
    """The call's reads were stopped from outside (its task was cancelled or lost)."""


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        me = threading.current_thread()
        with _lock:
            if me in _aborted:
                raise CallAborted("the call was stopped")
            _reading[me] = self._inner
        try:
            return self._inner.read(max_bytes, timeout)
        finally:
            with _lock:
                _reading.pop(me, None)
            # A read woken by the shutdown returns b"" or fails: either way, say why.
            if me in _aborted:
                raise CallAborted("the call was stopped")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if threading.current_thread() in _aborted:
            raise CallAborted("the call was stopped")
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(super().connect_tcp(*args, **kwargs))


def transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own transport, its connections' reads abortable by thread."""
    made = httpx.HTTPTransport(limits=limits)
    # httpx builds the pool without a way to pass the network backend in.
    made._pool._network_backend = _Backend()
    return made


def abort(thread: threading.Thread) -> None:
    """Stop ``thread``'s Gemini call: its current read ends now, later ones at once."""
    with _lock:
        _aborted.add(thread)
        stream = _reading.get(thread)
    if stream is None:
        return
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)


def thread_done() -> None:
    """Called by a call's thread as it ends: nothing is left to stop."""
    with _lock:
        _aborted.discard(threading.current_thread())


class Stopper:
    """Stops the Gemini calls of one processing attempt, at once and for good: when its
    task is cancelled or taken over while it streams (the worker's task watch)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()
            threads = list(self._threads)
        for thread in threads:
            abort(thread)

    def enter(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)
            stopped = self.stopped.is_set()
        if stopped:
            abort(thread)

    def leave(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)


# The attempt's stopper, seen by the Gemini calls made in its context.
current: ContextVar[Stopper | None] = ContextVar("gemini_stopper", default=None)
