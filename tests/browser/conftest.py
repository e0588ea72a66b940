"""A real browser on a real server: `streamlit run app.py` on a free loopback port.

Skipped when chromium or playwright is missing, unless FLASHVIZ_REQUIRE_BROWSER=1 (CI),
in which case a missing browser fails the tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: IO[bytes], timeout: float = 60.0) -> None:
    """Wait for the server's health check; if it exits or stays down, say so with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url} in {timeout} s{_tail(log)}")


def _tail(log: IO[bytes], chars: int = 4000) -> str:
    log.seek(0)
    return "; the server's log ends:\n" + log.read()[-chars:].decode(errors="replace")


SERVER_PIDS: dict[str, int] = {}  # URL -> PID of each running server (for CPU accounting)


@contextlib.contextmanager
def _launched(
    script: Path, env: dict[str, str] | None
) -> Iterator[tuple[str, subprocess.Popen, IO[bytes]]]:
    """``streamlit run <script>`` on a free loopback port, not yet waited for: (URL, process,
    log); stops it by PID."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script),
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip
    # the server's log goes to a file, not a pipe: nobody reads a pipe while the tests run,
    # and a server whose pipe fills (64 KiB of warnings) would block on its next write
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        url = f"http://127.0.0.1:{port}"
        SERVER_PIDS[url] = proc.pid
        try:
            yield url, proc, log
        finally:
            SERVER_PIDS.pop(url, None)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def streamlit_servers(
    count: int, script: Path = ROOT / "app.py", env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """``count`` servers of ``script`` (``env`` added to this process's environment), started
    together, each waited for; yields their URLs."""
    with contextlib.ExitStack() as stack:
        started = [stack.enter_context(_launched(script, env)) for _ in range(count)]
        for url, proc, log in started:
            _wait_healthy(url, proc, log)
        yield [url for url, _, _ in started]


@contextlib.contextmanager
def streamlit_server(
    script: Path = ROOT / "app.py", env: dict[str, str] | None = None
) -> Iterator[str]:
    """One server of ``script`` on a free loopback port; yields its URL."""
    with streamlit_servers(1, script, env) as (url,):
        yield url


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """One server for all the browser tests of a test process: each test opens its own page,
    a Streamlit session of its own, so no test sees another's problem or step."""
    reason = _missing_browser()
    if reason:
        if os.environ.get("FLASHVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLASHVIZ_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 2600})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
