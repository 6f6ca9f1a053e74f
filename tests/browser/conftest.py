"""Fixtures of the browser tests: the real `weft` binary (servers, a genesis, peers) on
127.0.0.1 and headless Chromium driven by Playwright, every request outside 127.0.0.1 blocked
and recorded.

Needs: the binary and dev-memory plugin built (`cargo build --workspace`; `WEFT_BIN`, default
target/debug/weft) and Debian's `chromium` (`WEFT_CHROMIUM`, default the `chromium` on PATH).
Without chromium the tests skip, unless WEFT_REQUIRE_REAL_SERVERS=1 (CI): then they fail.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_KEY = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001"
ROOT_TOKEN = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000002"
SHOTS = ROOT / "target" / "console"
P2P_ENV = [
    "WEFT_PEER_NAME", "WEFT_GENESIS_URL", "WEFT_BOOTSTRAPPED_PEERS", "WEFT_FIRST_PEER",
    "WEFT_REQUEST_CONTEXTIONARY", "WEFT_PING_INTERVAL_S", "WEFT_DATA_DIR", "WEFT_SHARE_KEY",
    "WEFT_GENESIS_KEY", "WEFT_ACCEPT_UNSIGNED_PEERS", "WEFT_CA_FILE", "WEFT_TLS_CERT",
    "WEFT_TLS_KEY", "WEFT_PUBLIC_URL", "WEFT_CONFIG_FILE", "WEFT_LISTEN", "WEFT_PLUGIN_DIR",
    "WEFT_DATABASE_CONFIG", "WEFT_GENESIS_ADMIN_KEY", "WEFT_GENESIS_ADMIN_TOKEN",
]


def required():
    return os.environ.get("WEFT_REQUIRE_REAL_SERVERS", "") not in ("", "0")


def weft_bin():
    return Path(os.environ.get("WEFT_BIN", ROOT / "target" / "debug" / "weft"))


def chromium_path():
    explicit = os.environ.get("WEFT_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Process:
    """A `weft` process whose stdout is read until it says where it listens."""

    def __init__(self, args, env, marker):
        full_env = {k: v for k, v in os.environ.items() if k not in P2P_ENV}
        full_env.update({"WEFT_LOG": os.environ.get("WEFT_LOG", "warn")})
        full_env.update(env)
        self.proc = subprocess.Popen(
            [str(weft_bin()), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
        )
        self.lines = []
        found = {}
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                self.lines.append(line)
                if line.startswith(marker) and "url" not in found:
                    found["url"] = line[len(marker):].strip().rstrip("/")
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30) or "url" not in found:
            self.kill()
            raise RuntimeError(f"{args[0]} did not report its address within 30 s: {self.lines}")
        self.url = found["url"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def serve(env=None, data_dir=None):
    """`weft serve` with dev-memory and the test root key on 127.0.0.1: its base URL."""
    e = {"WEFT_ROOT_KEY": ROOT_KEY, "WEFT_ROOT_TOKEN": ROOT_TOKEN, "WEFT_DATABASE": "dev-memory"}
    if data_dir:
        e["WEFT_DATA_DIR"] = str(data_dir)
    e.update(env or {})
    p = Process(
        ["serve", "--listen", "127.0.0.1:0", "--plugin-dir", str(weft_bin().parent)],
        e,
        "weft: listening on ",
    )
    p.url = p.url.removesuffix("/weaviate/v1")
    return p


def genesis(args, data_dir):
    return Process(
        ["genesis", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), *args],
        {},
        "weft genesis: listening on ",
    )


def call(method, url, body=None, key=(ROOT_KEY, ROOT_TOKEN)):
    """A JSON request with the key: (status, body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("X-API-KEY", key[0])
        req.add_header("X-API-TOKEN", key[1])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, (json.loads(text) if text else None)


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


class Browser:
    """Headless Chromium; every request outside 127.0.0.1 is aborted and recorded."""

    def __init__(self, playwright, executable):
        self.browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        self.outside = []
        self.requests = []
        self.csp = []

    def page(self):
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})

        def route(r):
            host = urllib.parse.urlsplit(r.request.url).hostname
            if r.request.url.startswith("data:") or host == "127.0.0.1":
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("request", lambda req: self.requests.append(req.url))
        page.on(
            "console",
            lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None,
        )
        return page

    def close(self):
        self.browser.close()


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if not executable:
        msg = "chromium is not installed (apt-get install chromium; or set WEFT_CHROMIUM)"
        if required():
            pytest.fail(f"WEFT_REQUIRE_REAL_SERVERS=1 but {msg}")
        pytest.skip(msg)
    if not weft_bin().exists():
        pytest.fail(f"{weft_bin()} is missing: build first (cargo build --workspace)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = Browser(p, executable)
        yield b
        b.close()
    assert not b.outside, f"the pages tried to load from outside 127.0.0.1: {b.outside}"
    assert not b.csp, f"the Content Security Policy refused something: {b.csp}"


@pytest.fixture()
def tmp_dir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)
