"""A campaign notebook saved without widget state (JupyterLab's default), reopened in a real JupyterLab
with a fresh kernel: every panel shows its static copy; no 'model not found', no widget repr."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import nbformat
import pytest

from conftest import CHROMIUM, isolated_env, screenshot
from test_static_panels import campaign_notebook

from autoresearch_magics.presentation.notebook_runner import run_notebook

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium: run scripts/install_browser.sh")

NAME = "campaign-report.ipynb"


@pytest.fixture(scope="module")
def saved_notebook(lab, lab_home, tmp_path_factory):
    """Executes the campaign notebook headless, strips its widget state as JupyterLab saves it by default,
    and trusts it (as a notebook the user saved is), so JupyterLab picks the widget renderer if it can."""
    work = tmp_path_factory.mktemp("report")
    source = work / "source.ipynb"
    nbformat.write(campaign_notebook(work / "campaign"), source)
    nb = nbformat.read(run_notebook(source, work / "executed.ipynb", cwd=work, timeout_s=180), as_version=4)
    del nb.metadata["widgets"]
    path = lab.root / NAME
    nbformat.write(nb, path)
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(path)], env=isolated_env(lab_home), check=True,
                   capture_output=True)
    return path


def kernel_of(lab, name: str) -> str:
    sessions = lab.api("api/sessions")
    return next(s["kernel"]["id"] for s in sessions if s["path"].endswith(name))


def restart(lab, kernel_id: str) -> None:
    request = urllib.request.Request(f"{lab.url}/api/kernels/{kernel_id}/restart", method="POST", data=b"{}",
                                     headers={"Authorization": f"token {lab.token}"})
    urllib.request.urlopen(request, timeout=30).read()


def visible_outputs(page) -> str:
    """Returns the text of every output the page's styles do not hide (scrolled out of view or not)."""
    return page.evaluate("() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-child'))"
                         ".filter(n => getComputedStyle(n).display !== 'none')"
                         ".map(n => n.textContent).join('\\n')")


def test_reopened_notebook_shows_static_panels_not_model_not_found(page, lab, saved_notebook):
    page.goto(f"{lab.url}/lab/tree/{NAME}?token={lab.token}", wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-OutputArea-child").first.wait_for()
    # the widget manager restores from the new kernel, then says "model not found" for the views it
    # cannot find: wait for that moment before reading
    page.wait_for_function("() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                           ".some(n => n.textContent.includes('model not found'))", timeout=60_000)
    check_static_panels(page)
    screenshot(page, "notebook-reopened")
    page.locator(".jp-Cell").last.scroll_into_view_if_needed()
    screenshot(page, "notebook-reopened-end")

    restart(lab, kernel_of(lab, NAME))
    page.wait_for_timeout(2000)
    check_static_panels(page)


def check_static_panels(page) -> None:
    text = visible_outputs(page)
    for needle in ("#1 baseline — KEEP", "#2 learning rate at its optimum — KEEP", "+LEARNING_RATE = 0.01",
                   "loop (sweep) · now #4 — DONE", "campaign report", "NOT LIVE"):
        assert needle in text, needle
    assert "model not found" not in text.lower() and "Loading widget" not in text
    assert "VBox(" not in text and "RUNNING" not in text
    # the five copies are drawn as HTML (not as their plain-text version), and shown
    shown = page.evaluate("() => Array.from(document.querySelectorAll("
                          "'.jp-OutputArea-output[data-mime-type=\"text/html\"] .autoresearch-static'))"
                          ".filter(n => getComputedStyle(n.closest('.jp-OutputArea-child')).display !== 'none').length")
    assert shown == 5


def live_notebook() -> nbformat.NotebookNode:
    """A notebook that watches runs of the lab's `projects/live` campaign, with the liveness note
    shortened to 4 s so the test sees it appear."""
    from nbformat.v4 import new_code_cell, new_notebook
    cells = ["import os\nimport autoresearch_magics.presentation.html as page_html\n"
             "import autoresearch_magics.presentation.panel as panel_module\n"
             "page_html.STALE_AFTER_S, panel_module.HEARTBEAT_S = 4, 1\n%cd projects/live\nos.getpid()",
             '%load_ext autoresearch_magics\n%autoresearch run -m "watched live"',
             '%autoresearch run -m "cut off by the death of the kernel"']
    return new_notebook(cells=[new_code_cell(c) for c in cells],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def run_next_cell(page) -> None:
    page.keyboard.press("Shift+Enter")


def test_live_panel_hides_its_static_copy_and_says_when_its_kernel_died(page, lab):
    path = lab.root / "live-panel.ipynb"
    nbformat.write(live_notebook(), path)
    page.goto(f"{lab.url}/lab/tree/{path.name}?token={lab.token}", wait_until="domcontentloaded")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-Cell").first.click()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                 ".jp-Toolbar-kernelStatus").first.wait_for(state="attached", timeout=60_000)
    page.wait_for_timeout(1500)
    page.keyboard.press("Escape")
    run_next_cell(page)
    pid_output = notebook.locator(".jp-Cell").nth(0).locator(".jp-OutputArea-executeResult")
    pid_output.wait_for(timeout=60_000)
    kernel_pid = int(pid_output.locator(".jp-OutputArea-output").text_content().strip())

    run_next_cell(page)
    first = notebook.locator(".jp-Cell").nth(1)
    first.locator(".autoresearch-live").wait_for(timeout=60_000)
    text = lambda cell: cell.evaluate("c => Array.from(c.querySelectorAll('.jp-OutputArea-child'))"
                                      ".filter(n => getComputedStyle(n).display !== 'none')"
                                      ".map(n => n.innerText).join('\\n')")
    assert "NOT LIVE" not in text(first)                       # the static copy hides behind the live panel
    assert first.locator(".autoresearch-static").count() == 1
    first.locator(".autoresearch-live", has_text="KEEP").wait_for(timeout=60_000)
    assert "no news from the kernel" not in text(first)        # a finished job's note is gone

    run_next_cell(page)
    second = notebook.locator(".jp-Cell").nth(2)
    second.locator(".autoresearch-live", has_text="RUNNING").wait_for(timeout=60_000)
    os.kill(kernel_pid, 9)
    stale = second.locator(".autoresearch-stale")
    page.wait_for_function("el => getComputedStyle(el).visibility === 'visible'", arg=stale.element_handle(),
                           timeout=30_000)
    assert "this view is no longer live" in text(second)
    page.get_by_role("button", name="Ok").click()
    second.scroll_into_view_if_needed()
    screenshot(page, "notebook-kernel-died")
