"""What early stopping buys: experiments per hour with and without pruning, on the same edits.

A fixed list of edits, most worse than the baseline and a few better (some of those slow starters
that are behind early and end ahead), runs as a sequential ratchet campaign twice: once to the end
of every budget, once with a pruner judging each run against the best's curves. The two campaigns
alternate run by run, so a change in the machine's speed hits both alike. The default training
script is tests/fixtures/curve_train.py: power-law loss curves with per-step noise and a noisy final
val_bpb, each edit being a few of its constants; its ratchet is strict. With --tinylm the script is
the tinylm template and the edits change its hyperparameter block (whether an edit improves is then
only known by running it: "improving" means kept without pruning); a gain must then exceed
--keep-margin (default 0.03, the template's noise floor on a 2-core machine) to be kept, as a
researcher would set it, since a strict ratchet there keeps run-to-run noise. Runs go through the
runner with a curve recorder and the pruner (the same objects the engine uses), the pruner given
what the engine would give it (the best's curves, the repeated baseline's spread, the curves of the
runs that got to the end, from which it learns how much runs recover late); the ratchet itself is
the few lines of `Ratchet` below.

    python benchmarks/prune_benefit.py [--edits 60] [--budget 2] [--seed 7]
    python benchmarks/prune_benefit.py --tinylm [--edits 16] [--budget 60] [--keep-margin 0.03]
    python benchmarks/prune_benefit.py --engine [--edits 60] [--budget 2]

With --engine the two campaigns are real ones through the whole engine: `Campaign.init` on the
synthetic script, a baseline, then `run_loop` with a proposer handing out the edits as train.py
texts, with the campaign's `prune` setting off and on (git commits, results.tsv, curve files and
the verdict checks included; the baseline is run once, so the pruner uses its default spread).

Prints, side by side: experiments per hour, the final best, keeps, pruned runs, how many improving
edits (kept without pruning) were pruned, and how well the loss at 30% of the budget ranks the
runs by their final val_bpb (Spearman over the unpruned campaign's runs).
Target: >= 1.5x experiments per hour, the same final best, <= 1 in 20 improving edits pruned.
"""
from __future__ import annotations

import argparse
import random
import re
import shutil
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
TINYLM = ROOT / "autoresearch_magics" / "templates" / "tinylm"
# tinylm edits: (description, {constant of the hyperparameter block: its new value}), against the template's
# defaults (learning rate 2e-3, two blocks of width 128, batch 8 of 256 tokens, 20 warm-up steps). Most are
# clearly worse at a 60 s budget (measured: 0.2-0.5 above the baseline's val_bpb), some are within the noise,
# two are better (one block; one block of width 192, about 0.1 better).
TINYLM_EDITS = [
    ("learning rate / 10", {"LEARNING_RATE": "2e-4"}),
    ("learning rate x 2", {"LEARNING_RATE": "4e-3"}),
    ("batch 64", {"BATCH_SIZE": "64"}),
    ("one block", {"DEPTH": "1"}),
    ("gradient clip 0.01", {"GRAD_CLIP": "0.01"}),
    ("learning rate x 10", {"LEARNING_RATE": "2e-2"}),
    ("one block of width 192", {"DEPTH": "1", "MODEL_DIM": "192"}),
    ("weight decay 0", {"WEIGHT_DECAY": "0.0"}),
    ("width 64", {"MODEL_DIM": "64"}),
    ("six blocks", {"DEPTH": "6"}),
    ("warm-up of 500 steps", {"WARMUP_STEPS": "500"}),
    ("learning rate / 4", {"LEARNING_RATE": "5e-4"}),
    ("train on 32-token sequences", {"SEQ_LEN": "32"}),
    ("batch 32", {"BATCH_SIZE": "32"}),
    ("width 512", {"MODEL_DIM": "512"}),
    ("no warm-down", {"WARMDOWN_RATIO": "0.0"}),
]
# tinylm's run-to-run spread at 30-60 s budgets on a 2-core machine is about 0.02 (its program.md, "Noise
# floor"): a strict ratchet there keeps noise, so its campaigns keep only gains beyond this margin
TINYLM_KEEP_MARGIN = 0.03
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


def tinylm_edit_list(count: int) -> list[dict]:
    """Returns the first `count` tinylm edits, after checking that the template has each constant (before
    any run, so a stale edit fails at once)."""
    source = (TINYLM / "train.py").read_text()
    names = {name for _, changes in TINYLM_EDITS[:count] for name in changes}
    missing = sorted(name for name in names if not re.search(rf"^{name} = ", source, flags=re.M))
    if missing:
        raise SystemExit(f"tinylm edits name constants train.py does not have: {', '.join(missing)}")
    return [{"description": d, "set": changes, "improving": None} for d, changes in TINYLM_EDITS[:count]]


