"""Fixtures for the browser tests: one JupyterLab per session, one Chromium per test.

The machinery lives in labharness.py; here it is only started, shared and stopped.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labharness import CHROMIUM, CHROMIUM_ARGS, Lab, LabPage, screenshot, start_lab, stop_lab
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    server = start_lab(tmp_path_factory.mktemp("lab"))
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        """A CI timeout's SIGTERM skips fixture teardown: stop the server, then go on dying."""
        stop_lab(server, patient=False)
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    yield server
    signal.signal(signal.SIGTERM, previous)
    stop_lab(server)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (which never downloads a browser here).

    One per test, not per session: Playwright's sync API allows one instance per thread
    at a time, and other browser tests here start their own.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call phase's report on the item, so `lab_page` knows the test failed."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def lab_page(browser: Browser, lab: Lab, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """A fresh page on the lab; on failure its screenshot goes to tests/artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = LabPage(context.new_page(), lab)
    yield page
    report = request.node.stash.get(CALL_REPORT, None)
    if report is not None and report.failed:
        screenshot(page.page, f"FAILED-{request.node.name}")
    context.close()
    lab.shutdown_kernels()
