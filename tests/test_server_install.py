"""The installed state: JupyterLab lists the sidebar extension and jupyter_server the routes,
both enabled and OK, and a wheel carries both (the built extension and the enabling config)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
JUPYTER = str(Path(sys.executable).with_name("jupyter"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(*args, home: Path) -> str:
    """Returns the combined output of a `jupyter` sub-command run with a temporary home and config dir."""
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
           "JUPYTER_DATA_DIR": str(home / "jupyter-data"), "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime")}
    done = subprocess.run([JUPYTER, *args], env=env, capture_output=True, text=True, timeout=120)
    return ANSI.sub("", done.stdout + done.stderr)


def test_labextension_list_shows_the_sidebar_enabled_and_ok(isolated_home):
    out = jupyter("labextension", "list", home=isolated_home)
    assert re.search(r"autoresearch-magics v\S+ enabled\s+OK \(python, autoresearch-magics\)", out), out


def test_server_extension_list_shows_the_routes_enabled_and_ok(isolated_home):
    out = jupyter("server", "extension", "list", home=isolated_home)
    assert re.search(r"autoresearch_magics\.server\s+enabled", out), out
    assert re.search(r"autoresearch_magics\.server\s+OK", out), out


@pytest.mark.skipif(not (REPO / "labextension" / "dist" / "package.json").exists(),
                    reason="build the extension first: scripts/build_labextension.sh")
def test_wheel_carries_the_labextension_and_the_server_config(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", "tests", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    str(source), "-w", str(tmp_path / "wheel")], check=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] for n in names if "/data/" in n) + "/data/"
    labext = data + "share/jupyter/labextensions/autoresearch-magics/"
    assert labext + "package.json" in names and labext + "install.json" in names
    assert any(n.startswith(labext + "static/remoteEntry.") for n in names)
    assert data + "etc/jupyter/jupyter_server_config.d/autoresearch_magics.json" in names
    assert "autoresearch_magics/server/handlers.py" in names
