"""The installed state: JupyterLab lists the sidebar extension and jupyter_server the routes,
both enabled and OK; a wheel carries both (the built extension and the enabling config); a build
without Node stops with one line saying so; the npm lock installs as it is on every platform.

The full user path (sdist, wheel, fresh venv without Node, server, browser) is
scripts/check_wheel.py, which the test command runs."""
from __future__ import annotations

import importlib.util
import json
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
BUILT = REPO / "autoresearch_magics" / "labextension"
# Left out of the copies the wheels are built from: version control, environments, caches.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info",
                                     "__pycache__", ".pytest_cache", "out")


def jupyter(*args, home: Path) -> str:
    """Returns the combined output of a `jupyter` sub-command run with a temporary home and config dir."""
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
           "JUPYTER_DATA_DIR": str(home / "jupyter-data"), "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime")}
    done = subprocess.run([JUPYTER, *args], env=env, capture_output=True, text=True, timeout=120)
    return ANSI.sub("", done.stdout + done.stderr)


def build_wheel(source: Path, out: Path, path: str | None = None) -> subprocess.CompletedProcess:
    """Runs `pip wheel` on a source tree, in pip's isolated build environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                           str(source), "-w", str(out)], env=env, capture_output=True, text=True, timeout=600)


def test_labextension_list_shows_the_sidebar_enabled_and_ok(isolated_home):
    out = jupyter("labextension", "list", home=isolated_home)
    assert re.search(r"autoresearch-magics v\S+ enabled\s+OK \(python, autoresearch-magics\)", out), out


def test_server_extension_list_shows_the_routes_enabled_and_ok(isolated_home):
    out = jupyter("server", "extension", "list", home=isolated_home)
    assert re.search(r"autoresearch_magics\s+enabled", out), out
    assert re.search(r"autoresearch_magics \S+ OK", out), out


def test_jupyter_reads_the_entry_points_without_importing_the_engine():
    """Jupyter imports the package at every server start and extension listing."""
    probe = ("import sys, autoresearch_magics as m; m._jupyter_server_extension_points(); "
             "print(sorted(name for name in ('git', 'pandas', 'torch', 'autoresearch_magics.core.campaign') "
             "if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    assert subprocess.run([sys.executable, "-c", "from autoresearch_magics import Campaign; Campaign.init"],
                          timeout=60).returncode == 0


def test_server_extension_entry_point_is_the_package_itself():
    import autoresearch_magics
    assert autoresearch_magics._jupyter_server_extension_points() == [{"module": "autoresearch_magics.server"}]
    (link,) = autoresearch_magics._jupyter_labextension_paths()
    assert (Path(autoresearch_magics.__file__).parent / link["src"]).name == "labextension"
    assert link["dest"] == json.loads((REPO / "labextension" / "package.json").read_text())["name"]


def test_the_extension_and_the_python_package_carry_the_same_version():
    import autoresearch_magics
    assert json.loads((REPO / "labextension" / "package.json").read_text())["version"] == autoresearch_magics.__version__


def test_lock_lists_every_platforms_optional_packages():
    """`npm ci` refuses a lock that lacks an optional dependency of a locked package, such as the
    rspack binding of another operating system."""
    packages = json.loads((REPO / "labextension" / "package-lock.json").read_text())["packages"]
    missing = [f"{name} -> {dep}" for name, meta in packages.items() if name
               for dep in meta.get("optionalDependencies", {})
               if f"node_modules/{dep}" not in packages and f"{name}/node_modules/{dep}" not in packages]
    assert not missing, missing
    assert any(name.endswith("binding-darwin-arm64") for name in packages)
    assert any(name.endswith("binding-win32-x64-msvc") for name in packages)


@pytest.mark.skipif(not (BUILT / "static" / "style.js").exists(),
                    reason="build the extension first: bash scripts/setup.sh (or npm run build in labextension/)")
def test_wheel_carries_the_labextension_and_the_server_config(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    done = build_wheel(source, tmp_path / "wheel")
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] for n in names if "/data/" in n) + "/data/"
    labext = data + "share/jupyter/labextensions/autoresearch-magics/"
    assert labext + "package.json" in names and labext + "install.json" in names
    assert any(n.startswith(labext + "static/remoteEntry.") for n in names)
    assert data + "etc/jupyter/jupyter_server_config.d/autoresearch_magics.json" in names
    assert "autoresearch_magics/server/handlers.py" in names
    assert "autoresearch_magics/templates/tinylm/train.py" in names
    assert not [n for n in names if n.startswith("autoresearch_magics/labextension/")]


def test_building_without_node_stops_with_one_line_saying_node_is_needed(tmp_path):
    spec = importlib.util.spec_from_file_location("check_wheel", REPO / "scripts" / "check_wheel.py")
    check_wheel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_wheel)
    source = tmp_path / "src"  # a clean clone's state: sources only, nothing built
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    shutil.rmtree(source / "autoresearch_magics" / "labextension", ignore_errors=True)
    path = check_wheel.path_without_node(tmp_path / "bin")
    done = build_wheel(source, tmp_path / "wheel", path=path)
    assert done.returncode != 0
    assert "building the JupyterLab extension needs Node.js" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
