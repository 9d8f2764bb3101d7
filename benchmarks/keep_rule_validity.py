"""Research validity of keep rules: how often each rule keeps null edits and genuine gains.

Every trial starts from the same measured baseline (a copy of one campaign folder, its git
history and its results.tsv with the baseline's noise runs) and goes through the real engine:
commit, run, decide. Null edits change nothing the computation sees (a comment); genuine
improvements move a hyperparameter by an amount whose true gain is 3-5 sigma of the measured
noise. Runs use fresh seeds, as reruns on a GPU effectively do.

    python benchmarks/keep_rule_validity.py [--nulls 40] [--gains 20]

Target: `repeats` keeps <= 5% of null edits and >= 80% of the >3-sigma improvements.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoresearch_magics import Campaign  # noqa: E402

TOY_NOISE = 0.002  # the toy template's NOISE constant: its true run-to-run standard deviation


def toy_gain(lr: float, base_lr: float = 0.003) -> float:
    """Returns the toy template's true val_bpb gain of moving LEARNING_RATE from base_lr to lr."""
    return 0.1 * ((math.log10(base_lr) + 2) ** 2 - (math.log10(lr) + 2) ** 2)


def lr_for_gain(gain: float, base_lr: float = 0.003) -> float:
    """Returns the LEARNING_RATE (towards the optimum 0.01) whose true gain is `gain`."""
    return 10 ** (-2 - math.sqrt((math.log10(base_lr) + 2) ** 2 - gain / 0.1))


def prepared_baseline(root: Path, rule: str, index: int) -> Path:
    """Returns a campaign folder whose baseline has been measured under `rule`."""
    folder = root / f"base-{rule}-{index}"
    campaign = Campaign.init(folder, tag="validity", template="toy", budget_s=0.02, keep_rule=rule)
    campaign.run("baseline", seed=None if rule == "repeats" else 100 + index)
    return folder


def trial(base: Path, work: Path, edit, seed: int) -> str:
    """Copies the baseline campaign, applies `edit` to train.py, runs it; returns the status."""
    shutil.copytree(base, work, symlinks=True)
    campaign = Campaign.open(work)
    path = work / "train.py"
    path.write_text(edit(path.read_text()))
    rule_seed = None if campaign.config.keep_rule == "repeats" else seed
    status = campaign.run("trial", seed=rule_seed)[-1].status
    shutil.rmtree(work)
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nulls", type=int, default=40, help="null-edit trials per rule")
    parser.add_argument("--gains", type=int, default=20, help="genuine-improvement trials per rule")
    parser.add_argument("--baselines", type=int, default=8, help="independent baselines per rule")
    args = parser.parse_args()
    os.environ.update(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@localhost",
                      GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@localhost")
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for rule in ("strict", "repeats"):
            # several baselines, trials spread over them: one lucky or unlucky baseline draw
            # would otherwise decide a whole column
            bases = [prepared_baseline(root, rule, b) for b in range(args.baselines)]
            noise = [Campaign.open(b).noise()[0] for b in bases]
            sigma = sum(noise) / len(noise) if all(noise) else TOY_NOISE  # strict measures none
            nulls = [trial(bases[i % len(bases)], root / "t", lambda s, i=i: s + f"\n# null edit {i}\n", 1000 + i)
                     for i in range(args.nulls)]
            gains = []
            for i in range(args.gains):
                size = (3 + 2 * i / max(args.gains - 1, 1)) * sigma  # 3 to 5 sigma
                lr = lr_for_gain(size)
                edit = lambda s, lr=lr: s.replace("LEARNING_RATE = 0.003", f"LEARNING_RATE = {lr:.6f}")
                gains.append(trial(bases[i % len(bases)], root / "t", edit, 2000 + i))
            null_rate = nulls.count("keep") / len(nulls)
            gain_rate = gains.count("keep") / len(gains)
            rows.append((rule, null_rate, gain_rate, sigma))
    print(f"keep rule validity on the toy template (true noise sd {TOY_NOISE}), {args.nulls} null edits and "
          f"{args.gains} gains of 3-5 sigma per rule over {args.baselines} baselines, {time.time() - start:.0f}s:")
    print(f"{'rule':<9} {'null edits kept':>16} {'gains kept':>11} {'noise sd used':>14}")
    for rule, null_rate, gain_rate, sigma in rows:
        print(f"{rule:<9} {null_rate:>15.0%} {gain_rate:>11.0%} {sigma:>14.6f}")
    repeats = dict((r[0], r) for r in rows)["repeats"]
    print(f"target (repeats): null edits kept <= 5%: {'met' if repeats[1] <= 0.05 else 'NOT met'}; "
          f"gains kept >= 80%: {'met' if repeats[2] >= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
