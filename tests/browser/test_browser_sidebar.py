"""The Autoresearch sidebar in a real JupyterLab and Chromium: it loads, lists the campaigns,
follows a running experiment and shows results.tsv as it is."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import CHROMIUM, isolated_env, open_sidebar, screenshot

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium: run scripts/install_browser.sh")

ROWS_JS = "trs => trs.map(tr => Array.from(tr.cells).map(td => td.textContent))"


def tsv_rows(path):
    """Returns results.tsv as the table should show it: #, commit, metric (– for a crash), status, description."""
    header, *lines = path.read_text().splitlines()
    columns = header.split("\t")
    out = []
    for line in lines:
        row = dict(zip(columns, line.split("\t")))
        metric = "–" if row["status"] == "crash" else row[columns[1]]
        out.append([row["experiment"], row["commit"], metric, row["status"], row["description"]])
    return out


def select_campaign(panel, campaign_id):
    panel.locator(".jp-Autoresearch-picker").select_option(campaign_id)
    panel.locator(".jp-Autoresearch-tag").filter(has_text=campaign_id.rsplit("/", 1)[-1]).wait_for()


def table_rows(panel):
    return panel.locator(".jp-Autoresearch-table tbody tr").evaluate_all(ROWS_JS)


def test_extension_loads_and_its_commands_are_in_the_palette(page):
    panel = open_sidebar(page)
    assert panel.locator(".jp-Autoresearch-title").inner_text().lower() == "autoresearch"
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("campaign results as dataframe")
    labels = page.locator(".lm-CommandPalette-itemLabel").all_inner_texts()
    assert "Open Campaign Results as DataFrame in a Notebook" in labels
    assert "Open Campaign Results as DataFrame in a Console" in labels


def test_sidebar_lists_the_campaigns_under_the_root(page):
    panel = open_sidebar(page)
    options = panel.locator(".jp-Autoresearch-picker option")
    options.nth(1).wait_for(state="attached")
    assert sorted(options.evaluate_all("os => os.map(o => o.value)")) == ["projects/live", "projects/nov22"]
    select_campaign(panel, "projects/nov22")
    assert "minimise val_bpb" in panel.locator(".jp-Autoresearch-objective").inner_text()
    assert "attempted" in panel.locator(".jp-Autoresearch-stop").inner_text()
    best = panel.locator(".jp-Autoresearch-bestValue").inner_text()
    assert "#2" in best and "vs baseline" in best and "−0.0" in best
    assert panel.locator(".jp-Autoresearch-chart .jp-Autoresearch-mark").count() == 4


def test_table_matches_results_tsv_sorts_and_shows_an_experiment(page, lab):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    expected = tsv_rows(lab.root / "projects" / "nov22" / "results.tsv")
    assert table_rows(panel) == expected
    statuses = panel.locator(".jp-Autoresearch-table tbody tr").evaluate_all("trs => trs.map(tr => tr.className)")
    assert [s.split("jp-mod-")[1].split()[0] for s in statuses] == [r[3] for r in expected]
    screenshot(page, "sidebar-results")

    header = panel.locator('.jp-Autoresearch-table th[data-column="val_bpb"]')
    header.click()
    ascending = sorted((r for r in expected if r[3] != "crash"), key=lambda r: float(r[2]))
    crashes = [r for r in expected if r[3] == "crash"]
    assert table_rows(panel) == ascending + crashes  # crashes last either way
    header.click()
    assert table_rows(panel) == ascending[::-1] + crashes

    panel.locator('.jp-Autoresearch-table tr[data-experiment="2"]').click()
    diff = panel.locator(".jp-Autoresearch-diff")
    diff.wait_for()
    assert "+LEARNING_RATE = 0.01" in diff.inner_text()
    assert "-LEARNING_RATE = 0.003" in diff.inner_text()
    assert "val_bpb:" in panel.locator(".jp-Autoresearch-log").inner_text()
    screenshot(page, "sidebar-experiment")


