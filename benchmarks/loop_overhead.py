"""Loop overhead per experiment: `run_loop` against a plain shell loop doing the same steps.

Overhead = an experiment's wall time minus the child's own run time. Both loops run a script
that sleeps a fixed time and prints a summary, commit an edit first, log the output, read the
metric, append a TSV row and reset on discard. Then the growth check: the overhead at
experiment ~2,000 against experiment ~20 of one long campaign (a script that exits at once).

    python benchmarks/loop_overhead.py [--n 30] [--sleep 0.2] [--growth 2000]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoresearch_magics import Campaign  # noqa: E402
from autoresearch_magics.core.events import CampaignListener  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402
from autoresearch_magics.core.proposers import Proposal, Proposer  # noqa: E402

SCRIPT = """# experiment {n}
sleep {sleep}
echo step 00001 '(100.0%)' '|' loss: 1.0
echo ---
echo "val_bpb:          {value:.6f}"
echo "training_seconds: {sleep}"
"""

SHELL_LOOP = r"""
set -e
cd "$1"; n_max=$2; sleep_s=$3
best=999
for n in $(seq 1 $n_max); do
  t0=$(date +%s%N)
  value=$(printf '0.9%05d' $((RANDOM % 100000)))
  printf '# experiment %s\nsleep %s\necho ---\necho "val_bpb:          %s"\n' $n $sleep_s $value > train.sh
  git commit -q -m "experiment $n" -- train.sh
  c0=$(date +%s%N)
  sh train.sh > run.log 2>&1
  c1=$(date +%s%N)
  metric=$(grep '^val_bpb:' run.log | awk '{print $2}')
  commit=$(git rev-parse --short=7 HEAD)
  if awk "BEGIN{exit !($metric < $best)}"; then status=keep; best=$metric; else status=discard; fi
  printf '%s\t%s\t0.0\t%s\texperiment %s\n' $commit $metric $status $n >> results.tsv
  if [ $status = discard ]; then git reset -q --hard HEAD~1; fi
  t1=$(date +%s%N)
  echo $(( (t1 - t0) - (c1 - c0) ))
done
"""


class EditEachTime(Proposer):
    """Writes a new train.sh each time (a real edit, so a real commit) and times the iteration."""

    name = "bench"

    def __init__(self, sleep: float) -> None:
        self.sleep, self.n, self.started, self.rng = sleep, 0, None, random.Random(0)

    def propose(self, campaign):
        self.started = time.perf_counter()
        self.n += 1
        text = SCRIPT.format(n=self.n, sleep=self.sleep, value=self.rng.uniform(0.9, 1.1))
        return Proposal(f"experiment {self.n}", {"train.sh": text})


class Timer(CampaignListener):
    def __init__(self, proposer: EditEachTime) -> None:
        self.proposer, self.overheads = proposer, []

    def experiment_finished(self, result):
        if self.proposer.started is not None:
            self.overheads.append(time.perf_counter() - self.proposer.started - result.wall_s)


def _campaign(folder: Path, sleep: float) -> Campaign:
    folder.mkdir(parents=True)
    (folder / "train.sh").write_text(SCRIPT.format(n=0, sleep=sleep, value=1.0))
    return Campaign.init(folder, tag="bench", command="sh train.sh", budget_s=max(sleep, 0.01),
                         editable=["train.sh"])


def ours(folder: Path, n: int, sleep: float) -> list[float]:
    campaign = _campaign(folder, sleep)
    proposer = EditEachTime(sleep)
    timer = Timer(proposer)
    run_loop(campaign, proposer, n, listener=timer, report_every=0)
    return timer.overheads


def grown(folder: Path, n: int):
    """Returns (campaign, proposer, timer) after `n` experiments of a script that exits at once."""
    campaign = _campaign(folder, 0.0)
    proposer = EditEachTime(0.0)
    timer = Timer(proposer)
    run_loop(campaign, proposer, n, listener=timer, report_every=0)
    return campaign, proposer, timer


def shell(folder: Path, n: int, sleep: float) -> list[float]:
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    (folder / "train.sh").write_text("echo ---\n")
    (folder / ".git" / "info" / "exclude").write_text("results.tsv\nrun.log\n")
    subprocess.run(["git", "add", "train.sh"], cwd=folder, check=True)
    subprocess.run(["git", "commit", "-qm", "start"], cwd=folder, check=True)
    out = subprocess.run(["bash", "-c", SHELL_LOOP, "bench", str(folder), str(n), str(sleep)],
                         capture_output=True, text=True, check=True).stdout
    return [int(line) / 1e9 for line in out.split()]


def describe(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (f"{label:<22} median {statistics.median(ms):7.1f} ms   p90 {ms[int(0.9 * (len(ms) - 1))]:7.1f} ms"
            f"   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="experiments per loop in the side-by-side run")
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds the script sleeps")
    parser.add_argument("--growth", type=int, default=2000, help="experiments in the growth run (0 to skip)")
    args = parser.parse_args()
    env_identity = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@localhost",
                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@localhost"}
    os.environ.update(env_identity)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # interleave halves so machine noise hits both loops alike
        half = args.n // 2
        o1, s1 = ours(tmp / "o1", half, args.sleep), shell(tmp / "s1", half, args.sleep)
        o2, s2 = ours(tmp / "o2", args.n - half, args.sleep), shell(tmp / "s2", args.n - half, args.sleep)
        mine, theirs = o1 + o2, s1 + s2
        print(f"per-experiment overhead (wall minus the child's own run time), script sleeps {args.sleep}s:")
        print(describe("autoresearch loop", mine))
        print(describe("plain shell loop", theirs))
        ratio = statistics.median(mine) / statistics.median(theirs)
        print(f"ratio ours/shell (median): {ratio:.2f}  target <= 1.00; ours under 150 ms: "
              f"{'yes' if statistics.median(mine) < 0.150 else 'NO'}")
        if args.growth:
            # Grow one campaign to ~2,000 experiments, then measure it side by side with a young
            # one, alternating single experiments, so machine load hits both alike.
            old_c, old_p, old_t = grown(tmp / "old", args.growth - 20)
            young_c, young_p, young_t = grown(tmp / "young", 10)
            for _ in range(20):
                run_loop(young_c, young_p, 1, listener=young_t, report_every=0)
                run_loop(old_c, old_p, 1, listener=old_t, report_every=0)
            early, late = young_t.overheads[-20:], old_t.overheads[-20:]
            growth = statistics.median(late) / statistics.median(early)
            print(describe("experiments 11-30", early))
            print(describe(f"experiments {args.growth - 19}-{args.growth}", late))
            print(f"growth ratio (median, late/early, measured alternately): {growth:.2f}  target <= 1.20")

if __name__ == "__main__":
    main()
