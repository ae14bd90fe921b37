"""The local stack's web server: ``web/`` as Firebase Hosting serves it.

It reads a Hosting config (the ``hosting`` section infra/hosting.py makes from
firebase.json: the stack writes one for its own functions and emulators) and answers
like Hosting: the files of ``public`` but the ignored ones, ``/`` as ``index.html``, the
``rewrites`` for paths no file answers, no directory listings, and every answer with
the headers of the rules its path matches, the Content-Security-Policy included. So the
browser tests run under the policy that deployed Hosting sends. A small WSGI app
(``HostingApp``) on werkzeug's threaded server.

    python -m dev.web_server --config .stack/dev/hosting.json --bind 127.0.0.1 --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.security import safe_join
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.utils import redirect, send_from_directory
from werkzeug.wrappers import Request, Response

from infra.hosting import headers_for, is_ignored, rewrite_for

# What werkzeug's send_file adds and Hosting does not: caching is the config's rules'.
NOT_FROM_HOSTING = ("Cache-Control", "Content-Disposition")


class HostingApp:
    """``public`` of a Hosting config, GET and HEAD only, each answer (errors and
    redirects too) with the headers of the rules its path matches."""

    def __init__(self, hosting: Mapping[str, Any]) -> None:
        self.hosting = hosting
        self.public = str(Path(hosting["public"]))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.answer(request)
        except HTTPException as error:
            response = error.get_response(environ)
        for key, value in headers_for(self.hosting, request.path):
            response.headers[key] = value
        return response(environ, start_response)

    def answer(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
        relative = posixpath.normpath(request.path).lstrip("/")
        if relative == ".":
            relative = ""
        local = safe_join(self.public, relative)
        if local is None:
            raise NotFound()
        if not Path(local).exists() and (destination := rewrite_for(self.hosting, request.path)):
            # No file here: Hosting's rewrites (a shared strategy's /s/{id} is the app).
            relative = destination.lstrip("/")
            local = safe_join(self.public, relative)
            if local is None:
                raise NotFound()
        directory = Path(local).is_dir()
        file = posixpath.join(relative, "index.html") if directory else relative
        if is_ignored(self.hosting, file):
            raise NotFound()
        if request.path.endswith("/") and not directory:
            raise NotFound()  # a file is no directory
        if directory and not request.path.endswith("/"):
            query = request.query_string.decode("latin-1")
            location = quote(request.path + "/") + (f"?{query}" if query else "")
            return redirect(location, 301)
        response = send_from_directory(self.public, file, request.environ)
        for header in NOT_FROM_HOSTING:
            del response.headers[header]
        return response


class PlainLogHandler(WSGIRequestHandler):
    """werkzeug's handler with its access log (stderr: the part's log file) uncoloured."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in self.requestline)
        self.log("info", '"%s" %s %s', line, code, size)


def serve(config: Mapping[str, Any], bind: str, port: int) -> None:
    """Serve until interrupted, each request logged to stderr."""
    hosting = config["hosting"]
    app = HostingApp(hosting)
    server = make_server(bind, port, app, threaded=True, request_handler=PlainLogHandler)
    print(f"dev.web_server: {hosting['public']} on http://{bind}:{port}", flush=True)
    server.serve_forever()  # returns on KeyboardInterrupt, the socket closed


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