def test_notebook_button_opens_the_results_as_a_dataframe(page, lab):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    panel.locator(".jp-Autoresearch-action", has_text="Notebook").click()
    frame = page.locator(".jp-NotebookPanel .jp-OutputArea-output table.dataframe")
    frame.wait_for(timeout=90_000)  # a kernel starts and imports pandas
    assert frame.locator("tbody tr").count() == 4
    (notebook,) = (lab.root / "projects" / "nov22").glob("Untitled*.ipynb")  # created in the campaign folder

    # with the panel on another campaign, activating the notebook brings its campaign back
    select_campaign(panel, "projects/live")
    page.keyboard.press("Control+Shift+L")  # a launcher becomes the current tab
    page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[title*="{notebook.name}"]').click()
    panel.locator(".jp-Autoresearch-tag").filter(has_text="nov22").wait_for(timeout=10_000)
    assert panel.locator(".jp-Autoresearch-picker").input_value() == "projects/nov22"


def test_console_button_opens_the_results_as_a_dataframe(page):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    panel.locator(".jp-Autoresearch-action", has_text="Console").click()
    frame = page.locator(".jp-ConsolePanel .jp-OutputArea-output table.dataframe")
    frame.wait_for(timeout=90_000)
    assert frame.locator("tbody tr").count() == 4


def test_report_button_says_how_to_write_a_missing_report(page):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    panel.locator(".jp-Autoresearch-action", has_text="Report").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    assert "%autoresearch report" in dialog.inner_text() and "autoresearch-summary.md" in dialog.inner_text()
    dialog.locator(".jp-mod-accept").click()


def test_sidebar_follows_a_running_experiment_and_its_stop(page, lab, lab_home):
    folder = lab.root / "projects" / "live"
    panel = open_sidebar(page)
    select_campaign(panel, "projects/live")
    assert panel.locator(".jp-Autoresearch-table tbody tr").count() == 0
    run = ("import sys\nfrom autoresearch_magics import Campaign\n"
           "Campaign.open(sys.argv[1]).run(sys.argv[2], files={'train.py': open(sys.argv[3]).read()} "
           "if len(sys.argv) > 3 else None)\n")
    proc = subprocess.Popen([sys.executable, "-c", run, str(folder), "watch me train"],
                            env=isolated_env(lab_home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        running = panel.locator(".jp-Autoresearch-running")
        running.wait_for(state="visible", timeout=15_000)
        assert "Running #1" in running.locator(".jp-Autoresearch-runningTitle").inner_text()
        assert running.locator(".jp-Autoresearch-runningDesc").inner_text() == "watch me train"
        seen = {running.locator(".jp-Autoresearch-trainingTime").inner_text()}
        deadline = time.monotonic() + LIVE_WATCH_S
        while len(seen) < 3 and time.monotonic() < deadline and running.is_visible():
            page.wait_for_timeout(300)
            if running.is_visible():
                seen.add(running.locator(".jp-Autoresearch-trainingTime").inner_text())
                facts = running.locator(".jp-Autoresearch-runningFacts").inner_text()
        assert len(seen) >= 2, seen  # the training time moved while we watched
        assert "loss 1." in facts or "loss 2." in facts or "loss 3." in facts or "loss 4." in facts, facts
        screenshot(page, "sidebar-running")
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    running.wait_for(state="hidden", timeout=10_000)
    panel.locator(".jp-Autoresearch-table tbody tr").first.wait_for()
    assert table_rows(panel) == tsv_rows(folder / "results.tsv")

    # a second experiment, stopped from the sidebar: the runner records it and keeps the ratchet
    changed = lab_home / "train-wider.py"
    changed.write_text((folder / "train.py").read_text().replace("WIDTH = 128", "WIDTH = 256"))
    head = (folder / ".git" / "HEAD").read_text()
    proc = subprocess.Popen([sys.executable, "-c", run, str(folder), "wider", str(changed)],
                            env=isolated_env(lab_home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        panel.locator(".jp-Autoresearch-runningTitle").filter(has_text="Running #2").wait_for(timeout=15_000)
        panel.locator(".jp-Autoresearch-stopButton").click()
        page.locator(".jp-Dialog .jp-mod-warn").click()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    panel.locator('.jp-Autoresearch-table tr[data-experiment="2"]').wait_for(timeout=10_000)
    rows = tsv_rows(folder / "results.tsv")
    assert rows[-1][0] == "2" and rows[-1][3] == "crash"
    assert "stopped by user" in (folder / "results.tsv").read_text().splitlines()[-1]
    assert table_rows(panel) == rows
    assert (folder / ".git" / "HEAD").read_text() == head


LIVE_WATCH_S = 4.0
