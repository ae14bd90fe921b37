"""The operator's kill switch (docs/costs.md): stop new tasks at once, without a deploy.

    GOOGLE_CLOUD_PROJECT=my-project python3 -m infra.service pause|resume|status

Writes ``{SERVICE_CONFIG_COLLECTION}/service`` {paused: true|false} with your
Application Default Credentials (roles/datastore.user on the project is enough). Every
submit instance reads it at most every SERVICE_CONFIG_CACHE_S (5 s): from then on new
tasks get 503 ``paused``; tasks already accepted finish.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from shared import clients
from shared.pause import SERVICE_DOCUMENT
from shared.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m infra.service", description=__doc__)
    parser.add_argument("action", choices=("pause", "resume", "status"))
    args = parser.parse_args(argv)
    settings = get_settings()
    document = (
        clients.firestore()
        .collection(settings.service_config_collection)
        .document(SERVICE_DOCUMENT)
    )
    if args.action != "status":
        document.set(
            {"paused": args.action == "pause", "changed_at": datetime.now(UTC)}, merge=True
        )
    snapshot = document.get()
    paused = bool((snapshot.to_dict() or {}).get("paused")) or settings.paused
    where = f"project {settings.google_cloud_project}"
    state = "paused (new tasks get 503)" if paused else "accepting tasks"
    sys.stdout.write(f"{where}: {state}\n")
    if settings.paused:
        sys.stderr.write("PAUSED=true is set in this environment's settings too\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
