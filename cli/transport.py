"""HTTP with retries: connection failures and 5xx answers are tried again with backoff.

A retried request is sent as it was, headers included, so a submit keeps its
``Idempotency-Key`` and never makes two tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from cli.errors import CliError, Exit

ATTEMPTS = 4
BACKOFF_S = 0.5  # then 1, 2 (doubling)
MAX_RETRY_AFTER_S = 10.0  # a longer Retry-After on a 503 is not waited for
RETRY_STATUSES = frozenset({500, 502, 503, 504})


def describe(error: httpx.HTTPError, url: str) -> str:
    where = urlsplit(url).netloc or url
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect to {where}"
    if isinstance(error, httpx.TimeoutException):
        return f"{where} did not answer in time"
    return f"{where}: {type(error).__name__}: {error}"


def retry_delay(attempt: int, response: httpx.Response | None) -> float:
    """Seconds before try ``attempt + 1``: the server's Retry-After when short, else backoff."""
    delay = BACKOFF_S * 2**attempt
    if response is not None:
        try:
            asked = float(response.headers.get("Retry-After", ""))
        except ValueError:
            asked = 0.0
        if 0 < asked <= MAX_RETRY_AFTER_S:
            delay = max(delay, asked)
    return delay


def send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] | None = None,
    hint: str = "",
    **kwargs: Any,
) -> httpx.Response:
    """One request, tried up to ``attempts`` times; a network failure raises ``CliError``."""
    pause = sleep or time.sleep
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = http.request(method, url, **kwargs)
        except httpx.TransportError as error:
            if last:
                raise CliError(describe(error, url) + hint, Exit.NETWORK) from None
            pause(retry_delay(attempt, None))
            continue
        if response.status_code not in RETRY_STATUSES or last:
            return response
        pause(retry_delay(attempt, response))
    raise AssertionError("unreachable")  # pragma: no cover
