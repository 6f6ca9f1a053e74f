"""Fixtures of the generated-client tests: the real weft binary, and two Python clients
generated once per session, one from the Weaviate 0.12 contract (openapi-generator, `python`)
and one from Weft's own OpenAPI document (openapi-python-client).

Run through the project's test command (scripts/test.sh), or by hand:
    cargo build --workspace && scripts/python-env.sh && target/py-venv/bin/python -m pytest tests/clients -q
"""

from __future__ import annotations

import importlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from client_support import REFERENCE_CONTRACT, REPO, WEFT_DOCUMENT

REF_PACKAGE = "weaviate_ref_client"
WEFT_PACKAGE = "weft_client"

STARTUP_TIMEOUT_S = 20.0
GENERATE_TIMEOUT_S = 300.0
TIMINGS: list[str] = []  # shown at the end of the run
LISTENING = re.compile(r"^weft: listening on (http://127\.0\.0\.1:(\d+)/weaviate/v1)$")


# --- the server -----------------------------------------------------------------------------


def target_dir() -> Path:
    """Cargo's target directory: $CARGO_TARGET_DIR (relative to the working directory, as cargo
    reads it) or <repo>/target."""
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env).resolve() if env else REPO / "target"


def weft_binary() -> Path:
    binary = target_dir() / "debug" / "weft"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"the weft binary is missing: {binary}\nbuild it first: cargo build --workspace (scripts/test.sh does it)",
            pytrace=False,
        )
    return binary


@dataclass
class WeftServer:
    base_url: str  # http://127.0.0.1:PORT/weaviate/v1
    api_key: str  # X-API-KEY and X-API-TOKEN of its root key (UUIDs)
    api_token: str
    process: subprocess.Popen
    log: Path  # its stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_server(log: Path) -> WeftServer:
    binary = weft_binary()
    cmd = [
        str(binary),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--plugin-dir",
        str(binary.parent),
        # In memory: every run starts empty (the default, `embedded`, keeps data in data/store).
        "--database",
        "dev-memory",
    ]
    # Any UUIDs as the API key and token. They are also given to the server as its root key
    # (WEFT_ROOT_KEY / WEFT_ROOT_TOKEN), so they stay valid once it checks them.
    api_key, api_token = str(uuid.uuid4()), str(uuid.uuid4())
    env = dict(os.environ, NO_COLOR="1", WEFT_ROOT_KEY=api_key, WEFT_ROOT_TOKEN=api_token)
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env=env,
        )

    # Read stdout on a thread: the listening line must come within STARTUP_TIMEOUT_S; anything
    # after it is drained so the server never blocks on a full pipe.
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        try:
            for raw in iter(process.stdout.readline, b""):
                lines.put(raw)
        except (OSError, ValueError):  # closed by stop()
            pass
        lines.put(b"")  # EOF

    threading.Thread(target=pump, name="weft-stdout", daemon=True).start()

    def fail(why: str) -> None:
        WeftServer("", api_key, api_token, process, log).stop()
        pytest.fail(
            f"{why}\ncommand: {' '.join(cmd)}\n--- its stderr ({log}) ---\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-40:]),
            pytrace=False,
        )

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            raw = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            fail(f"weft printed no listening line within {STARTUP_TIMEOUT_S:.0f} s")
        if raw == b"":
            process.wait(timeout=10)
            fail(f"weft exited ({process.returncode}) before printing its listening line")
        line = raw.decode(errors="replace").rstrip("\r\n")
        match = LISTENING.match(line)
        if match:
            return WeftServer(match.group(1), api_key, api_token, process, log)
        # A generated root key is printed once, before the listening line: use it.
        if line.startswith("ROOTKEY="):
            api_key = line.removeprefix("ROOTKEY=")
        elif line.startswith("ROOTTOKEN="):
            api_token = line.removeprefix("ROOTTOKEN=")
        else:
            fail(f"weft printed an unexpected line on stdout before its listening line: {line!r}")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory) -> WeftServer:
    """A fresh weft (in-memory connector) for each test module, so that modules never see
    each other's classes and things."""
    log = tmp_path_factory.mktemp("weft-server") / f"{request.module.__name__}.stderr.log"
    srv = start_server(log)
    yield srv
    srv.stop()


