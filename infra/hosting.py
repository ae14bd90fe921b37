"""The web app's response headers on Firebase Hosting, Content-Security-Policy included.

firebase.json holds the headers that never change (nosniff, Referrer-Policy,
X-Frame-Options, Cache-Control). The Content-Security-Policy names the backends the app
talks to, and the functions' URLs are known only once they are deployed, so it is made
here, from the same values the web build gets (SUBMIT_URL, STATUS_URL, App Check on or
off), and added to a copy of firebase.json's ``hosting`` section:

- infra/deploy.sh writes that copy for the deployed URLs and deploys Hosting with it:

      python3 infra/hosting.py --submit-url URL --status-url URL [--app-check] --out FILE

- the local stack (dev/stack/plan.py) writes one for its own functions and emulators,
  which its web server (dev/web_server.py) serves like Hosting does, so the browser
  tests run under the same policy.

Standard library only: deploy.sh runs it with the operator's python3.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
FIREBASE_JSON = REPO / "firebase.json"
CSP_HEADER = "Content-Security-Policy"

# What the Firebase SDKs call in production (the emulators stand in for them locally).
IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"  # Auth: anonymous sign-up
SECURETOKEN_API = "https://securetoken.googleapis.com"  # Auth: ID token refresh
FIRESTORE = "https://firestore.googleapis.com"  # the task listeners (WebChannel)
CLOUD_STORAGE = "https://storage.googleapis.com"  # PUT of a large PDF to its session
# App Check (only with a reCAPTCHA Enterprise site key, docs/deploy.md "App Check"):
# the token exchange, and reCAPTCHA Enterprise's loader, its code and its frame, as
# Google's reCAPTCHA FAQ lists them (paths, not whole hosts).
APP_CHECK_EXCHANGE = "https://content-firebaseappcheck.googleapis.com"
RECAPTCHA_SCRIPTS = ("https://www.google.com/recaptcha/", "https://www.gstatic.com/recaptcha/")
RECAPTCHA_FRAMES = ("https://www.google.com/recaptcha/", "https://recaptcha.google.com/recaptcha/")

# A source expression is one token of the header: nothing that would end it or start
# another (whitespace, ';', ','), no quotes.
_SOURCE_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&()*+=%-]+")


@dataclass(frozen=True)
class Backends:
    """Where the web app's requests go: its two functions and the Google APIs (or the
    emulators standing in for them), and whether App Check may be on."""

    submit_url: str
    status_url: str
    auth: tuple[str, ...] = (IDENTITY_TOOLKIT, SECURETOKEN_API)
    firestore: str = FIRESTORE
    storage: str = CLOUD_STORAGE
    app_check: bool = False


def source_of(url: str) -> str:
    """A URL as a CSP source: its origin, and its path as a prefix when it has one
    (``https://europe-west1-p.cloudfunctions.net/task_status/`` lets the app reach that
    function and not the project's others). Refuses what is not an http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"a backend URL has no credentials, query or fragment: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    path = parts.path.rstrip("/")
    source = f"{origin}{path}/" if path else origin
    if not _SOURCE_CHARS.fullmatch(source):
        raise ValueError(f"cannot name {url!r} in a Content-Security-Policy")
    return source


def _unique(sources: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(sources))


def csp_directives(backends: Backends) -> dict[str, list[str]]:
    """The policy, directive by directive (docs/deploy.md, "Content-Security-Policy")."""
    connect = [
        "'self'",  # dist/config.json
        source_of(backends.submit_url),  # POST /v1/strategies, /v1/uploads
        source_of(backends.status_url),  # the preview image, DELETE (cancel)
        *(source_of(url) for url in backends.auth),
        source_of(backends.firestore),
        source_of(backends.storage),
    ]
    scripts = ["'self'"]  # dist/app.js only: no inline script, no eval
    frames = ["'none'"]  # the search suggestions' srcdoc frame is not fetched
    if backends.app_check:
        connect.append(APP_CHECK_EXCHANGE)
        scripts += RECAPTCHA_SCRIPTS
        frames = list(RECAPTCHA_FRAMES)
    return {
        "default-src": ["'self'"],
        "script-src": scripts,
        # Google's search suggestions (shown as rendered, Gemini API terms) carry a
        # <style> element, and their srcdoc frame inherits this policy. Styles cannot
        # send anything out: images, fonts and requests go only where listed here.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "blob:"],  # the preview: fetched, shown as an object URL
        "connect-src": _unique(connect),
        "frame-src": frames,
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }


def format_policy(directives: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def content_security_policy(backends: Backends) -> str:
    return format_policy(csp_directives(backends))


def parse_policy(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: sources} (for tests and checks)."""
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed.setdefault(words[0].lower(), words[1:])
    return parsed


def emulator_backends(
    *,
    submit_url: str,
    status_url: str,
    auth_emulator_url: str,
    firestore_emulator_host: str,
    storage_emulator_host: str,
) -> Backends:
    """The local stack's backends: its functions, and the emulators in place of the
    Google APIs. App Check may be on (the page's config decides; the browser tests
    turn it on with a stand-in reCAPTCHA), so its sources are allowed."""
    firestore = firestore_emulator_host
    if "://" not in firestore:  # FIRESTORE_EMULATOR_HOST is host:port
        firestore = f"http://{firestore}"
    return Backends(
        submit_url=submit_url,
        status_url=status_url,
        auth=(auth_emulator_url,),
        firestore=firestore,
        storage=storage_emulator_host,
        app_check=True,
    )


def load_firebase_json(path: Path = FIREBASE_JSON) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def hosting_config(
    firebase_json: Mapping[str, Any], backends: Backends, *, public: Path | None = None
) -> dict[str, Any]:
    """firebase.json's ``hosting`` section, its ``**`` header rule with the policy for
    ``backends`` added, as a config of its own. ``public``: the absolute path of the
    site's files (firebase-tools takes an absolute ``public`` from a config elsewhere)."""
    hosting = copy.deepcopy(dict(firebase_json["hosting"]))
    if public is not None:
        hosting["public"] = str(public.resolve())
    rules: list[dict[str, Any]] = hosting.setdefault("headers", [])
    rule = next((rule for rule in rules if rule.get("source") == "**"), None)
    if rule is None:
        rule = {"source": "**", "headers": []}
        rules.insert(0, rule)
    rule["headers"] = [
        header for header in rule.get("headers", []) if header["key"].lower() != CSP_HEADER.lower()
    ]
    rule["headers"].append({"key": CSP_HEADER, "value": content_security_policy(backends)})
    return {"hosting": hosting}


# ------------------------------------------------------------ Hosting's globs, for dev

_GLOB_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|@?\([^)]*\)|\{[^}]*\}|[^*?({@]+|.")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A Hosting ``source`` / ``ignore`` glob as a regex on a path without its leading
    '/': ``**`` any path, ``**/`` any directories (or none), ``*`` and ``?`` within one
    segment, ``@(a|b)`` and ``{a,b}`` alternatives. Dotfiles match like any file."""
    out = []
    for part in _GLOB_TOKEN.findall(pattern.lstrip("/")):
        if part == "**/":
            out.append("(?:.*/)?")
        elif part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.endswith(")") and "(" in part:
            choices = part[part.index("(") + 1 : -1].split("|")
            out.append("(?:" + "|".join(re.escape(choice) for choice in choices) + ")")
        elif part.startswith("{") and part.endswith("}"):
            out.append("(?:" + "|".join(re.escape(c) for c in part[1:-1].split(",")) + ")")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def glob_matches(pattern: str, path: str) -> bool:
    return glob_regex(pattern).fullmatch(path.lstrip("/")) is not None


def headers_for(hosting: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    """The headers Hosting adds to the answer for ``path`` (the request's path), rule by
    rule in order; a later rule's value for the same key wins."""
    chosen: dict[str, tuple[str, str]] = {}
    for rule in hosting.get("headers", []):
        if glob_matches(rule["source"], path):
            for header in rule["headers"]:
                chosen[header["key"].lower()] = (header["key"], header["value"])
    return list(chosen.values())


def rewrite_for(hosting: Mapping[str, Any], path: str) -> str | None:
    """The file Hosting serves for a path no file answers (a ``rewrites`` rule's
    destination: a shared strategy's /s/{id} is the app's page), or None."""
    for rule in hosting.get("rewrites", []):
        if "destination" in rule and glob_matches(rule["source"], path):
            destination: str = rule["destination"]
            return destination
    return None


def is_ignored(hosting: Mapping[str, Any], relative_file: str) -> bool:
    """Whether Hosting leaves this file of ``public`` out of the site."""
    return any(glob_matches(pattern, relative_file) for pattern in hosting.get("ignore", []))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the web app's Firebase Hosting config, Content-Security-Policy included."
    )
    parser.add_argument("--submit-url", required=True)
    parser.add_argument("--status-url", required=True)
    parser.add_argument(
        "--app-check", action="store_true", help="the web app has a reCAPTCHA Enterprise key"
    )
    parser.add_argument("--firebase-json", type=Path, default=FIREBASE_JSON)
    parser.add_argument("--public", type=Path, default=REPO / "web")
    parser.add_argument("--out", type=Path, required=True, help="the Hosting config to write")
    args = parser.parse_args(argv)
    backends = Backends(
        submit_url=args.submit_url, status_url=args.status_url, app_check=args.app_check
    )
    try:
        config = hosting_config(
            load_firebase_json(args.firebase_json), backends, public=args.public
        )
    except ValueError as error:
        sys.stderr.write(f"infra/hosting.py: {error}\n")
        return 2
    args.out.write_text(json.dumps(config, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
