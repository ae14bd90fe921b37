"""infra/hosting.py: the web app's Content-Security-Policy and Hosting config, made at
deploy time from the functions' URLs; the local stack's copy and its web server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.stack import plan
from dev.stack.plan import HOSTING_CONFIG
from dev.web_server import HostingApp
from infra import hosting
from infra.hosting import Backends, content_security_policy, parse_policy
from tests.local_servers import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = "https://europe-west1-acme.cloudfunctions.net/submit_strategy"
STATUS = "https://europe-west1-acme.cloudfunctions.net/task_status"
DEPLOYED = Backends(submit_url=SUBMIT, status_url=STATUS)


def policy_of(backends: Backends) -> dict[str, list[str]]:
    return parse_policy(content_security_policy(backends))


# ------------------------------------------------------------------ the policy


def test_the_deployed_policy_is_strict() -> None:
    policy = policy_of(DEPLOYED)
    assert policy["default-src"] == ["'self'"]
    # Scripts: the bundle only. No inline script, no eval, no other host.
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-src"] == ["'none'"]
    # The preview image reaches the page as an object URL of the fetched bytes.
    assert policy["img-src"] == ["'self'", "blob:"]
    for sources in policy.values():
        assert "'unsafe-eval'" not in sources
        assert "*" not in sources and not any(source.startswith("https://*") for source in sources)
    assert "'unsafe-inline'" not in policy["script-src"] + policy["default-src"]


def test_connect_src_names_exactly_the_backends_of_the_deployment() -> None:
    assert policy_of(DEPLOYED)["connect-src"] == [
        "'self'",
        f"{SUBMIT}/",  # the function's path as a prefix: not the project's other functions
        f"{STATUS}/",
        "https://identitytoolkit.googleapis.com",
        "https://securetoken.googleapis.com",
        "https://firestore.googleapis.com",
        "https://storage.googleapis.com",
    ]


def test_app_check_adds_recaptcha_and_the_token_exchange_only_when_on() -> None:
    on = policy_of(Backends(submit_url=SUBMIT, status_url=STATUS, app_check=True))
    off = policy_of(DEPLOYED)
    assert on["script-src"] == [
        "'self'",
        "https://www.google.com/recaptcha/",
        "https://www.gstatic.com/recaptcha/",
    ]
    assert on["frame-src"] == [
        "https://www.google.com/recaptcha/",
        "https://recaptcha.google.com/recaptcha/",
    ]
    assert on["connect-src"] == [
        *off["connect-src"],
        "https://content-firebaseappcheck.googleapis.com",
    ]
    assert {k: v for k, v in on.items() if k not in ("script-src", "frame-src", "connect-src")} == {
        k: v for k, v in off.items() if k not in ("script-src", "frame-src", "connect-src")
    }


def test_functions_on_one_origin_or_their_own() -> None:
    run_app = Backends(
        submit_url="https://submit-strategy-abc123-ew.a.run.app",
        status_url="https://API.example.com/tinkerbell/",
    )
    connect = policy_of(run_app)["connect-src"]
    assert connect[1:3] == [
        "https://submit-strategy-abc123-ew.a.run.app",
        "https://api.example.com/tinkerbell/",
    ]
    same = Backends(submit_url="http://127.0.0.1:8001", status_url="http://127.0.0.1:8001/")
    assert policy_of(same)["connect-src"].count("http://127.0.0.1:8001") == 1


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://h.example/a/b", "https://h.example/a/b/"),
        ("https://h.example/a/b/", "https://h.example/a/b/"),
        ("https://h.example", "https://h.example"),
        ("https://h.example/", "https://h.example"),
        ("http://127.0.0.1:18001", "http://127.0.0.1:18001"),
        ("https://h.example:443/x", "https://h.example:443/x/"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_a_backend_url_as_a_source(url: str, source: str) -> None:
    assert hosting.source_of(url) == source


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h.example/x",
        "h.example",
        "https://",
        "https://h.example/x?y=1",
        "https://h.example/x#y",
        "https://user:pw@h.example",
        "https://h.example/a;script-src *",
        "https://h.example/a b",
        "https://h.example/a,b",
        "https://h.example/'unsafe-inline'",
    ],
)
def test_a_url_that_would_change_the_policy_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        hosting.source_of(url)


# ------------------------------------------------------------------ the Hosting config


def test_firebase_json_has_the_fixed_headers_and_no_policy_of_its_own() -> None:
    firebase_json = hosting.load_firebase_json()
    rule = next(r for r in firebase_json["hosting"]["headers"] if r["source"] == "**")
    keys = {header["key"]: header["value"] for header in rule["headers"]}
    assert keys["X-Content-Type-Options"] == "nosniff"
    assert keys["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert keys["X-Frame-Options"] == "DENY"
    # The policy names the deployed functions: deploy.sh adds it (one source, no copy).
    every_key = {
        h["key"].lower() for r in firebase_json["hosting"]["headers"] for h in r["headers"]
    }
    assert "content-security-policy" not in every_key


def test_the_hosting_config_is_firebase_json_with_the_policy_added(tmp_path: Path) -> None:
    firebase_json = hosting.load_firebase_json()
    config = hosting.hosting_config(firebase_json, DEPLOYED, public=ROOT / "web")
    assert set(config) == {"hosting"}
    generated = config["hosting"]
    original = firebase_json["hosting"]
    assert generated["public"] == str(ROOT / "web")
    assert generated["ignore"] == original["ignore"]
    assert generated["headers"][1:] == original["headers"][1:]
    rule = generated["headers"][0]
    assert rule["source"] == "**"
    assert rule["headers"][:-1] == original["headers"][0]["headers"]
    assert rule["headers"][-1] == {
        "key": "Content-Security-Policy",
        "value": content_security_policy(DEPLOYED),
    }
    assert firebase_json == hosting.load_firebase_json()  # the input is left alone
    # Made again (an old policy in the input): still one policy, the new one.
    again = hosting.hosting_config(config, Backends(submit_url=STATUS, status_url=STATUS))
    keys = [h["key"] for h in again["hosting"]["headers"][0]["headers"]]
    assert keys.count("Content-Security-Policy") == 1
    # No "**" rule at all: one is made, first.
    bare = hosting.hosting_config({"hosting": {"public": "web"}}, DEPLOYED)
    assert bare["hosting"]["headers"][0]["source"] == "**"


def test_the_command_deploy_sh_runs(tmp_path: Path) -> None:
    out = tmp_path / "firebase.hosting.json"
    argv = [f"--submit-url={SUBMIT}", f"--status-url={STATUS}", f"--out={out}", "--app-check"]
    assert hosting.main(argv) == 0
    config = json.loads(out.read_text())
    policy = hosting.headers_for(config["hosting"], "/")
    expected = Backends(submit_url=SUBMIT, status_url=STATUS, app_check=True)
    assert ("Content-Security-Policy", content_security_policy(expected)) in policy
    assert Path(config["hosting"]["public"]) == ROOT / "web"
    # A URL that cannot be named in the policy stops the deploy before Hosting.
    bad = [f"--submit-url={SUBMIT}", "--status-url=https://x.example/a b", f"--out={out}.bad"]
    assert hosting.main(bad) == 2
    assert not Path(f"{out}.bad").exists()


def test_firebase_tools_schema_accepts_the_generated_config() -> None:
    pytest.importorskip("jsonschema_rs")
    from tests.infra.standin.firebase import firebase_schema_errors

    config = hosting.hosting_config(hosting.load_firebase_json(), DEPLOYED, public=ROOT / "web")
    assert firebase_schema_errors(config) == []


# ------------------------------------------------------------------ Hosting's globs


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**", "/", True),
        ("**", "/dist/app.js", True),
        ("**/*.@(html|js|css|json)", "/index.html", True),
        ("**/*.@(html|js|css|json)", "/dist/app.js", True),
        ("**/*.@(html|js|css|json)", "/dist/app.js.map", False),
        ("**/*.@(html|js|css|json)", "/", False),
        ("**/*.{png,jpg}", "/a/b.jpg", True),
        ("src/**", "src/app.js", True),
        ("src/**", "dist/src.js", False),
        ("build.mjs", "build.mjs", True),
        ("**/*.map", "dist/app.js.map", True),
        ("**/.*", ".env", True),
        ("**/.*", "a/.git", True),
        ("**/node_modules/**", "node_modules/x/y.js", True),
        ("*.js", "dist/app.js", False),
        ("dist/?pp.js", "dist/app.js", True),
    ],
)
def test_hosting_globs(pattern: str, path: str, matches: bool) -> None:
    assert hosting.glob_matches(pattern, path) is matches


# ------------------------------------------------------------------ the local stack


def test_the_local_stack_serves_the_same_policy_for_its_own_backends() -> None:
    stack_plan = plan({}, "test")
    ports = stack_plan.ports
    path = stack_plan.stack_dir / HOSTING_CONFIG
    config = json.loads(stack_plan.files[path])
    web = next(part for part in stack_plan.parts if part.name == "web")
    assert web.argv[1:4] == ("-m", "dev.web_server", "--config")
    assert web.argv[4] == str(path)
    local = Backends(
        submit_url=f"http://127.0.0.1:{ports['submit']}",
        status_url=f"http://127.0.0.1:{ports['status']}",
        auth=(f"http://127.0.0.1:{ports['auth']}",),
        firestore=f"http://127.0.0.1:{ports['firestore']}",
        storage=f"http://127.0.0.1:{ports['storage']}",
        app_check=True,
    )
    assert config == hosting.hosting_config(
        hosting.load_firebase_json(), local, public=ROOT / "web"
    )
    # Only the backends differ from a deployment's policy (App Check on).
    deployed = policy_of(Backends(submit_url=SUBMIT, status_url=STATUS, app_check=True))
    served = parse_policy(
        dict(hosting.headers_for(config["hosting"], "/"))["Content-Security-Policy"]
    )
    assert {k: v for k, v in served.items() if k != "connect-src"} == {
        k: v for k, v in deployed.items() if k != "connect-src"
    }
    assert served["connect-src"] == [
        "'self'",
        f"http://127.0.0.1:{ports['submit']}",
        f"http://127.0.0.1:{ports['status']}",
        f"http://127.0.0.1:{ports['auth']}",
        f"http://127.0.0.1:{ports['firestore']}",
        f"http://127.0.0.1:{ports['storage']}",
        "https://content-firebaseappcheck.googleapis.com",
    ]


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    public = tmp_path / "web"
    (public / "dist").mkdir(parents=True)
    (public / "src").mkdir()
    (public / "index.html").write_text("<!doctype html><title>t</title>")
    (public / "dist" / "app.js").write_text("export {};")
    (public / "dist" / "app.js.map").write_text("{}")
    (public / "src" / "app.js").write_text("secret source")
    (public / ".env").write_text("X=1")
    (public / "build.mjs").write_text("// the build")
    (public / "empty").mkdir()
    (tmp_path / "outside.txt").write_text("not of the site")
    config = hosting.hosting_config(hosting.load_firebase_json(), DEPLOYED, public=public)
    with serving(HostingApp(config["hosting"])) as url:
        yield url


def test_the_web_server_answers_like_hosting(web_server: str) -> None:
    base = web_server
    policy = content_security_policy(DEPLOYED)
    with httpx.Client(base_url=base) as http:
        page = http.get("/")
        assert page.status_code == 200 and "<title>" in page.text
        assert page.headers["content-security-policy"] == policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert page.headers["x-frame-options"] == "DENY"
        bundle = http.get("/dist/app.js")
        assert bundle.status_code == 200
        assert bundle.headers["cache-control"] == "no-cache"
        assert bundle.headers["content-security-policy"] == policy
        # What Hosting leaves out of the site, and directory listings: 404.
        for path in ("/src/app.js", "/dist/app.js.map", "/.env", "/build.mjs", "/empty/"):
            missing = http.get(path)
            assert missing.status_code == 404, path
            assert missing.headers["content-security-policy"] == policy


def test_a_shared_strategys_page_is_the_app_as_hosting_rewrites_it(web_server: str) -> None:
    """firebase.json rewrites /s/** (a read-only link, issue 19) to the app's page."""
    assert hosting.rewrite_for(hosting.load_firebase_json()["hosting"], "/s/abc") == "/index.html"
    with httpx.Client(base_url=web_server) as http:
        page = http.get("/s/Abc_123-xyz")
        assert page.status_code == 200 and "<title>" in page.text
        assert page.headers["content-security-policy"] == content_security_policy(DEPLOYED)
        assert http.get("/s/a/../../src/app.js").status_code == 404
        assert http.get("/elsewhere/abc").status_code == 404  # no rule: no page


def test_the_web_server_keeps_to_get_and_head_and_to_its_directory(web_server: str) -> None:
    policy = content_security_policy(DEPLOYED)
    with httpx.Client(base_url=web_server) as http:
        head = http.head("/dist/app.js")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len("export {};"))
        assert head.headers["content-security-policy"] == policy
        # A script's type, which nosniff makes the browser require.
        script_type = http.get("/dist/app.js").headers["content-type"].split(";")[0]
        assert script_type in ("text/javascript", "application/javascript")
        # A directory without its slash is sent to it (then: its index.html, or 404).
        moved = http.get("/empty?x=1")
        assert moved.status_code == 301 and moved.headers["location"] == "/empty/?x=1"
        assert moved.headers["content-security-policy"] == policy
        # Nothing outside the site, nothing but reading.
        assert http.get("/%2e%2e/outside.txt").status_code == 404
        assert http.get("/dist/%2e%2e/%2e%2e/outside.txt").status_code == 404
        assert http.get("/index.html/").status_code == 404
        posted = http.post("/index.html", content=b"x")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
        assert posted.headers["content-security-policy"] == policy
        # Conditional requests, and no caching header but the config's.
        page = http.get("/index.html")
        assert page.headers["cache-control"] == "no-cache"  # the rule for *.html
        again = http.get("/index.html", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304
        assert "cache-control" not in http.get("/dist/").headers  # 404: no rule matches


def test_the_web_server_runs_as_the_stack_starts_it(tmp_path: Path) -> None:
    public = tmp_path / "web"
    public.mkdir()
    (public / "index.html").write_text("<!doctype html><title>stack</title>")
    config = hosting.hosting_config(hosting.load_firebase_json(), DEPLOYED, public=public)
    config_path = tmp_path / "hosting.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    argv = [sys.executable, "-m", "dev.web_server", "--config", str(config_path)]
    server = subprocess.Popen(
        [*argv, "--bind", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == (
            f"dev.web_server: {public.resolve()} on http://127.0.0.1:{port}"
        )
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<title>stack</title>" in page.text
        assert page.headers["content-security-policy"] == content_security_policy(DEPLOYED)
    finally:
        server.send_signal(signal.SIGINT)  # as Ctrl-C: a quiet exit
        assert server.wait(timeout=10) == 0
