"""Noise floor of the tinylm template: how far val_bpb moves when only the seed changes.

Runs the unchanged template for several seeds at each budget (real wall-clock runs of
`python train.py`, one at a time, data prepared beforehand) and prints, per budget: mean, sd,
min and max of val_bpb and of the step count, and the smallest gain the `repeats` keep rule can
detect, t(0.95, n-1) * sd * sqrt(1/3 + 1/5) (3 candidate runs against 5 baseline seeds). Then
runs a fixed set of simple edits (LEARNING_RATE x2 and x0.5, DEPTH +1 and -1) with the same
seeds and prints each edit's effect in units of that sd. Seeds are interleaved (baseline and
every edit for seed 1, then seed 2, ...), so a change in the machine's load hits all arms alike.

    python benchmarks/tinylm_noise.py [--budgets 30,60] [--seeds 5] [--edit-budget 60] [--edit-seeds 5]
    python benchmarks/tinylm_noise.py --budgets 30 --seeds 3 --no-edits     # a short check
    python benchmarks/tinylm_noise.py --max-steps 300 --budgets 0           # fixed steps, no clock

Targets: sd <= 0.01 at 60 s and <= 0.02 at 30 s; every edit's |effect| / sd printed.
On a machine that other programs keep busy, wall-clock budgets give fewer and more variable
steps: the load average is printed before and after; compare the step columns. On a virtual
machine the host can slow every core without any process inside showing it, so the benchmark also
times a fixed matmul workload (0.5 s, before and after each run) and prints how well that speed
explains the step counts.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autoresearch_magics.core.keep_rules import t_quantile  # noqa: E402
from autoresearch_magics.core.summary import parse_summary  # noqa: E402

TEMPLATE = ROOT / "autoresearch_magics" / "templates" / "tinylm"
TARGET_SD = {30.0: 0.02, 60.0: 0.01}  # budget seconds -> target seed-to-seed sd of val_bpb
REPEATS, NOISE_RUNS = 3, 5            # the repeats rule's defaults: candidate runs, baseline seeds


def constant(source: str, name: str) -> str:
    """Returns the value text of the module-level constant `name` in train.py's source."""
    match = re.search(rf"^{name} = (\S+)", source, flags=re.M)
    if not match:
        raise SystemExit(f"{name} not found in train.py: the edits need the template's constants block")
    return match.group(1)


def with_constant(source: str, name: str, value: str) -> str:
    """Returns `source` with constant `name` set to `value` (its comment kept)."""
    return re.sub(rf"^{name} = \S+", f"{name} = {value}", source, count=1, flags=re.M)


def edits(source: str) -> dict[str, str]:
    """Returns {edit name: edited train.py source} for the fixed set of simple edits."""
    lr, depth = float(constant(source, "LEARNING_RATE")), int(constant(source, "DEPTH"))
    return {
        "LEARNING_RATE x2": with_constant(source, "LEARNING_RATE", f"{2 * lr:g}"),
        "LEARNING_RATE x0.5": with_constant(source, "LEARNING_RATE", f"{lr / 2:g}"),
        "DEPTH +1": with_constant(source, "DEPTH", str(depth + 1)),
        "DEPTH -1": with_constant(source, "DEPTH", str(max(1, depth - 1))),
    }


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_speed(seconds: float = 0.5) -> float:
    """Returns the GFLOP/s of fp32 512 x 512 matmuls on this process's threads over about `seconds`: the
    machine's own speed at this moment, the same workload whatever train.py is (the host of a virtual
    machine can slow it down without any process in it showing the load)."""
    import torch
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b  # first call: kernel selection
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        done += 10
    return 2 * 512 ** 3 * done / (time.perf_counter() - start) / 1e9


