"""A real dashboard server on a free port, and a real headless Chromium (Debian's /usr/bin/chromium)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RXDASH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AUDIT_LOG = ARTIFACTS / "audit.jsonl"   # the test server's export audit log
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# secrets.toml's sign-in block for a server signing in through a local OIDC provider (oidc-provider-mock);
# a test adds its own [rxdash.roles] below it.
AUTH_SECRETS = """
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "{cookie}"
client_id = "rxdash-test"
client_secret = "rxdash-test-secret"
server_metadata_url = "http://localhost:{oidc_port}/.well-known/openid-configuration"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], env: dict[str, str], cwd: Path, log_path: Path, base: str):
    """Start `rxdash serve ARGS` in `cwd` and wait for its health check; print its log if it dies."""
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", *args], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=cwd)
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"dashboard server did not start:\n{log_path.read_text()}")
        time.sleep(0.5)
    return proc, log


def stop_server(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def server_env(audit_log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RXDASH_DB_URL"}
    env["RXDASH_AUDIT_LOG"] = str(audit_log)
    return env


@pytest.fixture(scope="session")
def server(sample_duckdb, tmp_path_factory):
    """`rxdash serve` on the sample database (local demo mode: no sign-in configured)."""
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    AUDIT_LOG.unlink(missing_ok=True)
    folder = tmp_path_factory.mktemp("server")
    base = f"http://127.0.0.1:{port}"
    proc, log = start_server(["--db", sample_duckdb, "--port", str(port)], server_env(AUDIT_LOG), folder,
                             folder / "server.log", base)
    yield base
    stop_server(proc, log)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package (scripts/test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
