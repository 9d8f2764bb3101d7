"""A real `jupyter lab` (fresh settings, workspaces and home) and Debian's Chromium, driven by Playwright.

One server, one browser and one browser context per module keep these tests to a few
seconds each; every test opens its own page.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_server import make_fixture_campaign  # the campaign the handler tests use

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_READY_TIMEOUT_S = 90
LIVE_BUDGET_S = 5.0  # long enough to watch the running experiment change a few times
# A built labextension folder (e.g. labextension/dist of a checkout) to test instead of the
# installed one: it is copied under a data dir named by JUPYTER_PATH, which JupyterLab reads
# before the environment's and the user's.
LABEXTENSION_DIR_ENV = "AUTORESEARCH_LABEXTENSION_DIR"


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str) -> dict:
        """Returns the JSON of a server route, authenticated with the token."""
        request = urllib.request.Request(f"{self.url}/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(home: Path) -> dict:
    """Returns an environment whose home, Jupyter dirs and git identity are all temporary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "GIT_"))}
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               JUPYTER_CONFIG_DIR=str(home / "jupyter-config"), JUPYTER_DATA_DIR=str(home / "jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"), XDG_CACHE_HOME=str(home / ".cache"),
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    return tmp_path_factory.mktemp("lab-home")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, lab_home):
    """Starts `jupyter lab` on a root holding two campaigns: projects/nov22 (finished runs) and
    projects/live (no runs yet, a 5-second budget)."""
    root = tmp_path_factory.mktemp("lab-root")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in isolated_env(lab_home).items():
            mp.setenv(key, value)
        make_fixture_campaign(root / "projects" / "nov22")
        from autoresearch_magics import Campaign
        Campaign.init(root / "projects" / "live", tag="live", template="toy", budget_s=LIVE_BUDGET_S)
    settings = lab_home / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    built = os.environ.get(LABEXTENSION_DIR_ENV)
    if built:
        if not (Path(built) / "package.json").is_file():
            pytest.fail(f"{LABEXTENSION_DIR_ENV}={built} holds no built extension: run `npm run build` in labextension/")
        shutil.copytree(built, lab_home / "jupyter-path" / "labextensions" / "autoresearch-magics", dirs_exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    log = lab_home / "lab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={lab_home / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = isolated_env(lab_home)
    if built:
        env["JUPYTER_PATH"] = str(lab_home / "jupyter-path")
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + LAB_READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                lab.api("api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab not ready in {LAB_READY_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser, lab):
    """One browser context per module: pages share its HTTP cache, so JupyterLab loads fast."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    yield context
    context.close()


@pytest.fixture
def page(context, lab):
    """A new JupyterLab page; the test fails on any uncaught page error or extension console error."""
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "autoresearch" in msg.text.lower() else None)
    page.goto(f"{lab.url}/lab?token={lab.token}", wait_until="domcontentloaded")
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=60_000)
    yield page
    page.close()
    assert not errors, errors


def open_sidebar(page):
    """Opens the Autoresearch panel from its tab in the left bar; returns the panel."""
    tab = page.locator('li.lm-TabBar-tab[data-id="autoresearch-sidebar"]')
    tab.wait_for()
    panel = page.locator("#autoresearch-sidebar")
    # While JupyterLab restores its layout a click can be lost (the panel stays hidden): click the
    # tab whenever it is not the current one, until the panel shows.
    deadline = time.monotonic() + 30
    while not panel.is_visible():
        if time.monotonic() > deadline:
            panel.wait_for(state="visible", timeout=1)   # fails with Playwright's own message
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        page.wait_for_timeout(250)
    return panel


def screenshot(page, name: str) -> None:
    """Saves a screenshot when AUTORESEARCH_SCREENSHOTS names a folder (for CI artifacts and review)."""
    folder = os.environ.get("AUTORESEARCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