def run(folder: Path, env: dict, seed: int, budget_s: float, max_steps: int) -> dict:
    """Runs train.py in `folder` once; returns its parsed summary (raises on a crash)."""
    env = dict(env, AUTORESEARCH_SEED=str(seed), AUTORESEARCH_BUDGET_S=f"{budget_s:g}",
               AUTORESEARCH_MAX_STEPS=str(max_steps))
    before = machine_speed()
    result = subprocess.run([sys.executable, "train.py"], cwd=folder, env=env, capture_output=True)
    speed = (before + machine_speed()) / 2  # around the run: the host's speed changes over minutes
    out = result.stdout.decode()
    summary = parse_summary(out)
    if result.returncode != 0 or "val_bpb" not in summary:
        raise SystemExit(f"run failed in {folder} (seed {seed}):\n{out[-500:]}\n{result.stderr.decode()[-2000:]}")
    for key, label in (("startup_s", "Start-up"), ("eval_s", "Evaluation")):  # train.py's own phase lines
        match = re.search(rf"^{label}: ([\d.]+)s", out, flags=re.M)
        summary[key] = float(match.group(1)) if match else float("nan")
    summary["machine_gflops"] = speed
    return summary


def describe(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return (f"mean {statistics.fmean(values):{fmt}}  sd {sd:{fmt}}  "
            f"min {min(values):{fmt}}  max {max(values):{fmt}}")


def detectable_gain(sd: float, n: int) -> float:
    """Returns the smallest mean gain `repeats` keeps at 95%: t(0.95, n-1) * sd * sqrt(1/3 + 1/5)."""
    return t_quantile(0.95, n - 1) * sd * math.sqrt(1 / REPEATS + 1 / NOISE_RUNS)


def explained_by(values: list[float], covariate: list[float]) -> tuple[float, float]:
    """Returns (Pearson r of `values` with ln(covariate), sd of the residuals of a least-squares line in
    ln(covariate)): how much of the spread the covariate explains, and what is left."""
    logs = [math.log(s) for s in covariate]
    r = statistics.correlation(values, logs)
    slope, intercept = statistics.linear_regression(logs, values)
    residuals = [v - (intercept + slope * x) for v, x in zip(values, logs)]
    return r, math.sqrt(sum(e * e for e in residuals) / (len(values) - 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="30,60", help="comma-separated training budgets in seconds")
    parser.add_argument("--seeds", type=int, default=5, help="baseline seeds per budget (at least 2)")
    parser.add_argument("--first-seed", type=int, default=1, help="seeds run from here upward")
    parser.add_argument("--edit-budget", type=float, default=None,
                        help="budget for the edits (default: the largest of --budgets)")
    parser.add_argument("--edit-seeds", type=int, default=None, help="seeds per edit (default: --seeds)")
    parser.add_argument("--no-edits", action="store_true", help="measure the baseline only")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="fixed step count instead of the clock (AUTORESEARCH_MAX_STEPS); 0: off")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    if args.seeds < 2 or not budgets:
        parser.error("need --seeds >= 2 and at least one budget")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    edit_budget = args.edit_budget if args.edit_budget is not None else max(budgets)
    edit_seeds = seeds[:args.edit_seeds] if args.edit_seeds else seeds
    if not args.no_edits and edit_budget not in budgets:
        budgets.append(edit_budget)  # the edits are measured against the baseline at their budget

    work = Path(tempfile.mkdtemp(prefix="tinylm-noise-"))
    env = dict(os.environ, AUTORESEARCH_DATA_DIR=str(work / "data"), PYTHONDONTWRITEBYTECODE="1")
    source = (TEMPLATE / "train.py").read_text()
    arms = {"baseline": source} if args.no_edits else {"baseline": source, **edits(source)}
    folders = {}
    for i, (name, text) in enumerate(arms.items()):
        folders[name] = work / f"arm{i}"
        folders[name].mkdir()
        shutil.copy(TEMPLATE / "prepare.py", folders[name] / "prepare.py")
        (folders[name] / "train.py").write_text(text)
    started = time.time()
    subprocess.run([sys.executable, "prepare.py"], cwd=folders["baseline"], env=env, check=True,
                   capture_output=True)  # one-time preparation, outside every measurement
    mode = f"{args.max_steps} fixed steps" if args.max_steps else "wall-clock budgets"
    print(f"tinylm noise floor: seeds {seeds[0]}..{seeds[-1]}, {mode}; data prepared in "
          f"{time.time() - started:.1f}s; load average {load():.2f}", flush=True)

    runs = {}  # (arm, budget) -> [summary per seed]
    plan = [(b, "baseline", s) for s in seeds for b in budgets]
    if not args.no_edits:
        plan += [(edit_budget, name, s) for s in edit_seeds for name in arms if name != "baseline"]
        plan.sort(key=lambda item: (item[2], item[0], list(arms).index(item[1])))  # interleave arms by seed
    for budget, name, seed in plan:
        summary = run(folders[name], env, seed, budget, args.max_steps)
        runs.setdefault((name, budget), []).append(summary)
        print(f"  {name:<20} budget {budget:g}s seed {seed}: val_bpb {summary['val_bpb']:.6f}, "
              f"{int(summary['num_steps'])} steps, {summary['training_seconds']:g}s training, "
              f"{summary['total_seconds']:g}s total, machine {summary['machine_gflops']:.1f} GFLOP/s", flush=True)

    print(f"\nbaseline ({len(seeds)} seeds per budget)")
    noise = {}
    for budget in budgets:
        got = runs[("baseline", budget)]
        values = [s["val_bpb"] for s in got]
        steps = [s["num_steps"] for s in got]
        sd = statistics.stdev(values)
        noise[budget] = (statistics.fmean(values), sd)
        target = TARGET_SD.get(budget)
        verdict = "" if target is None or args.max_steps else (
            f"  {'MEETS' if sd <= target else 'MISSES'} the sd <= {target} target")
        print(f"  {budget:g}s val_bpb: {describe(values, '.4f')}{verdict}")
        print(f"  {budget:g}s steps:   {describe(steps, '.0f')}")
        speeds = [s["machine_gflops"] for s in got]
        print(f"  {budget:g}s machine: {describe(speeds, '.1f')} GFLOP/s (fp32 matmuls measured around each run)")
        print(f"  {budget:g}s phases:  start-up {statistics.fmean(s['startup_s'] for s in got):.1f}s, training "
              f"{statistics.fmean(s['training_seconds'] for s in got):.1f}s, evaluation "
              f"{statistics.fmean(s['eval_s'] for s in got):.1f}s, total {statistics.fmean(s['total_seconds'] for s in got):.1f}s "
              f"(means)")
        print(f"  {budget:g}s smallest gain `repeats` can detect: {detectable_gain(sd, len(values)):.4f} "
              f"= t(0.95, {len(values) - 1}) x sd x sqrt(1/{REPEATS} + 1/{NOISE_RUNS})")
        if not args.max_steps and len(set(steps)) > 1 and len(values) >= 3:
            r, residual = explained_by(values, steps)
            r_speed, _ = explained_by(steps, speeds)
            print(f"  {budget:g}s where the spread comes from: r(val_bpb, ln steps) = {r:+.2f}; sd left once the "
                  f"step count is accounted for (residual of a line in ln steps): {residual:.4f}; "
                  f"r(steps, ln machine speed) = {r_speed:+.2f}")

    if not args.no_edits:
        base_mean, sd = noise[edit_budget]
        print(f"\nedits at {edit_budget:g}s ({len(edit_seeds)} seeds each; effect = edit mean - baseline mean, "
              f"sd = {sd:.4f})")
        for name in arms:
            if name == "baseline":
                continue
            got = runs[(name, edit_budget)]
            values = [s["val_bpb"] for s in got]
            effect = statistics.fmean(values) - base_mean
            print(f"  {name:<20} val_bpb {statistics.fmean(values):.4f} (sd {statistics.stdev(values):.4f}), "
                  f"steps {statistics.fmean(s['num_steps'] for s in got):.0f}: effect {effect:+.4f} = "
                  f"{effect / sd:+.1f} sd")
    print(f"\nload average after: {load():.2f}; wall time {time.time() - started:.0f}s")
    if args.keep:
        print(f"runs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