def set_constants(train: Path, changes: dict[str, str]) -> str:
    """Sets constants of train.py's hyperparameter block to new values; returns the previous text."""
    text = changed = train.read_text()
    for name, value in changes.items():
        changed, count = re.subn(rf"^{name} = [^#\n]*?(\s*#)", rf"{name} = {value}\1", changed, count=1, flags=re.M)
        if not count:
            raise SystemExit(f"tinylm edit: no constant {name} in {train}")
    train.write_text(changed)
    return text


def one_run(folder: Path, name: str, edit: dict, budget: float, seed: int, reference: PruneReference | None):
    """Runs the script once with `edit` (constants for the synthetic script, a line replacement for
    tinylm); returns (outcome, its curve points)."""
    log = folder / "logs" / f"{name}.log"
    recorder = CurveRecorder(curve_path_for(log), budget)
    env = {"AUTORESEARCH_BUDGET_S": f"{budget:g}", "AUTORESEARCH_SEED": str(seed), "STEPS": str(STEPS),
           **{k: str(v) for k, v in edit.items() if k.isupper()}}
    if (folder / "train.py").exists():  # tinylm: the edit is a change of train.py
        train = folder / "train.py"
        original = set_constants(train, edit["set"]) if "set" in edit else train.read_text()
        env.update(AUTORESEARCH_DATA_DIR=str(folder.parent / "data"), AUTORESEARCH_SEED="42")
        command = f"{sys.executable} train.py"
    else:
        original, command = None, f"{sys.executable} {SCRIPT}"
    try:
        outcome = run(RunSpec(command=command, cwd=str(folder), log_path=str(log), env=env,
                              timeout_s=2 * budget + 120, curve=recorder,
                              pruner=reference.pruner() if reference else None))
    finally:
        if original is not None:
            train.write_text(original)
    return outcome, recorder.points


class Ratchet:
    """One strict-ratchet campaign (a gain must exceed `keep_margin` to be kept), run one step at a time so
    that two campaigns can alternate run by run and a change in the machine's speed hits both alike."""

    def __init__(self, budget: float, prune: bool, folder: Path, template: Path | None, keep_margin: float) -> None:
        folder.mkdir(parents=True)
        if template is not None:
            for item in ("train.py", "prepare.py"):
                shutil.copy2(template / item, folder / item)
        self.budget, self.prune, self.folder, self.template = budget, prune, folder, template
        self.keep_margin = keep_margin
        self.best_curves, self.best_value, self.reference = [], None, None
        self.baseline_curves, self.finished = [], []   # the repeated baseline's spread; curves run to the end
        self.results, self.elapsed_s = [], 0.0

    def baseline(self) -> None:
        """Runs the unchanged script twice (its spread for the pruner)."""
        start = time.monotonic()
        baseline = BASELINE if self.template is None else {}
        for index in (1, 2):
            name = f"0001-r{index}" if index > 1 else "0001"
            outcome, points = one_run(self.folder, name, baseline, self.budget, index, None)
            if outcome.summary.get("val_bpb") is None:
                raise SystemExit(f"the baseline failed: {' | '.join(outcome.tail[-5:])}")
            self.best_curves.append(points)
            value = outcome.summary["val_bpb"]
            self.best_value = value if self.best_value is None else (self.best_value + value) / 2
        self.baseline_curves, self.finished = self.best_curves, list(self.best_curves)
        self._refer()
        self.elapsed_s += time.monotonic() - start

    def _refer(self) -> None:
        """Makes the reference the next run is pruned against, from what the engine would have: the best's
        curves, the repeated baseline's spread once the best is another edit, and the finished curves."""
        repeats = [self.baseline_curves] if self.best_curves is not self.baseline_curves else None
        self.reference = (PruneReference(self.best_curves, self.budget, repeats, finished_curves=self.finished)
                          if self.prune else None)

    def step(self, number: int, edit: dict) -> None:
        """Runs one edit against the best so far and keeps it if it gains more than the margin."""
        start = time.monotonic()
        outcome, points = one_run(self.folder, f"{number:04d}", edit, self.budget, 1000 + number, self.reference)
        value = outcome.summary.get("val_bpb")
        kept = not outcome.pruned and value is not None and value < self.best_value - self.keep_margin
        self.results.append({"number": number, "improving": edit["improving"], "pruned": outcome.pruned,
                             "evidence": outcome.prune_evidence, "value": value, "kept": kept,
                             "used": max((p["progress"] or 0) for p in points) if points else 0.0})
        if kept and self.template is not None:  # the ratchet: the kept edit is the new train.py
            set_constants(self.folder / "train.py", edit["set"])
        if not outcome.pruned:
            self.finished.append(points)
        if kept:
            self.best_value, self.best_curves = value, [points]
        self._refer()
        self.elapsed_s += time.monotonic() - start

    def tallies(self) -> dict:
        return {"results": self.results, "best": self.best_value, "elapsed_s": self.elapsed_s,
                "per_hour": (len(self.results) + 1) / self.elapsed_s * 3600}


