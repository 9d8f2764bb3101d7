"""The notebook panel follows a run's phases with the sidebar's rule: an empty bar labelled start-up until
training starts, training seconds over the budget while it trains, full while it evaluates; a finished
run shows its peak memory, never the last sample taken as it exited."""
import os
import threading
import time

import pytest
from helpers import write_script
from test_magics import ar, magics_of, panels, shell  # noqa: F401  (shell is a fixture)
from test_phases import phased

from autoresearch_magics import Campaign
from autoresearch_magics.core.events import ExperimentResult
from autoresearch_magics.core.live import LiveState, write_json_atomic
from autoresearch_magics.core.paths import CampaignPaths
from autoresearch_magics.core.phases import live_progress
from autoresearch_magics.presentation.panel import ExperimentPanel
from autoresearch_magics.server import payloads

START = {"experiment": 1, "run": 1, "description": "x", "commit": "abc1234", "parent": "abc1234", "budget_s": 60}


def _live(tmp_path, budget_s=60.0) -> LiveState:
    paths = CampaignPaths.of(tmp_path)
    paths.state.mkdir(parents=True, exist_ok=True)
    return LiveState(paths, 1, "x", "abc1234", budget_s)


def _bar(panel):
    return panel.progress.value, panel.progress.description


def test_a_long_start_up_leaves_the_bar_empty_and_training_starts_from_zero(tmp_path):
    live = _live(tmp_path)
    panel = ExperimentPanel("val_bpb", 60)
    panel.experiment_started(START)
    live.started -= 45            # 45 s of imports and data loading: most of the 60 s budget in wall time
    panel.updated(live.snapshot())
    panel._batch.flush(wait=True)
    assert _bar(panel) == (0.0, "start-up")
    assert "starting up: 45 s so far, before the 1m00s of training" in panel.stats.value
    live.on_lines(["step 00001 (5.0%) | loss: 3.0 | remaining: 57s"])
    panel.updated(live.snapshot())
    panel._batch.flush(wait=True)
    assert _bar(panel) == (pytest.approx(0.05), "5%")    # 3 s of training, not 48 s of wall time
    live.on_lines(["step 00090 (100.0%) | loss: 2.0 | remaining: 0s"])
    panel.updated(live.snapshot())
    panel._batch.flush(wait=True)
    assert _bar(panel) == (1.0, "evaluating") and "training done (1m00s), evaluating" in panel.stats.value


def test_panel_and_sidebar_payload_show_the_same_fraction_for_the_same_live_state(tmp_path):
    Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=60)
    paths = CampaignPaths.of(tmp_path / "c")
    live = LiveState(paths, 1, "x", "abc1234", 60.0)   # this process is its runner: the file reads as live
    live.started -= 20
    panel = ExperimentPanel("val_bpb", 60)
    panel.experiment_started(START)
    for lines in ([], ["loading"], ["step 00010 (25.0%) | loss: 3.0 | remaining: 45s"],
                  ["step 00020 (60.0%) | loss: 2.5 | remaining: 24s"], ["step 00040 (100.0%) | loss: 2.1"]):
        live.on_lines(lines)
        state = live.snapshot()
        write_json_atomic(paths.live, state)           # what the runner writes, as the server reads it
        sidebar = payloads.status(paths.root, tmp_path)["running"]["progress"]
        panel.updated(state)
        panel._batch.flush(wait=True)
        assert panel.progress.value == pytest.approx(sidebar["fraction"])
        assert sidebar["fraction"] == pytest.approx(state["training_fraction"])   # the file's own field agrees
        assert sidebar["text"] in panel.stats.value
    assert sidebar["phase"] == "evaluation" and sidebar["label"] == "evaluating"


def test_the_rule_labels_every_phase_and_leaves_an_unknown_phase_undetermined():
    state = {"budget_s": 300, "elapsed_s": 95, "percent": None, "training_seconds": None}
    assert live_progress({**state, "phase": "preparation"})["label"] == "preparing data"
    assert live_progress({**state, "phase": "preparation"})["fraction"] == 0.0
    assert live_progress({**state, "phase": "start-up"})["text"].startswith("starting up: 1m35s so far")
    training = live_progress({**state, "phase": "training", "training_seconds": 150.0})
    assert training["fraction"] == 0.5 and training["text"] == "2m30s of 5m00s training (50%)"
    assert live_progress(state)["fraction"] is None       # a runner that records no phase and no progress


