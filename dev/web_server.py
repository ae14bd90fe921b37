"""The local stack's web server: ``web/`` as Firebase Hosting serves it.

It reads a Hosting config (the ``hosting`` section infra/hosting.py makes from
firebase.json: the stack writes one for its own functions and emulators) and answers
like Hosting: the files of ``public`` but the ignored ones, ``/`` as ``index.html``, no
directory listings, and every answer with the headers of the rules its path matches,
the Content-Security-Policy included. So the browser tests run under the policy that
deployed Hosting sends.

    python -m dev.web_server --config .stack/dev/hosting.json --bind 127.0.0.1 --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import posixpath
from collections.abc import Mapping
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from infra.hosting import headers_for, is_ignored


class HostingHandler(SimpleHTTPRequestHandler):
    hosting: Mapping[str, Any] = {}

    def _relative_file(self) -> str:
        path = posixpath.normpath(unquote(urlsplit(self.path).path))
        relative = path.lstrip("/")
        if relative in ("", "."):
            return "index.html"
        if (Path(self.directory) / relative).is_dir():
            return posixpath.join(relative, "index.html")
        return relative

    def send_head(self) -> Any:
        if is_ignored(self.hosting, self._relative_file()):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        return super().send_head()

    def list_directory(self, path: Any) -> Any:
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def end_headers(self) -> None:
        for key, value in headers_for(self.hosting, urlsplit(self.path).path):
            self.send_header(key, value)
        super().end_headers()


def serve(config: Mapping[str, Any], bind: str, port: int) -> None:
    hosting = config["hosting"]
    handler = type("Handler", (HostingHandler,), {"hosting": hosting})
    server = ThreadingHTTPServer((bind, port), partial(handler, directory=hosting["public"]))
    print(f"dev.web_server: {hosting['public']} on http://{bind}:{port}", flush=True)
    with server:
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve web/ as Firebase Hosting does.")
    parser.add_argument("--config", type=Path, required=True, help="a Hosting config (JSON)")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        serve(json.loads(args.config.read_text()), args.bind, args.port)


if __name__ == "__main__":
    main()
