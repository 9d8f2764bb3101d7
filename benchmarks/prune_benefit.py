"""What early stopping buys: experiments per hour with and without pruning, on the same edits.

A fixed list of edits, most worse than the baseline and a few better (some of those slow starters
that are behind early and end ahead), runs as a sequential strict-ratchet campaign twice: once to
the end of every budget, once with a pruner judging each run against the best's curves. The
training script is tests/fixtures/curve_train.py: power-law loss curves with per-step noise and a
noisy final val_bpb, each edit being a few of its constants. Runs go through the runner with a
curve recorder and the pruner (the same objects the engine uses); the ratchet itself is the few
lines of `campaign` below.

    python benchmarks/prune_benefit.py [--edits 60] [--budget 2]

Prints, side by side: experiments per hour, the final best, keeps, pruned runs, how many improving
edits (kept without pruning) were pruned, and how well the loss at 30% of the budget ranks the
runs by their final val_bpb (Spearman over the unpruned campaign's runs).
Target: >= 1.5x experiments per hour, the same final best, <= 1 in 20 improving edits pruned.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autoresearch_magics.core.curves import CurveRecorder, curve_path_for, read_curves, value_at  # noqa: E402
from autoresearch_magics.core.pruning import PruneReference  # noqa: E402
from autoresearch_magics.core.runner import RunSpec, run  # noqa: E402

SCRIPT = ROOT / "tests" / "fixtures" / "curve_train.py"
BASELINE = {"FINAL_LOSS": 3.0, "RATE": 80.0}
IMPROVING_SHARE = 0.2   # share of the edits that beat the baseline
STEPS = 200             # progress lines per run


def edit_list(count: int, seed: int = 7) -> list[dict]:
    """Returns `count` edits (constants of the script): most worse than the baseline, a few better,
    the better ones getting gradually better so the ratchet moves several times."""
    rng = random.Random(seed)
    improving = max(1, round(count * IMPROVING_SHARE))
    slots = sorted(rng.sample(range(count), improving))
    edits = []
    for i in range(count):
        if i in slots:
            k = slots.index(i) + 1
            final = BASELINE["FINAL_LOSS"] - 0.012 * k - rng.uniform(0.0, 0.01)
            rate = rng.choice([30.0, 40.0, 60.0, 80.0, 120.0])  # some start slowly, then catch up
            edits.append({"FINAL_LOSS": round(final, 4), "RATE": rate, "improving": True})
        else:
            worse = rng.choice([rng.uniform(0.02, 0.15), rng.uniform(0.15, 0.8), rng.uniform(0.8, 3.0)])
            rate = rng.choice([20.0, 40.0, 80.0, 160.0])
            edits.append({"FINAL_LOSS": round(BASELINE["FINAL_LOSS"] + worse, 4), "RATE": rate, "improving": False})
    return edits


def one_run(folder: Path, name: str, constants: dict, budget: float, seed: int, reference: PruneReference | None):
    """Runs the script once with `constants`; returns (outcome, its curve points)."""
    log = folder / "logs" / f"{name}.log"
    recorder = CurveRecorder(curve_path_for(log), budget)
    env = {"AUTORESEARCH_BUDGET_S": f"{budget:g}", "AUTORESEARCH_SEED": str(seed), "STEPS": str(STEPS),
           **{k: str(v) for k, v in constants.items() if k.isupper()}}
    outcome = run(RunSpec(command=f"{sys.executable} {SCRIPT}", cwd=str(folder), log_path=str(log), env=env,
                          timeout_s=2 * budget + 30, curve=recorder,
                          pruner=reference.pruner() if reference else None))
    return outcome, recorder.points


def campaign(edits: list[dict], budget: float, prune: bool, folder: Path) -> dict:
    """Runs the baseline (twice: its spread) and every edit under the strict ratchet; returns the tallies."""
    start = time.monotonic()
    best_curves, best_value = [], None
    for index in (1, 2):
        outcome, points = one_run(folder, f"0001-r{index}" if index > 1 else "0001", BASELINE, budget, index, None)
        best_curves.append(points)
        value = outcome.summary["val_bpb"]
        best_value = value if best_value is None else (best_value + value) / 2
    reference = PruneReference(best_curves, budget) if prune else None
    results = []
    for number, edit in enumerate(edits, start=2):
        outcome, points = one_run(folder, f"{number:04d}", edit, budget, 1000 + number, reference)
        value = outcome.summary.get("val_bpb")
        kept = not outcome.pruned and value is not None and value < best_value
        results.append({"number": number, "improving": edit["improving"], "pruned": outcome.pruned,
                        "evidence": outcome.prune_evidence, "value": value, "kept": kept,
                        "used": max((p["progress"] or 0) for p in points) if points else 0.0})
        if kept:
            best_value, best_curves = value, [points]
            reference = PruneReference(best_curves, budget) if prune else None
    elapsed = time.monotonic() - start
    return {"results": results, "best": best_value, "elapsed_s": elapsed,
            "per_hour": (len(edits) + 1) / elapsed * 3600}


def curve_prediction(folder: Path, results: list[dict]) -> tuple[float, int]:
    """Returns (Spearman correlation of the loss at 30% of the budget with the final val_bpb, runs)."""
    import pandas as pd
    frame = read_curves(sorted((folder / "logs").glob("*.curve.jsonl")))
    finals = {r["number"]: r["value"] for r in results if r["value"] is not None}
    early = {n: value_at(frame[frame["experiment"] == n], 0.3) for n in finals}
    pairs = pd.DataFrame([(early[n], finals[n]) for n in finals if early[n] is not None], columns=["early", "final"])
    return float(pairs["early"].corr(pairs["final"], method="spearman")), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=60, help="number of edits after the baseline")
    parser.add_argument("--budget", type=float, default=2.0, help="training seconds per run")
    args = parser.parse_args()
    edits = edit_list(args.edits)
    with tempfile.TemporaryDirectory(prefix="prune-benefit-") as tmp:
        full = campaign(edits, args.budget, prune=False, folder=Path(tmp) / "full")
        pruned = campaign(edits, args.budget, prune=True, folder=Path(tmp) / "pruned")
        spearman, n = curve_prediction(Path(tmp) / "full", full["results"])
    improving = [r["number"] for r in full["results"] if r["kept"]]
    better = [r["number"] for r in full["results"] if r["improving"]]
    lost_kept = [r["number"] for r in pruned["results"] if r["pruned"] and r["number"] in improving]
    lost_better = [r["number"] for r in pruned["results"] if r["pruned"] and r["number"] in better]
    rows = [
        ("runs (baseline x2 + edits)", lambda c: f"{len(c['results']) + 2}"),
        ("wall time, s", lambda c: f"{c['elapsed_s']:.1f}"),
        ("experiments per hour", lambda c: f"{c['per_hour']:.0f}"),
        ("final best val_bpb", lambda c: f"{c['best']:.6f}"),
        ("kept", lambda c: f"{sum(r['kept'] for r in c['results'])}"),
        ("pruned", lambda c: f"{sum(r['pruned'] for r in c['results'])}"),
        ("mean share of the budget run", lambda c: f"{sum(r['used'] for r in c['results']) / len(c['results']):.2f}"),
    ]
    print(f"{args.edits} edits ({len(better)} better than the baseline), budget {args.budget:g} s, "
          f"runner + curve recorder + pruner")
    print(f"{'':32}{'no pruning':>14}{'pruning':>14}")
    for label, cell in rows:
        print(f"{label:32}{cell(full):>14}{cell(pruned):>14}")
    print(f"speed-up: {pruned['per_hour'] / full['per_hour']:.2f}x experiments per hour")
    print(f"improving edits pruned: {len(lost_kept)} of {len(improving)} kept without pruning {lost_kept or ''}; "
          f"{len(lost_better)} of {len(better)} better than the baseline {lost_better or ''}")
    print(f"curve-based prediction: Spearman(loss at 30% of the budget, final val_bpb) = {spearman:.3f} "
          f"over {n} runs")
    for r in pruned["results"]:
        if r["pruned"] and r["improving"]:
            print(f"  pruned improving edit {r['number']}: {r['evidence']}")


if __name__ == "__main__":
    main()
