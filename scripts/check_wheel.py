"""Checks the package as a user installs it: builds the sdist and, from it, the wheel; installs
the wheel into a fresh virtualenv where Node is not on PATH (torch==2.13.0 first); then checks,
with no further step, the magics, the CLI, `jupyter labextension list` and `jupyter server
extension list` (enabled, OK, nothing else said about the package), the /autoresearch routes
behind the server's token, and the sidebar in JupyterLab (Chromium driven by Playwright).

    python scripts/check_wheel.py [--keep] [--no-browser]

Run it with the project's venv (it needs `build`, and `playwright` for the sidebar). Prints one
line per check and exits 1 at the first that fails.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"  # a CPU wheel on disk here; an unpinned resolve may pull a CUDA build
NODE_TOOLS = {"node", "nodejs", "npm", "npx", "corepack", "yarn", "yarnpkg", "jlpm"}
SERVER_READY_TIMEOUT_S = 90
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What Jupyter says when an installed extension is broken, outdated or half-installed.
TROUBLE = re.compile(r"warn|error|fail|outdated|incompatible|missing|not found|\bX\b", re.IGNORECASE)
STARTED = time.monotonic()


class CheckFailed(Exception):
    """One check did not hold; the message says which and shows the evidence."""


def ok(what: str) -> None:
    """Prints one passed check with the seconds since the start."""
    print(f"check_wheel: ok   {what}  [{time.monotonic() - STARTED:.0f}s]", flush=True)


def run(command: list, env: dict | None = None, cwd: Path | None = None, timeout: float = 600) -> str:
    """Runs a command and returns its output (stdout and stderr, colours removed); fails the check on a non-zero exit."""
    done = subprocess.run([str(c) for c in command], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    output = ANSI.sub("", done.stdout + done.stderr)
    if done.returncode != 0:
        raise CheckFailed(f"`{' '.join(map(str, command))}` exited with {done.returncode}:\n{output[-4000:]}")
    return output


def expect(condition: bool, what: str, evidence: str = "") -> None:
    """Passes the check `what` when condition holds, otherwise fails it with the evidence."""
    if not condition:
        raise CheckFailed(f"{what}\n{evidence[-4000:]}")
    ok(what)


def build_distributions(dist: Path) -> Path:
    """Builds the sdist from the checkout and the wheel from the sdist; returns the wheel."""
    run([sys.executable, "-m", "build", "--outdir", dist, REPO], timeout=900)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    expect(True, f"python -m build made {sdist.name} and, from it, {wheel.name}")
    return wheel


def path_without_node(shims: Path) -> str:
    """Returns a PATH holding links to every program on the current PATH except Node and its package managers."""
    shims.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = shims / entry.name
            if entry.name in NODE_TOOLS or target.exists() or not os.access(entry.path, os.X_OK):
                continue
            target.symlink_to(entry.path)
    return str(shims)


def user_env(venv: Path, home: Path, path: str) -> dict:
    """Returns the environment of a user of the fresh venv: its bin first, no Node, a temporary home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "GIT_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}
    home.mkdir(exist_ok=True)
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{path}", VIRTUAL_ENV=str(venv), HOME=str(home),
               JUPYTER_CONFIG_DIR=str(home / "jupyter-config"), JUPYTER_DATA_DIR=str(home / "jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"), XDG_CACHE_HOME=str(home / ".cache"),
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PYTHONUNBUFFERED="1")
    return env


def install_wheel(venv: Path, wheel: Path, path: str) -> None:
    """Creates the venv and installs torch, then the wheel, with Node off PATH (pip keeps its own cache)."""
    run([sys.executable, "-m", "venv", venv])
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{path}"}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    expect(shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None,
           "node and npm are not on the fresh venv's PATH")
    # no byte-compiling: it would double the install time and tells nothing about the package
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    run([*pip, TORCH], env=env, timeout=900)
    run([*pip, wheel], env=env, timeout=900)
    expect(True, f"{TORCH} then {wheel.name} installed into a fresh venv")


def check_python_side(venv: Path, env: dict, campaigns: Path) -> None:
    """Checks the magics load in IPython and the CLI creates and runs a campaign, from the installed wheel."""
    probe = ("import autoresearch_magics, sys\n"
             "from IPython.core.interactiveshell import InteractiveShell\n"
             "shell = InteractiveShell.instance()\n"
             "shell.run_line_magic('load_ext', 'autoresearch_magics')\n"
             "magics = shell.magics_manager.magics\n"
             "print(autoresearch_magics.__file__, 'autoresearch' in magics['line'], 'experiment' in magics['cell'])\n")
    out = run([venv / "bin" / "python", "-c", probe], env=env, cwd=env["HOME"])
    expect(out.split()[0].startswith(str(venv)) and out.split()[1:3] == ["True", "True"],
           "%autoresearch and %%experiment load from the installed package", out)
    campaigns.mkdir()
    run(["autoresearch", "init", campaigns / "nov22", "--tag", "nov22", "--template", "toy", "--budget", "1"], env=env)
    out = run(["autoresearch", "run", "-m", "baseline", "-C", campaigns / "nov22"], env=env)
    expect("KEEP" in out, "the autoresearch CLI creates a campaign and runs its baseline", out)


