"""Curves, pruning and honest verdicts through the engine: real child processes, a real git repo."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_magics.core.campaign import Campaign
from autoresearch_magics.core.curves import read_curve_file
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.proposers import RerunProposer

ROOT = Path(__file__).resolve().parent.parent
CURVE_SCRIPT = (ROOT / "tests" / "fixtures" / "curve_train.py").read_text()
BUDGET = 2.0

# A CPU-bound script: its share of the machine drops when other processes compete for the CPU.
BUSY_SCRIPT = '''
import os, time
FINAL = 3.0
budget = float(os.environ["AUTORESEARCH_BUDGET_S"])
start = time.process_time()
step = 0
while time.process_time() - start < budget:
    x = 0
    for i in range(20000):
        x += i * i
    step += 1
    if step % 20 == 0:
        done = time.process_time() - start
        print(f"step {step:05d} ({100 * done / budget:.1f}%) | loss: {FINAL + 1 / (1 + done):.4f}", flush=True)
print("---")
print(f"val_bpb:          {FINAL:.6f}")
print(f"training_seconds: {budget:.1f}")
'''


def _campaign(tmp_path, script=CURVE_SCRIPT, **settings) -> Campaign:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.py").write_text(script)
    return Campaign.init(folder, tag="t", budget_s=BUDGET, **settings)


def _edit(campaign, name: str, value) -> None:
    """Changes one constant of train.py in the working copy."""
    path = campaign.paths.root / "train.py"
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(f"{name} = "):
            lines[i] = f"{name} = {value!r}\n"
            break
    else:
        raise AssertionError(f"{name} not in train.py")
    path.write_text("".join(lines))


@pytest.mark.timeout(180)
def test_every_run_has_a_curve_a_crashed_one_too_and_the_cli_reads_them(tmp_path):
    campaign = _campaign(tmp_path)
    campaign.run("baseline")
    _edit(campaign, "CRASH_AT", 0.5)
    crashed = campaign.run("crashes half way")[-1]
    assert crashed.status == "crash"
    first, second = (read_curve_file(campaign.paths.logs / f"{n:04d}.curve.jsonl") for n in (1, 2))
    assert len(first) > 20 and max(p["progress"] for p in first) > 0.9
    assert second and 0.3 < max(p["progress"] for p in second) < 0.6   # the partial curve it had

    frame = campaign.curves()
    assert set(frame["experiment"].unique()) == {1, 2}
    assert {"step", "training_seconds", "loss", "progress"} <= set(frame.columns)
    assert len(campaign.curves([2])) == len(second)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", "curves", "--csv", "-C",
                          str(campaign.paths.root)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("experiment,run,step,training_seconds,progress,wall_s,loss")
    assert len(lines) == 1 + len(frame)
    out = subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", "curves", "-C",
                          str(campaign.paths.root)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    png = campaign.paths.root / "curves.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and "experiments 1, 2" in out.stdout

    from autoresearch_magics.core.proposers import make_proposer
    from autoresearch_magics.presentation.report import write_report
    summary = write_report(campaign, tmp_path / "report")
    assert "![learning curves](curves.png)" in summary.read_text()
    assert (tmp_path / "report" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    agent = make_proposer(campaign, "agent", agent_cmd="true")
    text = agent.curve_summary(campaign)
    assert text.startswith("Learning curves") and "best #1" in text and "last #2" in text


@pytest.mark.timeout(180)
def test_with_prune_a_bad_edit_is_stopped_with_evidence_and_a_good_one_runs_to_the_end(tmp_path):
    campaign = _campaign(tmp_path)
    campaign.update_stop_rules(prune=True)
    assert Campaign.open(campaign.paths.root).config.prune is True   # saved in campaign.json
    base = campaign.run("baseline")[-1]
    assert base.status == "keep"

    _edit(campaign, "FINAL_LOSS", 4.5)
    bad = campaign.run("much worse")[-1]
    assert bad.status == "discard" and bad.pruned and bad.crash_reason == ""
    assert bad.evidence.startswith("pruned at ") and "of the budget: loss " in bad.evidence
    assert "against the best's" in bad.evidence and "spread" in bad.evidence
    curve = read_curve_file(campaign.paths.logs / "0002.curve.jsonl")
    assert curve and max(p["progress"] for p in curve) < 0.9
    assert (campaign.paths.logs / "0002.log").stat().st_size > 0

    row = campaign.rows()[-1]
    assert row["status"] == "discard" and row["evidence"] == bad.evidence
    assert row["val_bpb"] != "0.000000" and math.isnan(float(row["val_bpb"]))
    frame = campaign.frame()
    assert math.isnan(frame["val_bpb"].iloc[-1]) and frame["val_bpb"].notna().sum() == 1
    assert campaign.best()["key"] == "1" and campaign.noise() == (None, 0)

    _edit(campaign, "FINAL_LOSS", 2.8)
    good = campaign.run("better")[-1]
    assert good.status == "keep" and not good.pruned and good.metric == pytest.approx(2.8, abs=0.05)
    assert max(p["progress"] for p in read_curve_file(campaign.paths.logs / "0003.curve.jsonl")) > 0.95


@pytest.mark.timeout(180)
def test_a_pruned_run_on_the_local_pool_is_a_discard_too(tmp_path):
    from autoresearch_magics.core.executors.local import LocalPoolExecutor
    from autoresearch_magics.core.proposers import Proposal, Proposer

    campaign = _campaign(tmp_path)
    campaign.run("baseline")
    campaign.update_stop_rules(prune=True)
    text = (campaign.paths.root / "train.py").read_text()

    class Two(Proposer):
        name = "two"

        def __init__(self):
            self.left = [Proposal("worse", {"train.py": text.replace("FINAL_LOSS = 3.0", "FINAL_LOSS = 4.5")}),
                         Proposal("better", {"train.py": text.replace("FINAL_LOSS = 3.0", "FINAL_LOSS = 2.8")})]

        def propose(self, campaign):
            return self.left.pop(0) if self.left else None

    results = run_loop(campaign, Two(), 2, executor=LocalPoolExecutor(gpus_per_experiment=0), parallel=2)
    by_name = {r.description: r for r in results}
    assert by_name["worse"].status == "discard" and by_name["worse"].evidence.startswith("pruned at ")
    assert by_name["better"].status == "keep" and not by_name["better"].pruned


@pytest.mark.timeout(180)
def test_an_identical_rerun_of_the_best_is_never_kept(tmp_path):
    script = CURVE_SCRIPT.replace("FINAL_NOISE = 0.004", "FINAL_NOISE = 0.05")  # re-runs differ: some "win"
    campaign = _campaign(tmp_path, script)
    campaign.run("baseline")
    results = run_loop(campaign, RerunProposer(), 3)
    assert [r.status for r in results] == ["discard"] * 3
    assert all(r.evidence.startswith("same code as the best (experiment 1): another measurement") for r in results)
    sigma, df = campaign.noise()
    assert df == 3 and sigma is not None   # the re-runs joined the best's group for the noise estimate
    assert campaign.best()["key"] == "1"


@pytest.mark.timeout(240)
def test_a_run_that_got_less_of_the_machine_is_rerun_then_marked(tmp_path):
    campaign = _campaign(tmp_path, BUSY_SCRIPT)
    campaign.config.max_share_gap = 0.01   # low enough that competing burners trip it every time
    campaign.config.fair_min_cpu_s = 0.0   # the script is short: judge it anyway
    campaign.config.save(campaign.paths)
    campaign.run("baseline")
    _edit(campaign, "FINAL", 3.5)
    burner = "while True: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burner]) for _ in range(3)]
    try:
        results = campaign.run("worse, on a loaded machine")
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()
    assert [r.run for r in results] == [1, 2]        # re-run once, then marked
    assert all(r.status == "discard" for r in results)
    assert "unfair comparison: machine share" in results[-1].evidence
    assert "the best got more of the machine" in results[-1].evidence
    rows = campaign.rows()
    shares = [float(r["machine_share"]) for r in rows]
    assert shares[0] > shares[1] and shares[0] > shares[2]
    assert all(float(r["cpu_s"]) > 0 and r["other_cpu_s"] != "" for r in rows)


@pytest.mark.timeout(180)
def test_the_panel_draws_the_running_curve_over_the_best_from_the_engines_events(tmp_path):
    from autoresearch_magics.core.events import CampaignListener
    from autoresearch_magics.presentation.panel import ExperimentPanel

    class Recorder(CampaignListener):
        def __init__(self):
            self.started, self.snapshots = [], []

        def experiment_started(self, info):
            self.started.append(info)

        def updated(self, snapshot):
            self.snapshots.append(snapshot)

    campaign = _campaign(tmp_path)
    campaign.run("baseline")
    _edit(campaign, "FINAL_LOSS", 2.9)
    heard = Recorder()
    campaign.run("better", listener=heard)
    best_curve = heard.started[-1]["best_curve"]
    assert 10 < len(best_curve) <= 60 and best_curve[-1][0] > 1.5   # thinned, reaching the end of the budget
    curves = [s["curve"] for s in heard.snapshots if s.get("curve")]
    assert curves and all(len(c) <= 60 for c in curves) and len(curves[-1]) > len(curves[0])

    panel = ExperimentPanel("val_bpb", BUDGET, "better")
    panel.experiment_started(heard.started[-1])
    for snapshot in heard.snapshots:
        panel.updated(snapshot)
    panel._batch.flush(wait=True)
    svg = panel.curve.value
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "this run" in svg and "best" in svg


def test_a_pruned_result_reads_well_in_the_terminal_and_the_panel():
    from autoresearch_magics.core.events import ExperimentResult
    from autoresearch_magics.presentation.panel import describe_outcome
    from autoresearch_magics.presentation.text import format_result

    evidence = "pruned at 42% of the budget: loss 5.91 against the best's 5.62, spread 0.03"
    result = ExperimentResult(7, 1, "abcdef1234", "1234567", "discard", None, 3.0, "worse", evidence=evidence,
                              pruned=True, machine_share=0.91)
    assert format_result(result, "val_bpb") == f"experiment 7 [abcdef1] 'worse': DISCARD - {evidence}"
    html = describe_outcome(result, "val_bpb")
    assert "pruned at 42% of the budget" in html and "machine share 0.91" in html and "val_bpb -" in html
