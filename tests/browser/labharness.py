"""Real JupyterLab and headless Chromium: the widgets as a user's browser renders them.

The server runs on a temporary COPY of notebooks/, so the repo's notebooks are never
written, and with throwaway Jupyter config, data, settings and workspace folders, so
a developer's own settings cannot change what the tests see. Every wait is generous
(a loaded 2-core CI machine is slow) and every failure says what the page showed:
the cell errors, the browser console, the server log; conftest adds a screenshot in
tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("UNIMEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SERVER_START_S = 180  # JupyterLab's first start on a busy 2-core machine
PAGE_READY_S = 180  # Lab loaded, notebook open, kernel started
RUN_ALL_S = 600  # every cell of one notebook (CI-sized workloads)
RENDER_S = 120  # a widget's DOM after its cell ran

# Written into the throwaway settings folder: every cell stays in the DOM (no
# windowing), and no news or update toasts cover the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class Lab:
    """A running JupyterLab server and what a failure message needs from it."""

    url: str
    token: str
    root: Path  # the temporary copy of notebooks/ the server shows
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def shutdown_kernels(self) -> None:
        """Free the CPU for the next test: each opened notebook started a kernel."""
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lab_env(home: Path) -> dict[str, str]:
    """The server's environment: private Jupyter folders, CI-sized notebook workloads."""
    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("IPYTHONDIR", "ipython"),
    ]:
        env[var] = str(home / sub)
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.setdefault("UNIMEM_CI", "1")
    # The kernel imports unimem from this checkout even where no editable install points here.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name, value in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return env


def start_lab(base: Path) -> Lab:
    """JupyterLab on a free port, token auth, root = a temp copy of notebooks/; waits until up."""
    root = base / "notebooks"
    src = REPO / "notebooks"
    if src.is_dir():
        shutil.copytree(src, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    else:
        root.mkdir()
    port = _free_port()
    lab = Lab(f"http://127.0.0.1:{port}", secrets.token_hex(16), root, base / "server.log")
    cmd = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={lab.token}",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells by command
        "--allow-root",
    ]
    with lab.log.open("wb") as log:
        lab.proc = subprocess.Popen(
            cmd, cwd=root, env=_lab_env(base / "home"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_lab can reach its kernels
        )
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {lab.proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("GET", "/api/status")
            return lab
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                stop_lab(lab)
                raise RuntimeError(
                    f"JupyterLab not ready after {SERVER_START_S} s:\n{lab.log_tail()}"
                ) from None
            time.sleep(0.5)


def stop_lab(lab: Lab, patient: bool = True) -> None:
    """Ask the server to shut down (it stops its kernels), then insist.

    Not patient: signal its process group at once (the test run itself is being killed).
    """
    proc = lab.proc
    if proc is None:
        return
    if patient and proc.poll() is None:
        try:
            lab.api("POST", "/api/shutdown")
        except (OSError, urllib.error.URLError):
            pass
    steps = [(None, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 5)]
    for sig, wait in steps if patient else [(signal.SIGTERM, 3), (signal.SIGKILL, 2)]:
        if proc.poll() is not None:
            return
        if sig is not None:
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


class Console:
    """The browser console and page errors of one page, for failure messages."""

    def __init__(self, page: Page) -> None:
        self.lines: list[str] = []
        page.on("console", lambda msg: self.lines.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self.lines.append(f"[pageerror] {err}"))

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:]) or "(empty)"


def screenshot(page: Page, name: str) -> Path:
    """Save what the page shows under tests/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    try:
        page.screenshot(path=str(path))
    except PlaywrightError:
        pass  # a crashed page: the failure message already says why
    return path


# The notebook is the current tab and its kernel is up (Lab may first ask which kernel).
_READY_JS = """(name) => {
    const app = window.jupyterapp;
    const w = app && app.shell.currentWidget;
    const s = w && w.context && w.context.path === name && w.sessionContext;
    return !!(s && s.isReady && s.session && s.session.kernel);
}"""

# Clears the stored outputs (so nothing on the page predates this run, and every
# execution count starts empty), then runs every cell with JupyterLab's own command;
# resolves when Lab has run them (or one failed; also after a cell tagged
# raises-exception, which Lab runs past).
_RUN_ALL_JS = """async ([timeoutMs]) => {
    const app = window.jupyterapp;
    await app.commands.execute('notebook:clear-all-cell-outputs');
    const run = app.commands.execute('notebook:run-all-cells');
    const timer = new Promise(r => setTimeout(() => r('timeout'), timeoutMs));
    return String(await Promise.race([run, timer]));
}"""

# From the notebook's model: is the kernel idle, how many code cells never ran, and
# the error outputs of cells not tagged raises-exception (nbval's convention too).
_STATE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const errors = [];
    let unrun = 0;
    for (const cell of panel.content.model.cells) {
        if (cell.type !== 'code') continue;
        if (cell.executionCount === null) unrun += 1;
        if ((cell.getMetadata('tags') || []).includes('raises-exception')) continue;
        for (const out of cell.outputs.toJSON()) {
            if (out.output_type === 'error') {
                errors.push(`${out.ename}: ${out.evalue}\\n${(out.traceback || []).join('\\n')}`);
            }
        }
    }
    return {idle: !!kernel && kernel.status === 'idle', unrun, errors};
}"""