def campaigns(edits: list[dict], budget: float, folder: Path, template: Path | None,
              keep_margin: float) -> tuple[dict, dict]:
    """Runs the campaign without and with pruning, alternating run by run; returns both tallies."""
    full = Ratchet(budget, False, folder / "full", template, keep_margin)
    pruned = Ratchet(budget, True, folder / "pruned", template, keep_margin)
    for ratchet in (full, pruned):
        ratchet.baseline()
    for number, edit in enumerate(edits, start=2):
        for ratchet in (full, pruned):
            ratchet.step(number, edit)
    return full.tallies(), pruned.tallies()


def engine_campaign(edits: list[dict], budget: float, prune: bool, folder: Path) -> dict:
    """Runs the synthetic campaign through the engine (baseline, then every edit as a loop); returns
    the tallies `campaign` returns."""
    from autoresearch_magics.core.campaign import Campaign
    from autoresearch_magics.core.loop import run_loop
    from autoresearch_magics.core.proposers import Proposal, Proposer

    def script(constants: dict) -> str:
        text = SCRIPT.read_text()
        for name, value in {"STEPS": STEPS, **constants}.items():
            text = re.sub(rf"^{name} = [^#\n]*?(\s*#)", rf"{name} = {value!r}\1", text, count=1, flags=re.M)
        return text

    class Edits(Proposer):
        name = "edits"

        def __init__(self) -> None:
            self.left = list(enumerate(edits, start=2))

        def propose(self, campaign):
            if not self.left:
                return None
            number, edit = self.left.pop(0)
            constants = {k: v for k, v in edit.items() if k.isupper()}
            return Proposal(f"edit {number}: " + " ".join(f"{k}={v}" for k, v in constants.items()),
                            {"train.py": script(constants)})

    folder.mkdir(parents=True)
    (folder / "train.py").write_text(script(BASELINE))
    start = time.monotonic()
    camp = Campaign.init(folder, tag="bench", budget_s=budget)
    camp.update_stop_rules(prune=prune)
    camp.run("baseline")
    run_loop(camp, Edits(), len(edits), report_every=10 ** 6)
    elapsed = time.monotonic() - start
    curves = camp.curves()
    results = []
    for key, rows in camp.experiments().items():
        row = rows[-1]
        # the experiment number can differ from the edit's: an edit whose train.py was tried before gets none
        edit = re.match(r"edit (\d+):", row["description"])
        if edit is None:
            continue
        number = int(edit.group(1))
        value = float(row["val_bpb"]) if row["status"] != "crash" else None
        used = curves.loc[curves["experiment"] == int(key), "progress"].max()
        results.append({"number": number, "experiment": int(key), "improving": edits[number - 2]["improving"],
                        "pruned": row["evidence"].startswith("pruned at"), "evidence": row["evidence"],
                        "value": value if value is not None and value == value else None,
                        "kept": row["status"] == "keep", "used": 0.0 if used != used else float(used)})
    return {"results": results, "best": camp.best()["value"], "elapsed_s": elapsed,
            "per_hour": (len(edits) + 1) / elapsed * 3600}


