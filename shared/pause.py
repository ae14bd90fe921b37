"""The operator's kill switch (SPEC §6): new tasks get 503 ``paused``; tasks in flight
finish. ``PAUSED=true`` in the settings, or at once, without a deploy, in Firestore:
``{SERVICE_CONFIG_COLLECTION}/service`` with ``paused: true`` (``python -m infra.service
pause``). Each instance reads that document at most every SERVICE_CONFIG_CACHE_S."""

from __future__ import annotations

import threading
import time

from shared import clients
from shared.errors import Paused
from shared.log import get_logger
from shared.settings import get_settings

SERVICE_DOCUMENT = "service"
log = get_logger("pause")
_lock = threading.Lock()
# (paused, monotonic time it was read); the last answer is kept if a read fails.
_known: tuple[bool, float] | None = None


def is_paused() -> bool:
    global _known
    settings = get_settings()
    if settings.paused:
        return True
    with _lock:
        known = _known
        if known is not None and time.monotonic() - known[1] < settings.service_config_cache_s:
            return known[0]
        try:
            snapshot = (
                clients.firestore()
                .collection(settings.service_config_collection)
                .document(SERVICE_DOCUMENT)
                .get()
            )
        except Exception:
            # Not a reason to refuse work: the create that follows needs Firestore anyway.
            log.exception("service config not read: the last known state holds")
            return known[0] if known is not None else False
        paused = bool((snapshot.to_dict() or {}).get("paused")) if snapshot.exists else False
        _known = (paused, time.monotonic())
        return paused


def check_accepting() -> None:
    if is_paused():
        raise Paused(
            "the service takes no new tasks for now (paused by its operator); tasks already "
            "accepted finish. Try again later."
        )


def forget() -> None:
    """Read the document again at the next request (tests)."""
    global _known
    with _lock:
        _known = None