# --- the generated clients ------------------------------------------------------------------


@dataclass
class GeneratedClient:
    package: ModuleType
    root: Path  # the generated package's directory
    output: str  # what the generator printed (warnings included)


def venv_tool(name: str) -> str:
    """A console script of the venv running pytest (target/py-venv), else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found; create the test environment with scripts/python-env.sh and run "
            "pytest with target/py-venv/bin/python",
            pytrace=False,
        )
    return found


def run_generator(cmd: list[str], what: str) -> str:
    # The venv's bin first on PATH: openapi-python-client runs ruff from there.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            check=False,  # the exit code is reported below, with the output
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=GENERATE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: no result within {GENERATE_TIMEOUT_S:.0f} s: {' '.join(cmd)}", pytrace=False)
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{output[-6000:]}",
            pytrace=False,
        )
    TIMINGS.append(f"{what}: {time.monotonic() - started:.1f} s")
    return output


def import_generated(parent: Path, package: str) -> ModuleType:
    sys.path.insert(0, str(parent))
    importlib.invalidate_caches()
    return importlib.import_module(package)


@pytest.fixture(scope="session")
def clients_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated-clients")


@pytest.fixture(scope="session")
def ref_client(clients_dir) -> GeneratedClient:
    """`weaviate_ref_client`, generated by openapi-generator (`python`) from the Weaviate 0.12
    contract in ../shared/reference."""
    if not REFERENCE_CONTRACT.is_file():
        pytest.fail(
            f"the reference contract is missing: {REFERENCE_CONTRACT}\n"
            "the shared/ directory must sit beside the repository root (as in CI)",
            pytrace=False,
        )
    if shutil.which("java") is None:
        pytest.fail("java not found: openapi-generator-cli runs its jar with Java (11 or newer)", pytrace=False)
    out = clients_dir / "ref"
    output = run_generator(
        [
            venv_tool("openapi-generator-cli"),
            "generate",
            "-i",
            str(REFERENCE_CONTRACT),
            "-g",
            "python",
            "-o",
            str(out),
            "--package-name",
            REF_PACKAGE,
            # Only the package: no docs and no generated test stubs.
            "--global-property",
            "apiDocs=false,modelDocs=false,apiTests=false,modelTests=false",
        ],
        "openapi-generator-cli generate (reference contract)",
    )
    return GeneratedClient(import_generated(out, REF_PACKAGE), out / REF_PACKAGE, output)


@pytest.fixture(scope="session")
def weft_client(clients_dir) -> GeneratedClient:
    """`weft_client`, generated by openapi-python-client from openapi/weft-openapi.json as
    committed. With `--meta none` the output path is the package itself, named after its
    directory, so it goes to <tmp>/weft/weft_client and <tmp>/weft goes on sys.path."""
    if not WEFT_DOCUMENT.is_file():
        pytest.fail(f"Weft's OpenAPI document is missing: {WEFT_DOCUMENT}", pytrace=False)
    parent = clients_dir / "weft"
    parent.mkdir()
    out = parent / WEFT_PACKAGE
    output = run_generator(
        [
            venv_tool("openapi-python-client"),
            "generate",
            "--path",
            str(WEFT_DOCUMENT),
            "--output-path",
            str(out),
            "--meta",
            "none",
        ],
        "openapi-python-client generate (openapi/weft-openapi.json)",
    )
    return GeneratedClient(import_generated(parent, WEFT_PACKAGE), out, output)


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "client generation")
        for line in TIMINGS:
            terminalreporter.write_line(line)
