"""``python -m tests.infra.standin gcloud|firebase|node ARGS...``: what the wrappers run."""

import sys

from .firebase import firebase
from .gcloud import gcloud
from .node import node


def main() -> int:
    tool, *argv = sys.argv[1:]
    return {"gcloud": gcloud, "firebase": firebase, "node": node}[tool](argv)


sys.exit(main())
