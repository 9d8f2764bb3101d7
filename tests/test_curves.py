"""Learning curves: progress lines parsed, recorded next to the log (bounded, kept for crashed runs),
read back as one DataFrame, summarised for the agent, plotted; and the runner's machine share."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from autoresearch_magics.core.curves import (CurveRecorder, curve_from_log, curve_path_for, curve_summary_for_prompt,
                                             read_curve_file, read_curves)
from autoresearch_magics.core.progress_line import parse_progress_line
from autoresearch_magics.core.runner import RunSpec, run

PY = sys.executable
FIXTURE = Path(__file__).parent / "fixtures" / "curve_train.py"
REFERENCE = ("step 00042 (13.9%) | loss: 3.141593 | lrm: 1.00 | dt: 512ms | tok/sec: 1,024,000 | mfu: 39.8% | "
             "epoch: 1 | remaining: 258s")


def _spec(tmp_path, command, budget_s=None, timeout_s=60.0, **kw):
    log = tmp_path / "logs" / "0007.log"
    return RunSpec(command=command, cwd=str(tmp_path), log_path=str(log), timeout_s=timeout_s,
                   env={"AUTORESEARCH_BUDGET_S": f"{budget_s or 1}"},
                   curve=CurveRecorder(curve_path_for(log), budget_s), **kw)


def test_reference_progress_line_gives_every_numeric_field_with_units_in_the_name():
    point = parse_progress_line(REFERENCE)
    assert point == {"step": 42, "percent": 13.9, "loss": 3.141593, "lrm": 1.0, "dt_s": 0.512,
                     "tok_per_sec": 1024000.0, "mfu_pct": 39.8, "epoch": 1.0, "remaining_s": 258.0}
    assert parse_progress_line("val_bpb: 1.0") is None
    assert parse_progress_line("iter 7: loss=2.5, lr: 3e-4")["lr"] == pytest.approx(3e-4)


def test_training_seconds_come_from_the_budget_and_percent_else_remaining_else_wall_time():
    clock = iter([0.0, 5.0, 6.0, 7.0]).__next__
    recorder = CurveRecorder(None, budget_s=300, clock=clock)
    recorder.feed([REFERENCE, "step 00043 | loss: 3.0 | remaining: 200s", "step 00044 | loss: 2.9"])
    first, second, third = recorder.points
    assert first["training_seconds"] == pytest.approx(41.7) and first["progress"] == pytest.approx(0.139)
    assert second["training_seconds"] == pytest.approx(100.0) and second["progress"] == pytest.approx(1 / 3)
    assert third["training_seconds"] == pytest.approx(7.0) and third["wall_s"] == pytest.approx(7.0)


def test_carriage_return_rewrites_through_a_real_run_become_one_point_each(tmp_path):
    code = ("import sys\nfor i in range(5):\n"
            "    sys.stdout.write(f'\\rstep {i:05d} ({20 * (i + 1)}.0%) | loss: {5 - i}.5 | dt: 10ms'); sys.stdout.flush()\n"
            "print()\nprint('---')\nprint('val_bpb: 1.5')\n")
    script = tmp_path / "train.py"
    script.write_text(code)
    spec = _spec(tmp_path, f"{PY} {script}", budget_s=10)
    outcome = run(spec)
    points = read_curve_file(tmp_path / "logs" / "0007.curve.jsonl")
    assert outcome.returncode == 0 and [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert [p["loss"] for p in points] == [5.5, 4.5, 3.5, 2.5, 1.5]
    assert points[-1]["training_seconds"] == pytest.approx(10.0) and points[0]["dt_s"] == pytest.approx(0.01)


def test_partial_last_line_of_a_crashed_run_is_kept_and_a_cut_number_is_dropped(tmp_path):
    code = ("import sys\nsys.stdout.write('\\rstep 00001 (10.0%) | loss: 4.0')\n"
            "sys.stdout.write('\\rstep 00002 (20.0%) | loss: 3.5 | lrm: 0.')\nsys.stdout.flush()\nsys.exit(3)\n")
    script = tmp_path / "train.py"
    script.write_text(code)
    outcome = run(_spec(tmp_path, f"{PY} {script}", budget_s=100))
    points = read_curve_file(tmp_path / "logs" / "0007.curve.jsonl")
    assert outcome.returncode == 3
    assert [(p["step"], p["loss"]) for p in points] == [(1, 4.0), (2, 3.5)] and "lrm" not in points[-1]


def test_crashed_run_keeps_the_curve_it_had(tmp_path):
    spec = _spec(tmp_path, f"{PY} {FIXTURE}", budget_s=1.0)
    spec.env.update(CRASH_AT="0.5")
    outcome = run(spec)
    frame = read_curves([tmp_path / "logs" / "0007.log"])
    assert outcome.returncode != 0 and "synthetic crash" in "\n".join(outcome.tail)
    assert 30 <= len(frame) <= 55 and frame["progress"].max() < 0.5
    assert set(frame["experiment"]) == {7} and set(frame["run"]) == {1}
    assert frame["loss"].iloc[-1] < frame["loss"].iloc[0] and (tmp_path / "logs" / "0007.log").exists()


def test_a_huge_run_keeps_a_bounded_evenly_thinned_curve_with_its_last_point(tmp_path):
    recorder = CurveRecorder(tmp_path / "c.curve.jsonl", budget_s=100, max_points=64)
    total = 10_000
    for start in range(0, total, 500):
        recorder.feed([f"step {i:06d} ({100 * (i + 1) / total:.2f}%) | loss: {10 - i / total:.5f}"
                       for i in range(start, start + 500)])
    recorder.close()
    points = read_curve_file(tmp_path / "c.curve.jsonl")
    steps = [p["step"] for p in points]
    assert 32 <= len(points) <= 65 and steps[0] == 0 and steps[-1] == total - 1
    gaps = {b - a for a, b in zip(steps[:-2], steps[1:-1])}
    assert len(gaps) == 1  # evenly spaced apart from the last point
    assert points == recorder.points


def test_huge_log_flood_with_progress_lines_stays_bounded_through_the_runner(tmp_path):
    code = ("import sys\nw = sys.stdout.write\n"
            "for i in range(200_000): w(f'\\rstep {i:06d} ({i / 2000:.3f}%) | loss: {5 - i / 1e5:.5f}')\n"
            "print()\n")
    script = tmp_path / "train.py"
    script.write_text(code)
    outcome = run(_spec(tmp_path, f"{PY} {script}", budget_s=100))
    points = read_curve_file(tmp_path / "logs" / "0007.curve.jsonl")
    assert outcome.returncode == 0 and len(points) <= 1001 and points[-1]["step"] == 199_999


def test_log_of_a_run_without_a_curve_file_is_read_after_the_fact(tmp_path):
    log = tmp_path / "0003-r2.log"
    log.write_text("loading\n" + "".join(f"\rstep {i:05d} ({10 * (i + 1)}.0%) | loss: {9 - i}.0" for i in range(10))
                   + "\n---\nval_bpb: 1.0\n")
    frame = read_curves([log], budget_s=60)
    assert list(frame["experiment"].unique()) == [3] and list(frame["run"].unique()) == [2]
    assert frame["training_seconds"].tolist()[-1] == pytest.approx(60.0)
    assert curve_from_log(tmp_path / "missing.log") == []


def test_read_curves_from_rows_gives_the_long_frame_columns(tmp_path):
    logs = tmp_path / "logs"
    for number, losses in ((1, [5.0, 4.0]), (2, [5.5, 4.5, 4.2])):
        recorder = CurveRecorder(logs / f"{number:04d}.curve.jsonl", budget_s=10)
        recorder.feed([f"step {i} ({50 * (i + 1)}%) | loss: {v} | tok/sec: 2,000" for i, v in enumerate(losses)])
        recorder.close()
    rows = [{"experiment": "1", "run": "1", "log": "logs/0001.log"}, {"experiment": "2", "run": "1", "log": "logs/0002.log"}]
    frame = read_curves(rows, root=tmp_path)
    assert list(frame.columns[:7]) == ["experiment", "run", "step", "training_seconds", "progress", "wall_s", "loss"]
    assert frame.groupby("experiment").size().to_dict() == {1: 2, 2: 3}
    assert "tok_per_sec" in frame and frame["tok_per_sec"].eq(2000).all()


def test_prompt_summary_gives_loss_at_budget_fractions_for_best_and_last(tmp_path):
    logs = tmp_path / "logs"
    for number, final in ((4, 3.0), (9, 3.4)):
        recorder = CurveRecorder(logs / f"{number:04d}.curve.jsonl", budget_s=100)
        recorder.feed([f"step {i} ({i + 1}.0%) | loss: {final + (100 - i) / 50:.4f} | tok/sec: 1,500"
                       for i in range(100)])
        recorder.close()
    frame = read_curves(sorted(logs.glob("*.curve.jsonl")))
    text = curve_summary_for_prompt(frame, best=4, last=9)
    best_line = next(l for l in text.splitlines() if l.startswith("best #4"))
    last_line = next(l for l in text.splitlines() if l.startswith("last #9"))
    assert "50%" in text and "tok/sec" in text
    assert "3.0" in best_line.split()[-3] and "1,500" in best_line  # loss at 100%, then steps, then tok/sec
    assert float(last_line.split()[4]) > float(best_line.split()[4])  # worse at 50%
    assert curve_summary_for_prompt(frame.iloc[0:0]) == ""


def test_runner_reports_the_cpu_time_of_the_run_and_its_share(tmp_path):
    code = ("import time\nx = 0\nwhile time.process_time() < 0.6: x += 1\n"
            "print('---')\nprint(f'cpu: {time.process_time():.3f}')\n")
    script = tmp_path / "train.py"
    script.write_text(code)
    outcome = run(RunSpec(command=f"{PY} {script}", cwd=str(tmp_path), log_path=str(tmp_path / "run.log")))
    assert outcome.cpu_s >= 0.9 * outcome.summary["cpu"]
    assert outcome.other_cpu_s >= 0 and 0 < outcome.machine_share <= 1


@pytest.mark.timeout(60)
def test_a_run_on_a_loaded_machine_reports_a_low_machine_share(tmp_path):
    code = "import time\nx = 0\nwhile time.process_time() < 1.0: x += 1\n"
    script = tmp_path / "train.py"
    script.write_text(code)
    burners = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(psutil.cpu_count() or 2)]
    try:
        time.sleep(0.2)
        before = sum(sum(psutil.Process(b.pid).cpu_times()[:2]) for b in burners)
        outcome = run(RunSpec(command=f"{PY} {script}", cwd=str(tmp_path), log_path=str(tmp_path / "run.log")))
        burned = sum(sum(psutil.Process(b.pid).cpu_times()[:2]) for b in burners) - before
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert outcome.returncode == 0 and outcome.cpu_s >= 0.9
    assert outcome.other_cpu_s >= 0.5 * burned
    assert outcome.machine_share < 0.6


def _frame_of(curves):
    """Returns a long curve frame from {(experiment, run): (final loss, last progress)}."""
    rows = []
    for (number, run_index), (final, last) in curves.items():
        for i in range(int(last * 100)):
            p = (i + 1) / 100
            rows.append({"experiment": number, "run": run_index, "step": i, "training_seconds": 60 * p,
                         "progress": p, "wall_s": 60 * p + 2, "loss": final + 5 * (1 + 20 * p) ** -0.7})
    return pd.DataFrame(rows)


def test_overlay_plot_highlights_the_best_and_marks_a_curve_that_stopped_short():
    import matplotlib
    from matplotlib.colors import to_hex

    from autoresearch_magics.presentation.curves_plot import BEST_COLOUR, plot_curves
    from autoresearch_magics.presentation.plot import figure_png
    frame = _frame_of({(2, 1): (3.0, 1.0), (2, 2): (3.02, 1.0), (5, 1): (3.5, 0.4), (6, 1): (3.1, 1.0)})
    figures_before = len(matplotlib._pylab_helpers.Gcf.get_all_fig_managers())
    fig = plot_curves(frame, best=2, labels={5: "lr 0.1"})
    ax = fig.axes[0]
    best_lines = [l for l in ax.lines if to_hex(l.get_color()) == BEST_COLOUR]
    assert len(best_lines) == 2 and all(l.get_linewidth() > 2 for l in best_lines)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["#2 best", "#5 lr 0.1", "#6"]
    crosses = [l for l in ax.lines if l.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == pytest.approx(24.0)  # #5 stopped at 40%
    assert ax.get_ylim()[1] < 8.0  # the y range leaves out the huge first losses
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(matplotlib._pylab_helpers.Gcf.get_all_fig_managers()) == figures_before
    empty = plot_curves(frame.iloc[0:0])
    assert empty.axes[0].texts[0].get_text() == "no curves yet"


def test_live_svg_draws_the_running_curve_over_the_best_at_equal_training_time():
    import xml.etree.ElementTree as ET

    from autoresearch_magics.presentation.curves_plot import BEST_COLOUR, CURRENT_COLOUR, live_curve_svg
    frame = _frame_of({(1, 1): (3.0, 1.0), (2, 1): (3.4, 0.5)})
    best = frame[frame["experiment"] == 1]
    current = frame[frame["experiment"] == 2].to_dict("records")
    svg = live_curve_svg(current, best, budget_s=60)
    root = ET.fromstring(svg)
    lines = [e for e in root if e.tag.endswith("polyline")]
    assert [l.get("stroke") for l in lines] == [BEST_COLOUR, CURRENT_COLOUR]
    best_x = [float(p.split(",")[0]) for p in lines[0].get("points").split()]
    run_x = [float(p.split(",")[0]) for p in lines[1].get("points").split()]
    assert max(best_x) == pytest.approx(320.0) and max(run_x) == pytest.approx(160.0)  # half the budget
    assert len(svg) < 12_000 and live_curve_svg([], [], 60) == ""


def test_campaign_curves_reads_recorded_runs_and_the_running_one_and_summarises_best_and_last(tmp_path):
    from autoresearch_magics.core.campaign import Campaign
    from autoresearch_magics.core.curves import campaign_curve_summary, campaign_curves, default_experiments
    from autoresearch_magics.core.results import ResultRow
    campaign = Campaign.init(tmp_path / "c", tag="t1", template="toy", budget_s=60)
    logs = campaign.paths.logs
    for number, final, status in ((1, 3.2, "keep"), (2, 3.0, "keep"), (3, 3.4, "discard"), (4, 3.3, None)):
        recorder = CurveRecorder(logs / f"{number:04d}.curve.jsonl", 60)
        recorder.feed([f"step {i} ({i + 1}.0%) | loss: {final + (100 - i) / 40:.4f}" for i in range(100 if status else 30)])
        recorder.close()
        if status:
            campaign.results.append(ResultRow("abcdef1", final, 0.1, status, f"e{number}",
                                              extra={"experiment": number, "run": 1, "log": f"logs/{number:04d}.log"}))
    frame = campaign_curves(campaign)
    assert sorted(frame["experiment"].unique()) == [1, 2, 3, 4]  # 4 is running: a curve, no row yet
    assert frame[frame["experiment"] == 4]["progress"].max() == pytest.approx(0.3)
    assert sorted(campaign_curves(campaign, [2, 3])["experiment"].unique()) == [2, 3]
    assert default_experiments(campaign, latest=1) == [2, 3]
    text = campaign_curve_summary(campaign)
    assert "best #2" in text and "last #3" in text
