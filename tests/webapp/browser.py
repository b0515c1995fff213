"""Run the app and a headless Chromium for the browser tests.

Chromium is Debian's package (``apt-get install chromium``), driven by Playwright's sync API through
``executable_path``; Playwright's own browser downloads are never used. The app runs the exact
command ``dfscan app`` runs (``scanner.webapp.streamlit_command``) on a free localhost port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Where the README's screenshots are refreshed from, when set: DFSCAN_SCREENSHOTS=docs/images pytest tests/webapp
SCREENSHOTS_ENV = "DFSCAN_SCREENSHOTS"
# Every wait of the browser tests: locators, navigation, expect(), the app's start. A check's first run
# imports TensorFlow (12.4 s measured while other jobs loaded the 2 cores) and compiles two models, so
# no wait may assume a fast or idle machine; a limit is only there to end a test that truly hangs.
TIMEOUT_MS = 120_000
APP_START_TIMEOUT_S = 300.0


def require_browser_stack() -> None:
    """Skip (with the reason) unless streamlit, playwright and Debian's chromium are installed; called
    at the top of a test module, it skips the whole module before any fixture is built."""
    pytest.importorskip("streamlit", reason="the web app tests need streamlit: pip install -e '.[app]'")
    pytest.importorskip("playwright.sync_api", reason="the web app tests need playwright: pip install -e '.[app]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"the web app tests need Debian's chromium at {CHROMIUM}: apt-get install chromium",
                    allow_module_level=True)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_app(models: list[Path], log: Path, timeout_s: float = APP_START_TIMEOUT_S, **options):
    """The app on a free port for the duration of the block: yields its base URL."""
    from dfscan.scanner.webapp import app_env, streamlit_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(streamlit_command(models, None, port, **options), env=app_env(),
                                   stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while not healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start (exit {process.poll()}):\n"
                                       f"{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.25)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def new_page(browser, **context_options):
    """A page in a context of its own (closed afterwards) whose every wait, expect() included, allows
    TIMEOUT_MS: Playwright's own defaults (5 s for expect, 30 s for the rest) assume a fast machine."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def save_screenshot(page, path: Path, readme_name: str | None = None) -> Path:
    """Screenshot to ``path``; with $DFSCAN_SCREENSHOTS set, also a small palette PNG there for the README."""
    page.screenshot(path=str(path))
    target = os.environ.get(SCREENSHOTS_ENV)
    if target and readme_name:
        from PIL import Image

        Path(target).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=64).save(Path(target) / readme_name, optimize=True)
    return path


def settle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the app's script run has finished and no stale element is left on the page.
    Call it after the effect of an interaction is visible: a run renders element by element."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"]').length === 0",
                           timeout=timeout_ms)
