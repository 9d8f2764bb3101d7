"""Early stopping: the rule on synthetic curves, and through real child processes (a bad edit is ended
early with its evidence and keeps its partial curve and log, a good one runs to the end)."""
import math
import sys
from pathlib import Path

import pytest

from autoresearch_magics.core.campaign import Campaign
from autoresearch_magics.core.curves import CurveRecorder, curve_path_for, read_curve_file
from autoresearch_magics.core.pruning import PruneReference, PruneSettings, prune_reference
from autoresearch_magics.core.results import ResultRow
from autoresearch_magics.core.runner import RunSpec, run

PY = sys.executable
FIXTURE = Path(__file__).parent / "fixtures" / "curve_train.py"
BUDGET = 100.0


def _curve(final, rate=20.0, start=8.0, n=200, wobble=0.0):
    """Returns a power-law loss curve ending at `final`, as points."""
    scale = (start - final) / (1 - (1 + rate) ** -0.7)
    return [{"training_seconds": BUDGET * (i + 1) / n, "progress": (i + 1) / n,
             "loss": final + scale * ((1 + rate * (i + 1) / n) ** -0.7 - (1 + rate) ** -0.7)
             + wobble * math.sin(i)} for i in range(n)]


def _first_decision(reference, points):
    pruner = reference.pruner()
    for point in points:
        decision = pruner.observe([point])
        if decision is not None:
            return decision
    return None


def test_a_clearly_worse_curve_is_pruned_after_the_minimum_share_with_its_evidence():
    reference = PruneReference([_curve(3.0)], BUDGET)
    decision = _first_decision(reference, _curve(4.0))
    assert decision is not None and PruneSettings().min_fraction <= decision.fraction < 0.5
    assert decision.value > decision.best_value + decision.margin
    assert decision.evidence.startswith(f"pruned at {decision.fraction:.0%} of the budget: loss ")
    assert "against the best's" in decision.evidence and "spread" in decision.evidence
    assert decision.verdict().status == "discard" and decision.verdict().evidence == decision.evidence


def test_a_better_or_equal_curve_is_never_pruned_and_nothing_is_pruned_during_warm_up():
    reference = PruneReference([_curve(3.0)], BUDGET)
    assert _first_decision(reference, _curve(2.9)) is None
    assert _first_decision(reference, _curve(3.0, wobble=0.02)) is None
    hopeless = [p for p in _curve(30.0, start=40.0) if p["progress"] < PruneSettings().min_fraction]
    assert _first_decision(reference, hopeless) is None


def test_a_run_is_not_judged_during_its_own_warm_up_read_from_its_learning_rate_multiplier():
    reference = PruneReference([_curve(3.0)], BUDGET)
    def with_warm_up(points, until):   # lrm rises linearly to 1 over the first `until` share of the budget
        return [{**p, "lrm": round(min(1.0, p["progress"] / until), 2)} for p in points]
    hopeless = _curve(4.0, rate=3.0)
    assert _first_decision(reference, hopeless).fraction < 0.3
    assert _first_decision(reference, with_warm_up(hopeless, 0.4)).fraction >= 0.39  # lrm 0.99 at 39.6%
    assert _first_decision(reference, with_warm_up(hopeless, 0.05)).fraction < 0.3
    decaying = [{**p, "lrm": 0.5 - 0.4 * p["progress"]} for p in hopeless]    # no warm-up, peak below 1
    assert _first_decision(reference, decaying).fraction < 0.3


def test_a_slow_starter_that_ends_better_is_not_pruned():
    reference = PruneReference([_curve(3.0, rate=20.0)], BUDGET)
    slow = _curve(2.95, rate=10.0)  # must gain 1.3-1.5 times what the best still gains
    at_30 = next(p["loss"] for p in slow if p["progress"] >= 0.3)
    assert at_30 > reference.best_at(30.0) + 0.25  # clearly behind early on
    assert _first_decision(reference, slow) is None


def test_measured_spread_from_repeats_replaces_the_default():
    quiet = PruneReference([_curve(3.0), _curve(3.0)], BUDGET, [[_curve(3.5), _curve(3.5)]] * 5)
    noisy = PruneReference([_curve(3.0), _curve(3.3)], BUDGET, [[_curve(3.5), _curve(3.9)]] * 5)
    default = PruneReference([_curve(3.0)], BUDGET)
    t = 50.0
    assert quiet.spread_at(t, quiet.best_at(t)) < default.spread_at(t, default.best_at(t)) \
        < noisy.spread_at(t, noisy.best_at(t))
    candidate = _curve(3.35)
    assert _first_decision(quiet, candidate) is not None and _first_decision(noisy, candidate) is None


def test_the_catch_up_allowance_is_learned_from_finished_runs_only_once_there_are_enough():
    parallel = [_curve(3.0 + 0.01 * k) for k in range(8)]       # finished runs that never made up ground
    slow_starters = parallel[:7] + [_curve(3.05, rate=5.0)]   # one of them recovered late
    worse = _curve(3.4, rate=20.0)
    fixed = PruneReference([_curve(3.0)], BUDGET)
    learned = PruneReference([_curve(3.0)], BUDGET, finished_curves=parallel)
    recovering = PruneReference([_curve(3.0)], BUDGET, finished_curves=slow_starters)
    too_few = PruneReference([_curve(3.0)], BUDGET, finished_curves=parallel[:5])
    half_way = PruneReference([_curve(3.0)], BUDGET, finished_curves=[p[:100] for p in parallel])
    settings = PruneSettings()
    assert learned.allowance_at(30.0) == pytest.approx(settings.catch_up_floor)
    assert recovering.allowance_at(30.0) == settings.catch_up                # capped at the default
    assert too_few.allowance_at(30.0) == half_way.allowance_at(30.0) == settings.catch_up  # pruned runs teach nothing
    early, late = _first_decision(learned, worse), _first_decision(fixed, worse)
    assert early is not None and late is not None and early.fraction < late.fraction
    assert _first_decision(recovering, worse).fraction == late.fraction
    # a slow starter that ends better still runs to the end where runs recovered before
    assert _first_decision(recovering, _curve(2.95, rate=10.0)) is None