def _result(**fields) -> ExperimentResult:
    values = dict(experiment=1, run=1, commit="abc1234", parent="abc1234", status="keep", metric=1.2,
                  best_before=None, description="x", wall_s=70.0,
                  phases={"startup_s": 6.0, "train_wall_s": 60.0, "eval_s": 4.0, "overhead_s": 0.3})
    values.update(fields)
    return ExperimentResult(**values)


def test_a_finished_run_shows_its_peak_memory_not_the_last_sample(tmp_path):
    live = _live(tmp_path)
    panel = ExperimentPanel("val_bpb", 60)
    panel.experiment_started(START)
    live.on_lines(["step 00010 (50.0%) | loss: 3.0 | remaining: 30s"])
    live.on_rss(412.0)
    live.on_rss(2.0)              # the last sample: the training process has exited
    snapshot = live.snapshot()
    assert snapshot["peak_rss_mb"] == 412.0
    panel.updated(snapshot)
    panel.experiment_finished(_result(peak_rss_gb=0.41, summary={"peak_rss_mb": 430.5}))
    panel._batch.flush(wait=True)
    stats = panel.stats.value
    assert "peak RSS 430 MB" in stats and "RSS 2 MB" not in stats
    assert "1m10s wall (start-up 6.0 s, training 1m00s, evaluation 4.0 s)" in stats
    bare = ExperimentPanel("val_bpb", 60)
    bare.experiment_started(START)
    bare.updated({**snapshot, "peak_rss_mb": 0.0, "rss_mb": 2.0})
    bare.experiment_finished(_result(peak_rss_gb=0.0, summary={}))
    bare._batch.flush(wait=True)
    assert "RSS" not in bare.stats.value   # nothing known: nothing shown


class Recording(ExperimentPanel):
    """A panel that notes its bar after every progress event of the engine."""

    seen: list

    def updated(self, snapshot: dict) -> None:
        super().updated(snapshot)
        self._batch.flush(wait=True)
        self.seen = getattr(self, "seen", []) + [_bar(self)]


@pytest.mark.timeout(60)
def test_the_panel_follows_a_real_run_through_its_phases(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, phased(startup=2.0, train=2.0, evaluation=1.5))
    campaign = Campaign.init(folder, tag="t", budget_s=2)
    panel = Recording("val_bpb", 2)
    result = campaign.run("phased", listener=panel)[-1]
    panel._batch.flush(wait=True)
    assert result.status == "keep", result.crash_reason
    seen = panel.seen + [_bar(panel)]
    labels = [label for _, label in seen]
    assert "start-up" in labels and "evaluating" in labels and labels[-1] == "done"
    assert all(value == 0.0 for value, label in seen if label == "start-up")
    training = [value for value, label in seen if label.endswith("%")]
    assert training and training == sorted(training)     # never drops back once training started
    assert "peak RSS" in panel.stats.value and "training" in panel.stats.value


@pytest.mark.timeout(90)
def test_the_panel_in_a_shell_shows_start_up_then_training_and_ends_with_peak_memory(shell):  # noqa: F811
    folder = os.path.abspath("camp")
    os.makedirs(folder)
    write_script(folder, phased(startup=2.5, train=2.0, evaluation=0.5))
    ar(shell, "init camp --tag t --budget 2")
    ar(shell, "run -m phased")
    panel = panels(shell)[-1]
    job, _ = magics_of(shell).active.jobs[-1]
    seen, done = [], threading.Event()

    def sample():
        while not done.is_set():
            seen.append((panel.progress.description, panel.progress.value))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    ar(shell, "wait")
    done.set()
    sampler.join()
    assert job.finished and "KEEP" in panel.outcome.value
    assert any(label == "start-up" for label, _ in seen) and any(label.endswith("%") for label, _ in seen)
    assert all(value == 0.0 for label, value in seen if label == "start-up")
    assert "peak RSS" in panel.stats.value and "RSS 2 MB" not in panel.stats.value
