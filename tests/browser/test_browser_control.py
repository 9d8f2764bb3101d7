"""The sidebar as a control surface in a real JupyterLab and Chromium: a Stop click lands while the
panel refreshes, chart points select experiments, diffs open in the main area, a run's curve is
drawn against the best's, and Run/Skip answer a waiting proposal."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import CHROMIUM, isolated_env, open_sidebar, screenshot

from autoresearch_magics.server import curves as curve_route

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium: run scripts/install_browser.sh")

CURVE_BUDGET_S = 1.5  # the curves campaign: ~30 progress lines per run
RUN = ("import sys\nfrom autoresearch_magics import Campaign\n"
       "Campaign.open(sys.argv[1]).run(sys.argv[2], files={'train.py': open(sys.argv[3]).read()} "
       "if len(sys.argv) > 3 else None)\n")


@pytest.fixture(scope="module")
def campaigns(lab, lab_home):
    """Adds projects/curves (a baseline and a better run, each with a loss curve in its log) and
    projects/approve (no runs: a test makes it wait on a proposal) under the lab's root."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in isolated_env(lab_home).items():
            mp.setenv(key, value)
        from autoresearch_magics import Campaign
        folder = lab.root / "projects" / "curves"
        campaign = Campaign.init(folder, tag="curves", template="toy", budget_s=CURVE_BUDGET_S)
        campaign.run("baseline")
        better = (folder / "train.py").read_text().replace("LEARNING_RATE = 0.003", "LEARNING_RATE = 0.01")
        campaign.run("raise the learning rate", files={"train.py": better})
        Campaign.init(lab.root / "projects" / "approve", tag="approve", template="toy", budget_s=1.0)
    return lab.root / "projects"


def select_campaign(panel, campaign_id):
    panel.locator(".jp-Autoresearch-picker").select_option(campaign_id)
    panel.locator(".jp-Autoresearch-tag").filter(has_text=campaign_id.rsplit("/", 1)[-1]).wait_for()