def _real_run(tmp_path, name, final, pruner=None, budget=2.0):
    log = tmp_path / "logs" / f"{name}.log"
    recorder = CurveRecorder(curve_path_for(log), budget)
    spec = RunSpec(command=f"{PY} {FIXTURE}", cwd=str(tmp_path), log_path=str(log), timeout_s=60,
                   env={"AUTORESEARCH_BUDGET_S": str(budget), "FINAL_LOSS": str(final), "STEPS": "80"},
                   curve=recorder, pruner=pruner)
    return run(spec), recorder


@pytest.mark.timeout(120)
def test_through_real_runs_a_bad_edit_is_stopped_early_and_a_good_one_runs_to_the_end(tmp_path):
    baseline, recorder = _real_run(tmp_path, "0001", final=3.0)
    assert baseline.returncode == 0 and not baseline.pruned
    reference = PruneReference([recorder.points], 2.0)

    bad, bad_curve = _real_run(tmp_path, "0002", final=4.5, pruner=reference.pruner())
    assert bad.pruned and not bad.stopped and not bad.timed_out and bad.summary == {}
    assert bad.prune_evidence.startswith("pruned at ") and "of the budget: loss " in bad.prune_evidence
    fraction = int(bad.prune_evidence.split()[2].rstrip("%")) / 100
    stored = read_curve_file(tmp_path / "logs" / "0002.curve.jsonl")
    assert 0.2 <= fraction < 0.8 and stored and max(p["progress"] for p in stored) < 0.9
    assert (tmp_path / "logs" / "0002.log").stat().st_size > 0

    good, _ = _real_run(tmp_path, "0003", final=2.9, pruner=reference.pruner())
    assert good.returncode == 0 and not good.pruned and good.prune_evidence == ""
    assert good.summary["val_bpb"] == pytest.approx(2.9, abs=0.05)


def test_prune_reference_reads_the_best_experiments_curves_from_the_campaign(tmp_path):
    campaign = Campaign.init(tmp_path / "c", tag="t1", template="toy", budget_s=BUDGET)
    logs = campaign.paths.logs
    for number, run_index, final, status in ((1, 1, 3.2, "keep"), (2, 1, 3.0, "keep"), (2, 2, 3.02, "keep"),
                                            (3, 1, 3.5, "discard")):
        name = f"{number:04d}" + ("" if run_index == 1 else f"-r{run_index}")
        recorder = CurveRecorder(logs / f"{name}.curve.jsonl", BUDGET)
        recorder.feed([f"step {i} ({p['progress'] * 100:.1f}%) | loss: {p['loss']:.5f}"
                       for i, p in enumerate(_curve(final))])
        recorder.close()
        campaign.results.append(ResultRow("abcdef1", final, 0.1, status, f"e{number}",
                                          extra={"experiment": number, "run": run_index,
                                                 "log": f"logs/{name}.log"}))
    reference = prune_reference(campaign, PruneSettings())
    assert reference is not None and len(reference.best) == 2  # experiment 2, both runs
    assert reference.best_at(BUDGET) == pytest.approx(3.02, abs=0.01)  # mean of both runs over the last 5%
    assert _first_decision(reference, _curve(3.5)) is not None


@pytest.mark.timeout(120)
def test_a_remote_workers_streamed_lines_are_recorded_and_pruned_on_the_receiving_side(tmp_path):
    from autoresearch_magics.core.curves import CurveWatch
    from autoresearch_magics.core.executors.base import TaskSpec
    from autoresearch_magics.core.executors.worker import stream_task
    _, baseline = _real_run(tmp_path, "0001", final=3.0)
    reference = PruneReference([baseline.points], 2.0)
    spec = TaskSpec(experiment=2, run=1, tag="t", command="python train.py", files={"train.py": FIXTURE.read_bytes()},
                    executable=[], env={"AUTORESEARCH_BUDGET_S": "2", "FINAL_LOSS": "4.5", "STEPS": "80"},
                    timeout_s=60, log_cap_bytes=1 << 20)
    watch = CurveWatch(CurveRecorder(tmp_path / "logs" / "0002.curve.jsonl", 2.0), reference.pruner())
    events = stream_task(spec, "job-1")
    decision = None
    for event in events:  # what the loop does with a Ray or Slurm run's events
        if event["kind"] == "output" and watch.lines(event["lines"]) is not None:
            decision = watch.decision
            events.close()  # cancelling the task ends the run on the worker
            break
    watch.close()
    assert decision is not None and decision.evidence.startswith("pruned at ")
    stored = read_curve_file(tmp_path / "logs" / "0002.curve.jsonl")
    assert stored and max(p["progress"] for p in stored) < 0.9