def check_jupyter_listings(env: dict) -> None:
    """Checks both extension listings show the package enabled and OK, with no warning about it, and
    that the server extension can be enabled by the package's name."""
    out = run(["jupyter", "labextension", "list"], env=env)
    expect(re.search(r"autoresearch-magics v\S+ enabled\s+OK \(python, autoresearch-magics\)", out) is not None
           and not TROUBLE.search(out), "jupyter labextension list: autoresearch-magics enabled, OK, no warnings", out)
    out = run(["jupyter", "server", "extension", "enable", "autoresearch_magics"], env=env)
    expect("autoresearch_magics" in out and "successfully enabled" in out and not TROUBLE.search(out),
           "jupyter server extension enable autoresearch_magics: validated and enabled", out)
    out = run(["jupyter", "server", "extension", "list"], env=env)
    expect(re.search(r"autoresearch_magics\s+enabled", out) is not None
           and re.search(r"autoresearch_magics \S+ OK", out) is not None
           and not TROUBLE.search(out), "jupyter server extension list: autoresearch_magics enabled, OK, no warnings", out)


def free_port() -> int:
    """Returns a TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """Returns the status and body of a GET, with the token in the Authorization header when given."""
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start_server(env: dict, root: Path, home: Path) -> tuple[subprocess.Popen, str, str, Path]:
    """Starts `jupyter server` on a free port with a known token; returns it once /api/status answers."""
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no news pop-up over the page
    port, token, log = free_port(), secrets.token_hex(16), home / "server.log"
    command = ["jupyter", "server", "--allow-root", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={home / 'lab-settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise CheckFailed(f"jupyter server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if http_get(f"{url}/api/status", token)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise CheckFailed(f"jupyter server not ready in {SERVER_READY_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)
    ok(f"jupyter server --allow-root answers on port {port}")
    return server, url, token, log


def stop_server(server: subprocess.Popen) -> None:
    """Stops the server this script started, politely first."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def check_routes(url: str, token: str) -> None:
    """Checks the /autoresearch routes answer with the token and refuse without it, and the extension is served."""
    status, body = http_get(f"{url}/autoresearch/campaigns", token)
    ids = [c.get("id") for c in json.loads(body).get("campaigns", [])] if status == 200 else []
    expect(status == 200 and "nov22" in ids, "GET /autoresearch/campaigns with the token: 200, lists nov22",
           f"{status} {body[:2000]!r}")
    status, body = http_get(f"{url}/autoresearch/campaigns")
    expect(status in (401, 403), f"GET /autoresearch/campaigns without a token: {status}", repr(body[:2000]))
    status, page = http_get(f"{url}/lab?token={token}")
    config = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.DOTALL)
    extensions = json.loads(config.group(1)).get("federated_extensions", []) if config else []
    entry = next((e for e in extensions if e.get("name") == "autoresearch-magics"), None)
    expect(status == 200 and entry is not None, "/lab lists autoresearch-magics among its prebuilt extensions",
           page.decode(errors="replace"))
    status, _ = http_get(f"{url}/lab/extensions/autoresearch-magics/{entry['load']}", token)
    expect(status == 200, f"/lab serves the extension's {entry['load']}")


def check_sidebar(url: str, token: str) -> None:
    """Opens JupyterLab in Chromium and checks the Autoresearch sidebar opens and lists the campaign."""
    from playwright.sync_api import sync_playwright
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" and "autoresearch" in msg.text.lower() else None)
            page.goto(f"{url}/lab?token={token}", wait_until="domcontentloaded")
            tab = page.locator('li.lm-TabBar-tab[data-id="autoresearch-sidebar"]')
            tab.wait_for()
            if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                tab.click()
            panel = page.locator("#autoresearch-sidebar")
            panel.wait_for(state="visible")
            panel.locator('.jp-Autoresearch-picker option[value="nov22"]').wait_for(state="attached")
        finally:
            browser.close()
    expect(not errors, "JupyterLab shows the Autoresearch sidebar listing nov22, without errors", "\n".join(errors))


def main() -> int:
    """Runs every check in a temporary folder; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (venv, logs) and print it")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium check of the sidebar")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="check-wheel-"))
    server = None
    try:
        wheel = build_distributions(work / "dist")
        path = path_without_node(work / "bin")
        venv = work / "venv"
        install_wheel(venv, wheel, path)
        env = user_env(venv, work / "home", path)
        check_python_side(venv, env, work / "root")
        check_jupyter_listings(env)
        server, url, token, log = start_server(env, work / "root", work / "home")
        check_routes(url, token)
        if not args.no_browser:
            check_sidebar(url, token)
        stop_server(server)
        server = None
        ok("jupyter server stopped")
    except CheckFailed as failure:
        print(f"check_wheel: FAIL {failure}", file=sys.stderr, flush=True)
        return 1
    finally:
        if server is not None:
            stop_server(server)
        if args.keep:
            print(f"check_wheel: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"check_wheel: all checks passed in {time.monotonic() - STARTED:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
