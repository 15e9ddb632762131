"""Browser-test helpers: run the dashboard on a free localhost port and drive headless Chromium.

Usage in a test marked ``@pytest.mark.browser``::

    from tests.browser import chromium, error_messages, open_page, running_dashboard

    with running_dashboard(db_path) as base_url, chromium() as browser:
        page = browser.new_page()
        open_page(page, base_url, "kpis")
        assert error_messages(page) == []

The dashboard runs as a separate ``streamlit run`` process with its own ``LOANLENS_DB``,
bound to 127.0.0.1 only. Chromium is Debian's ``/usr/bin/chromium``; a missing browser
skips the test instead of downloading one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_SCRIPT = REPO_ROOT / "dashboard" / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXCEPTION_SELECTOR = '[data-testid="stException"]'
ALERT_SELECTOR = '[data-testid="stAlertContainer"]'


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free at the moment of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Poll Streamlit's health endpoint until it returns 200 or the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with code {process.returncode} before it was healthy; "
                f"its output:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(
        f"streamlit at {base_url} was not healthy after {timeout:.0f} s; "
        f"its output:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


@contextlib.contextmanager
def running_dashboard(
    db_path: str | os.PathLike,
    *,
    port: int | None = None,
    timeout: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start ``streamlit run dashboard/app.py`` on ``db_path`` and yield its base URL.

    The server is stopped (terminate, then kill after 10 s) when the block exits. Its
    combined output is in a temporary log file, quoted in the error when start-up fails.
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOANLENS_DB": str(db_path), **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]
    log_file = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    log_path = Path(log_file.name)
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    logger.info("started streamlit pid %d on %s with LOANLENS_DB=%s", process.pid, base_url, db_path)
    try:
        _wait_healthy(base_url, process, log_path, timeout)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        logger.info("stopped streamlit pid %d", process.pid)


@contextlib.contextmanager
def chromium():
    """Yield a headless Chromium browser (playwright sync API), closed on exit.

    Skips the test when playwright or /usr/bin/chromium is missing.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def wait_for_script(page, timeout: float = 30.0, settle: float = 0.5) -> None:
    """Wait until the page is connected and its Streamlit script run has finished.

    The app root reports "notRunning" also before the first run starts, so the state must
    hold, while connected, for ``settle`` seconds in a row.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    page.wait_for_function(
        """(settleMs) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const done = app
                && app.getAttribute('data-test-connection-state') === 'CONNECTED'
                && app.getAttribute('data-test-script-state') === 'notRunning';
            if (!done) { window.__loanlensDoneSince = null; return false; }
            if (!window.__loanlensDoneSince) { window.__loanlensDoneSince = Date.now(); }
            return Date.now() - window.__loanlensDoneSince >= settleMs;
        }""",
        arg=settle * 1000,
        polling=100,
        timeout=timeout * 1000,
    )


def open_page(page, base_url: str, url_path: str = "", timeout: float = 30.0) -> None:
    """Load ``base_url/url_path`` and wait until its script run has finished."""
    page.goto(f"{base_url}/{url_path}", wait_until="domcontentloaded", timeout=timeout * 1000)
    wait_for_script(page, timeout)


def error_messages(page) -> list[str]:
    """Return the text of every exception box, error-kind alert and page-not-found dialog."""
    messages = [box.inner_text() for box in page.query_selector_all(EXCEPTION_SELECTOR)]
    # Streamlit opens a "Page not found" dialog for an unknown URL path.
    for dialog in page.query_selector_all('[role="dialog"]'):
        if "Page not found" in dialog.inner_text():
            messages.append(dialog.inner_text())
    for alert in page.query_selector_all(ALERT_SELECTOR):
        # Streamlit 1.67 marks the alert's content element with its kind: stAlertContentError.
        if alert.query_selector('[data-testid="stAlertContentError"]') is not None:
            messages.append(alert.inner_text())
    return messages