def curve_prediction(folder: Path, results: list[dict]) -> tuple[float, int]:
    """Returns (Spearman correlation of the loss at 30% of the budget with the final val_bpb, runs)."""
    import pandas as pd
    frame = read_curves(sorted((folder / "logs").glob("*.curve.jsonl")))
    finals = {r.get("experiment", r["number"]): r["value"] for r in results if r["value"] is not None}
    early = {n: value_at(frame[frame["experiment"] == n], 0.3) for n in finals}
    pairs = pd.DataFrame([(early[n], finals[n]) for n in finals if early[n] is not None], columns=["early", "final"])
    return float(pairs["early"].corr(pairs["final"], method="spearman")), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=60, help="number of edits after the baseline")
    parser.add_argument("--budget", type=float, default=2.0, help="training seconds per run")
    parser.add_argument("--tinylm", action="store_true", help="run the tinylm template instead of the synthetic script")
    parser.add_argument("--engine", action="store_true",
                        help="run the synthetic campaigns through the whole engine (Campaign, run_loop, prune setting)")
    parser.add_argument("--keep-margin", type=float, default=None,
                        help=f"gain needed to keep an edit (default: {TINYLM_KEEP_MARGIN} with --tinylm, its noise "
                             "floor on a 2-core machine, else 0: the strict ratchet)")
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders (logs and curves) and print where")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic edit list (another list of the same kind)")
    args = parser.parse_args()
    if args.engine and args.tinylm:
        raise SystemExit("--engine runs the synthetic script; leave out --tinylm")
    edits = tinylm_edit_list(args.edits) if args.tinylm else edit_list(args.edits, args.seed)
    template = TINYLM if args.tinylm else None
    margin = args.keep_margin if args.keep_margin is not None else (TINYLM_KEEP_MARGIN if args.tinylm else 0.0)
    tmp = Path(tempfile.mkdtemp(prefix="prune-benefit-"))
    if args.keep:
        print(f"runs kept in {tmp}", flush=True)
    try:
        if args.engine:
            full = engine_campaign(edits, args.budget, prune=False, folder=tmp / "full")
            pruned = engine_campaign(edits, args.budget, prune=True, folder=tmp / "pruned")
        else:
            full, pruned = campaigns(edits, args.budget, tmp, template, margin)
        spearman, n = curve_prediction(tmp / "full", full["results"])
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    improving = [r["number"] for r in full["results"] if r["kept"]]
    better = [r["number"] for r in full["results"] if r["improving"] or (r["improving"] is None and r["kept"])]
    lost_kept = [r["number"] for r in pruned["results"] if r["pruned"] and r["number"] in improving]
    lost_better = [r["number"] for r in pruned["results"] if r["pruned"] and r["number"] in better]
    rows = [
        ("runs (baseline + edits)" if args.engine else "runs (baseline x2 + edits)",
         lambda c: f"{len(c['results']) + (1 if args.engine else 2)}"),
        ("wall time, s", lambda c: f"{c['elapsed_s']:.1f}"),
        ("experiments per hour", lambda c: f"{c['per_hour']:.0f}"),
        ("final best val_bpb", lambda c: f"{c['best']:.6f}"),
        ("kept", lambda c: f"{sum(r['kept'] for r in c['results'])}"),
        ("pruned", lambda c: f"{sum(r['pruned'] for r in c['results'])}"),
        ("mean share of the budget run", lambda c: f"{sum(r['used'] for r in c['results']) / len(c['results']):.2f}"),
    ]
    print(f"{'tinylm' if args.tinylm else 'synthetic'}: {len(edits)} edits ({len(better)} better than the "
          f"baseline), budget {args.budget:g} s, keep margin {margin if not args.engine else 0:g}, "
          f"{'the whole engine (Campaign, run_loop)' if args.engine else 'runner + curve recorder + pruner'}")
    print(f"{'':32}{'no pruning':>14}{'pruning':>14}")
    for label, cell in rows:
        print(f"{label:32}{cell(full):>14}{cell(pruned):>14}")
    print(f"speed-up: {pruned['per_hour'] / full['per_hour']:.2f}x experiments per hour")
    print(f"improving edits pruned: {len(lost_kept)} of {len(improving)} kept without pruning {lost_kept or ''}; "
          f"{len(lost_better)} of {len(better)} better than the baseline {lost_better or ''}")
    kept_by = {name: [r["number"] for r in c["results"] if r["kept"]] for name, c in (("full", full), ("pruned", pruned))}
    same = "the same edits" if kept_by["full"] == kept_by["pruned"] else "DIFFERENT edits"
    print(f"edits kept: {kept_by['full']} without pruning, {kept_by['pruned']} with it ({same}; their final "
          f"values differ by run-to-run noise only when the same edits were kept)")
    print(f"curve-based prediction: Spearman(loss at 30% of the budget, final val_bpb) = {spearman:.3f} "
          f"over {n} runs")
    for r in pruned["results"]:
        if r["pruned"] and (r["improving"] or r["number"] in improving):
            print(f"  pruned improving edit {r['number']}: {r['evidence']}")
    if len(edits) > 20:
        return
    print("per edit (val_bpb without pruning; with pruning: val_bpb or where it was stopped):")
    for a, b in zip(full["results"], pruned["results"]):
        name = edits[a["number"] - 2].get("description") or f"edit {a['number']}"
        shown = b["evidence"] if b["pruned"] else f"{b['value']:.4f}" if b["value"] is not None else "crash"
        print(f"  {a['number']:>3} {name:<24} {a['value'] if a['value'] is not None else float('nan'):.4f}"
              f"{' kept' if a['kept'] else '':<6}  {shown}{' kept' if b['kept'] else ''}")


if __name__ == "__main__":
    main()