class LabPage:
    """One browser page on the lab: open a notebook, run it, find what it rendered."""

    def __init__(self, page: Page, lab: Lab) -> None:
        self.page, self.lab = page, lab
        self.console = Console(page)
        page.set_default_timeout(RENDER_S * 1000)

    def context(self, what: str) -> str:
        return (
            f"{what}\n--- browser console ---\n{self.console.tail()}"
            f"\n--- server log ---\n{self.lab.log_tail()}"
        )

    def open_and_run(self, name: str) -> Page:
        """Open <lab root>/<name>, run all cells, wait for the kernel to be idle."""
        if not (self.lab.root / name).exists():
            pytest.fail(f"{name} is not in the lab's copy of notebooks/ ({self.lab.root})")
        page = self.page
        # A workspace of its own: Lab must not reopen (and start kernels for) earlier tabs.
        workspace = f"t{secrets.token_hex(4)}"
        page.goto(f"{self.lab.url}/lab/workspaces/{workspace}/tree/{name}?token={self.lab.token}",
                  wait_until="domcontentloaded", timeout=PAGE_READY_S * 1000)
        deadline = time.monotonic() + PAGE_READY_S
        while not page.evaluate(_READY_JS, name):
            accept = page.locator(".jp-Dialog .jp-mod-accept")
            if accept.count():  # "Select Kernel": no kernelspec, or one Lab does not know
                accept.first.click()
            if time.monotonic() > deadline:
                pytest.fail(self.context(f"{name}: no kernel ready within {PAGE_READY_S} s"))
            time.sleep(0.5)
        deadline = time.monotonic() + RUN_ALL_S
        if page.evaluate(_RUN_ALL_JS, [RUN_ALL_S * 1000]) == "timeout":
            pytest.fail(self.context(f"{name}: still running after {RUN_ALL_S} s"))
        settled = 0  # the kernel can look idle for a moment between two cells
        while settled < 3:
            state = page.evaluate(_STATE_JS)
            done = state["idle"] and (state["unrun"] == 0 or state["errors"])
            settled = settled + 1 if done else 0
            if time.monotonic() > deadline:
                pytest.fail(self.context(f"{name}: kernel busy or cells unrun after {RUN_ALL_S} s"))
            time.sleep(0.5)
        if state["errors"]:
            error = re.sub(r"\x1b\[[0-9;]*m", "", state["errors"][0])
            pytest.fail(self.context(f"{name}: a cell raised:\n{error}"))
        return page

    def expect(self, selector: str, positive_attr: str | None = None) -> Any:
        """The first `selector` element (whose `positive_attr` is a number > 0), once rendered."""
        js = """([sel, attr]) => 1 + [...document.querySelectorAll(sel)].findIndex(
            el => !attr || Number(el.getAttribute(attr)) > 0)"""
        try:
            handle = self.page.wait_for_function(js, arg=[selector, positive_attr],
                                                 timeout=RENDER_S * 1000)
        except PlaywrightTimeout:
            found = self.page.locator(selector)
            attrs = [found.nth(i).get_attribute(positive_attr) for i in range(found.count())
                     ] if positive_attr else []
            pytest.fail(self.context(
                f"{selector}: {found.count()} element(s) after {RENDER_S} s"
                + (f"; {positive_attr} = {attrs}" if positive_attr else "")
            ))
        loc = self.page.locator(selector).nth(int(handle.json_value()) - 1)
        loc.evaluate("el => el.scrollIntoView({block: 'center'})")  # for the screenshot
        return loc