def start_run(folder, description, lab_home, train=None):
    args = [sys.executable, "-c", RUN, str(folder), description] + ([str(train)] if train else [])
    return subprocess.Popen(args, env=isolated_env(lab_home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_stop_button_keeps_its_element_and_every_click_lands_while_the_panel_refreshes(page, lab, lab_home):
    folder = lab.root / "projects" / "live"
    panel = open_sidebar(page)
    select_campaign(panel, "projects/live")
    # a run that outlives the clicks: after its training it waits a minute, until the test stops it
    slow = lab_home / "train-slow.py"
    slow.write_text((folder / "train.py").read_text().replace(
        "training_seconds = time.time() - train_start",
        "time.sleep(60)\ntraining_seconds = time.time() - train_start"))
    proc = start_run(folder, "click me while I train", lab_home, slow)
    try:
        stop = panel.locator(".jp-Autoresearch-stopButton")
        stop.wait_for(state="visible", timeout=15_000)
        # the campaign's baseline runs first: click once this experiment runs, not in the gap between the two
        panel.get_by_text("click me while I train").first.wait_for(timeout=60_000)
        stop.evaluate("button => { button.dataset.marker = 'first' }")
        times = set()
        for _ in range(4):  # each click opens the confirmation: a lost click would time out here
            stop.click(timeout=3_000)
            dialog = page.locator(".jp-Dialog")
            dialog.wait_for(timeout=3_000)
            assert "Stop the running experiment?" in dialog.inner_text()
            dialog.locator(".jp-mod-reject").click()
            dialog.wait_for(state="detached")
            times.add(panel.locator(".jp-Autoresearch-trainingTime").inner_text())
            page.wait_for_timeout(400)  # let a refresh or two happen between clicks
        assert len(times) >= 2, times  # the panel did refresh in between
        assert stop.get_attribute("data-marker") == "first"  # the same element all along
        phase = panel.locator(".jp-Autoresearch-phase").inner_text()
        assert phase in ("running", "training", "starting up", "preparing data"), phase
        screenshot(page, "control-running")
        stop.click(timeout=3_000)
        page.locator(".jp-Dialog .jp-mod-warn").click()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    last = (folder / "results.tsv").read_text().splitlines()[-1]
    assert "crash" in last and "stopped by user" in last
    panel.locator(".jp-Autoresearch-running").wait_for(state="hidden", timeout=10_000)


def test_clicking_a_chart_point_selects_that_experiment(page):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    panel.locator('.jp-Autoresearch-chart .jp-Autoresearch-point[data-experiment="3"]').click()
    panel.locator(".jp-Autoresearch-detail h3").filter(has_text="Experiment #3").wait_for()
    panel.locator(".jp-Autoresearch-detailSummary").filter(has_text="halve the width").wait_for()
    selected = panel.locator(".jp-Autoresearch-table tr.jp-mod-selected")
    assert selected.count() == 1 and selected.get_attribute("data-experiment") == "3"
    assert panel.locator('.jp-Autoresearch-point.jp-mod-selected').get_attribute("data-experiment") == "3"
    # a crash sits on the bottom axis and is selectable too
    panel.locator('.jp-Autoresearch-chart .jp-Autoresearch-point[data-experiment="4"]').click()
    panel.locator(".jp-Autoresearch-detail h3").filter(has_text="Experiment #4").wait_for()
    assert panel.locator(".jp-Autoresearch-table tr.jp-mod-selected").get_attribute("data-experiment") == "4"


def test_an_experiments_diff_and_log_open_in_the_main_area(page):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/nov22")
    panel.locator('.jp-Autoresearch-table tr[data-experiment="2"]').click()
    panel.locator(".jp-Autoresearch-detail .jp-Autoresearch-diff").wait_for()
    panel.locator(".jp-Autoresearch-detail .jp-Autoresearch-openButton").click()
    main = page.locator("#jp-main-dock-panel .jp-Autoresearch-experimentPanel")
    main.locator(".jp-Autoresearch-diff").wait_for()
    text = main.locator(".jp-Autoresearch-diff").inner_text()
    assert "-LEARNING_RATE = 0.003" in text and "+LEARNING_RATE = 0.01" in text
    added = main.locator(".jp-Autoresearch-diffLine.jp-mod-add").filter(has_text="LEARNING_RATE = 0.01")
    assert added.locator(".jp-mod-number").first.inner_text() == "0.01"  # syntax-coloured
    assert added.locator(".jp-Autoresearch-gutter").nth(1).inner_text().isdigit()  # new line number
    assert "val_bpb:" in main.locator(".jp-Autoresearch-log").inner_text()
    width = main.evaluate("node => node.getBoundingClientRect().width")
    assert width > 2 * panel.evaluate("node => node.getBoundingClientRect().width")
    assert page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").inner_text().strip() == "nov22 #2"
    screenshot(page, "control-diff-main-area")
    # a double click on a row opens that experiment in its own tab
    panel.locator('.jp-Autoresearch-table tr[data-experiment="3"]').dblclick()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").filter(has_text="nov22 #3").wait_for()
    assert "WIDTH = 64" in page.locator(
        "#jp-main-dock-panel .jp-Autoresearch-experimentPanel:visible .jp-Autoresearch-diff").inner_text()


def test_the_selected_runs_curve_is_drawn_against_the_best(page, campaigns):
    panel = open_sidebar(page)
    select_campaign(panel, "projects/curves")
    panel.locator('.jp-Autoresearch-table tr[data-experiment="1"]').click()
    box = panel.locator(".jp-Autoresearch-detail .jp-Autoresearch-curveBox")
    if curve_route.curve_reader() is None:
        box.filter(has_text="No loss curves").wait_for()  # after the server's 501
        pytest.skip("autoresearch_magics.core.curves is not in this tree yet: the sidebar shows the server's "
                    "501 message instead of a curve")
    box.locator(".jp-Autoresearch-curveRun").wait_for()
    assert box.locator(".jp-Autoresearch-curveBest").count() == 1
    assert "best #2" in box.locator(".jp-Autoresearch-legend").inner_text()
    assert "vs best #2" in box.locator(".jp-Autoresearch-curveText").inner_text()
    segments = box.locator(".jp-Autoresearch-curveRun").get_attribute("d").count("L")
    assert segments >= 10, segments
    screenshot(page, "control-curve")


def test_run_and_skip_answer_a_waiting_proposal(page, campaigns):
    folder = campaigns / "approve"
    live = {"state": "running", "experiment": 1, "run": 1, "description": "widen the model",
            "commit": "", "budget_s": 1.0, "elapsed_s": 0.0, "training_fraction": 0.0, "step": None,
            "percent": None, "loss": None, "remaining_s": None, "rss_mb": 0.0, "tail": [],
            "runner_pid": os.getpid(),  # a live process stands in for the waiting runner
            "waiting_proposal": {"experiment": 1, "description": "widen the model",
                                 "diff": "--- a/train.py\n+++ b/train.py\n@@ -15,1 +15,1 @@\n"
                                         "-WIDTH = 128  # hidden units\n+WIDTH = 256  # hidden units\n"}}
    (folder / ".autoresearch" / "live.json").write_text(json.dumps(live))
    decision = folder / ".autoresearch" / "decision.json"
    try:
        panel = open_sidebar(page)
        select_campaign(panel, "projects/approve")
        proposal = panel.locator(".jp-Autoresearch-proposal")
        proposal.wait_for(state="visible")
        assert "Proposal #1" in proposal.inner_text() and "widen the model" in proposal.inner_text()
        assert "+WIDTH = 256" in proposal.locator(".jp-Autoresearch-diff").inner_text()
        assert panel.locator(".jp-Autoresearch-running").is_hidden()  # waiting is not running
        proposal.locator(".jp-Autoresearch-reason").fill("widths were tried in the last campaign")
        page.wait_for_timeout(1500)  # refreshes keep the half-typed reason
        assert proposal.locator(".jp-Autoresearch-reason").input_value() == "widths were tried in the last campaign"
        screenshot(page, "control-proposal")
        proposal.locator(".jp-Autoresearch-skipButton").click()
        deadline = time.monotonic() + 10
        while not decision.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        written = json.loads(decision.read_text())
        assert (written["experiment"], written["decision"], written["reason"]) == (
            1, "skip", "widths were tried in the last campaign")

        decision.unlink()
        live["waiting_proposal"] = {**live["waiting_proposal"], "experiment": 2, "description": "deeper"}
        live["experiment"] = 2
        (folder / ".autoresearch" / "live.json").write_text(json.dumps(live))
        panel.locator(".jp-Autoresearch-proposalTitle").filter(has_text="Proposal #2").wait_for(timeout=10_000)
        assert proposal.locator(".jp-Autoresearch-reason").input_value() == ""  # a new proposal, a new reason
        proposal.locator(".jp-Autoresearch-runButton").click()
        deadline = time.monotonic() + 10
        while not decision.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        written = json.loads(decision.read_text())
        assert (written["experiment"], written["decision"], written["reason"]) == (2, "run", "")
    finally:
        (folder / ".autoresearch" / "live.json").unlink(missing_ok=True)
    proposal.wait_for(state="hidden", timeout=10_000)
