"""Records every Firestore RPC a process makes, for bench/load.py (run by hand).

Loaded by each Python process of a stack started with ``bench/firestore_log`` on
PYTHONPATH, and active only when TINKERBELL_FIRESTORE_LOG names a directory: each
process appends JSON lines to ``<dir>/<pid>.jsonl``, one per RPC of the generated
Firestore client (``FirestoreClient``, which every document get, query, batch and
transaction of the library goes through): the time, the RPC, whether it ran in a
transaction, the documents a commit wrote, whether it failed, and the call site in
``shared/`` or ``functions/`` (module:function). The real client runs unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

LOG_DIR = os.environ.get("TINKERBELL_FIRESTORE_LOG")
REPO = Path(__file__).resolve().parents[2]
OUR_CODE = tuple(str(REPO / part) + os.sep for part in ("shared", "functions"))
TARGET = "google.cloud.firestore_v1.services.firestore.client"
RPCS = (
    "commit",
    "begin_transaction",
    "rollback",
    "batch_get_documents",
    "run_query",
    "run_aggregation_query",
)
_lock = threading.Lock()
_file: Any = None


def call_site() -> str:
    """The innermost frame in our code, as ``shared/tasks.py:claim_task``."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(OUR_CODE):
            return f"{Path(name).relative_to(REPO)}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def written(request: Any) -> list[str]:
    """The document paths (below ``documents/``) a commit request writes."""
    writes = request.get("writes", []) if isinstance(request, dict) else request.writes
    paths = []
    for write in writes:
        if isinstance(write, dict):
            name = (
                (write.get("update") or {}).get("name")
                or write.get("delete")
                or (write.get("transform") or {}).get("document")
            )
        else:
            kind = write._pb.WhichOneof("operation")
            if kind == "update":
                name = write.update.name
            elif kind == "delete":
                name = write.delete
            else:
                name = write.transform.document if kind == "transform" else ""
        if name:
            paths.append(name.split("/documents/", 1)[-1])
    return paths


def in_transaction(request: Any) -> bool:
    if isinstance(request, dict):
        return bool(request.get("transaction"))
    return bool(getattr(request, "transaction", b""))


def append(line: dict[str, Any]) -> None:
    global _file
    with _lock:
        if _file is None:
            assert LOG_DIR is not None
            Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
            _file = (Path(LOG_DIR) / f"{os.getpid()}.jsonl").open("a", buffering=1)
        _file.write(json.dumps(line) + "\n")


def wrap(rpc: str, method: Any) -> Any:
    def recorded(self: Any, request: Any = None, *args: Any, **kwargs: Any) -> Any:
        line: dict[str, Any] = {"t": time.time(), "rpc": rpc, "site": call_site()}
        if rpc == "commit" and request is not None:
            line["docs"] = written(request)
            line["tx"] = in_transaction(request)
        elif rpc in ("batch_get_documents", "run_query") and request is not None:
            line["tx"] = in_transaction(request)
        try:
            return method(self, request, *args, **kwargs)
        except Exception as exc:
            line["error"] = type(exc).__name__
            raise
        finally:
            append(line)

    return recorded


def patch(module: Any) -> None:
    client = module.FirestoreClient
    for rpc in RPCS:
        setattr(client, rpc, wrap(rpc, getattr(client, rpc)))


class _Finder(importlib.abc.MetaPathFinder):
    """Patches the generated client as soon as it is imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if LOG_DIR:
    sys.meta_path.insert(0, _Finder())
