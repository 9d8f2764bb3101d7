"""Builds the JupyterLab extension into autoresearch_magics/labextension for a wheel.

Called by the jupyter-builder build hook (see pyproject.toml) with the repository as working
directory. It installs the locked npm dependencies (`npm ci`, which never rewrites
package-lock.json) when node_modules is missing or older than the lock, then runs
`npm run build`, but only when the built extension is missing or older than one of its
sources: a wheel built from an sdist, which carries the extension prebuilt, needs no Node.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path("labextension")
BUILT_DIR = Path("autoresearch_magics/labextension")
# Written by every build; its age is the age of the build.
BUILD_STAMP = BUILT_DIR / "package.json"
BUILD_INPUTS = ("src", "style", "package.json", "package-lock.json", "tsconfig.json", "install.json")
INSTALLED_LOCK = SOURCE_DIR / "node_modules" / ".package-lock.json"
NEEDS_NODE = ("autoresearch-magics: building the JupyterLab extension needs Node.js >= 18 and npm "
              "on PATH (https://nodejs.org/); a wheel built elsewhere or an sdist carries it prebuilt.")


def build_labextension(target_name: str, version: str, **_options) -> None:
    """Builds the extension if it is missing or stale; exits with one clear line if Node is absent."""
    if is_up_to_date():
        log(f"{BUILT_DIR} is up to date")
        return
    if not (shutil.which("node") and shutil.which("npm")):
        if version == "editable":
            # The Python side works without it; only the sidebar is missing until Node is there.
            log(f"skipping the JupyterLab extension ({target_name}, editable): {NEEDS_NODE}")
            return
        raise SystemExit(NEEDS_NODE)
    if not INSTALLED_LOCK.exists() or newest_mtime([SOURCE_DIR / "package-lock.json"]) > INSTALLED_LOCK.stat().st_mtime:
        npm("ci", "--no-audit", "--no-fund")
    npm("run", "build")


def is_up_to_date() -> bool:
    """Returns True when the built extension is complete and no source file is newer than it."""
    complete = (BUILD_STAMP.exists() and (BUILT_DIR / "install.json").exists()
                and (BUILT_DIR / "static" / "style.js").exists() and any((BUILT_DIR / "static").glob("remoteEntry.*.js")))
    if not complete:
        return False
    return newest_mtime([SOURCE_DIR / name for name in BUILD_INPUTS]) <= BUILD_STAMP.stat().st_mtime


def newest_mtime(paths: list[Path]) -> float:
    """Returns the newest modification time of the given files and of every file under the given folders."""
    newest = 0.0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                newest = max(newest, file.stat().st_mtime)
    return newest


def npm(*args: str) -> None:
    """Runs one npm command in the extension's folder; a failure ends the build with one line."""
    log("npm " + " ".join(args))
    done = subprocess.run([shutil.which("npm") or "npm", *args], cwd=SOURCE_DIR)
    if done.returncode != 0:
        raise SystemExit(f"autoresearch-magics: `npm {' '.join(args)}` in {SOURCE_DIR}/ failed "
                         f"(exit {done.returncode}); see its output above.")


def log(message: str) -> None:
    """Prints one progress line where pip and build show the backend's output."""
    print(f"labextension: {message}", file=sys.stderr, flush=True)
