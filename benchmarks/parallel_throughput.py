"""Parallel throughput: experiments per hour with N slots against one slot, on one local Ray cluster.

Steady state: both campaigns run the whole loop (propose, commit, ship the tree, run, stream,
decide, write rows, move the branch) on a fixed-time script that prints a line, sleeps, and
reports a metric, after their baseline and on warm workers. The script sleeps rather than
computes, so N logical CPUs on a smaller machine measure the tool, not the machine.

End to end: a short campaign as a user starts it on a running cluster, `autoresearch loop
--executor ray --parallel N` from a fresh process (CLI start, connecting, the baseline, worker
start-up, every batch) until it exits, against the same number of experiments one at a time
(the measured one-slot time per experiment).

Also reported: the time from submitting an experiment to its first output line arriving here,
for Ray and, as the reference, for the local executor (both include the script's interpreter start).

    python benchmarks/parallel_throughput.py [--n 16] [--sleep 8] [--slots 4]
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
from autoresearch_magics.core.executors.base import Executor, TaskSink  # noqa: E402
from autoresearch_magics.core.executors.local import LocalPoolExecutor  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402
from autoresearch_magics.core.proposers import Proposal, Proposer  # noqa: E402

SCRIPT = """import time
VALUE = 1.0
print("started", flush=True)
time.sleep({sleep})
print("---")
print(f"val_bpb:          {{VALUE:.6f}}")
print("training_seconds: {sleep}")
"""


class RandomValue(Proposer):
    """A new commit per experiment (VALUE drawn at random), so some are kept and the branch moves."""

    name = "random-value"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def propose(self, campaign):
        return self.propose_batch(campaign, 1)[0]

    def propose_batch(self, campaign, n):
        source = campaign.ledger.read_file("HEAD", "train.py")  # once per batch: all start from the best
        proposals = []
        for _ in range(n):
            value = self.rng.uniform(0.9, 1.1)
            lines = [f"VALUE = {value!r}" if line.startswith("VALUE =") else line for line in source.splitlines()]
            proposals.append(Proposal(f"value {value:.4f}", {"train.py": "\n".join(lines) + "\n"}))
        return proposals


class Timed(Executor):
    """Wraps an executor and notes, per task, the seconds from submit to its first output line."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.name, self.gpus_per_experiment, self.runs_here = inner.name, inner.gpus_per_experiment, inner.runs_here
        self.first_line_s: list[float] = []

    def open(self):
        self.inner.open()
        return self

    def close(self):
        self.inner.close()

    def capacity(self):
        return self.inner.capacity()

    def submit(self, spec, log_path, sink):
        timer, submitted = self, time.monotonic()

        class First(TaskSink):
            seen = False

            def started(self, job_id, node, pid=None):
                sink.started(job_id, node, pid)

            def lines(self, lines):
                if not self.seen:
                    self.seen = True
                    timer.first_line_s.append(time.monotonic() - submitted)
                sink.lines(lines)

            def sampled(self, rss_mb):
                sink.sampled(rss_mb)

            def finished(self, result):
                sink.finished(result)

        return self.inner.submit(spec, log_path, First())


def campaign_in(folder: Path, sleep: float) -> Campaign:
    """Returns a new campaign whose script runs `sleep` seconds."""
    campaign = Campaign.init(folder, tag="bench", template="toy", budget_s=sleep)
    (campaign.paths.root / "train.py").write_text(SCRIPT.format(sleep=sleep))
    campaign.ledger.commit_files(["train.py"], "fixed-time script")
    return campaign


def timed_loop(campaign, executor: Executor, n: int, slots: int) -> float:
    """Runs the baseline, then times `n` experiments with `slots` at once; returns the seconds."""
    run_loop(campaign, _Nothing(), None, executor=executor, parallel=1)   # the baseline, untimed
    start = time.monotonic()
    results = run_loop(campaign, RandomValue(slots), n, executor=executor, parallel=slots)
    elapsed = time.monotonic() - start
    crashes = [r for r in results if r.status == "crash"]
    if len(results) != n or crashes:
        raise SystemExit(f"expected {n} clean results, got {len(results)} ({crashes[:1]})")
    return elapsed


def end_to_end(folder: Path, sleep: float, n: int, slots: int, address: str) -> float:
    """Returns the seconds a fresh `autoresearch loop` process takes for `n` experiments (baseline included)."""
    campaign_in(folder, sleep)
    env = {**os.environ, "RAY_ADDRESS": address,
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "autoresearch_magics.cli", "loop", "-C", str(folder), "--executor", "ray",
               "--parallel", str(slots), "--max", str(n - 1), "--proposer", "sweep", "--space",
               "VALUE=uniform(0.9,1.1)"]
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    rows = Campaign.open(folder).rows()
    if done.returncode != 0 or len(rows) != n or any(r["status"] == "crash" for r in rows):
        raise SystemExit(f"end-to-end campaign failed ({done.returncode}, {len(rows)} rows):\n{done.stderr[-3000:]}")
    return elapsed


class _Nothing(Proposer):
    name = "nothing"

    def propose(self, campaign):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="timed experiments per campaign")
    parser.add_argument("--sleep", type=float, default=8.0, help="seconds the script runs")
    parser.add_argument("--slots", type=int, default=4, help="parallel slots of the second campaign")
    args = parser.parse_args()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from autoresearch_magics.core.executors.ray_executor import RayExecutor

    t0 = time.monotonic()
    ray.init(address="local", num_cpus=args.slots, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    cluster_s = time.monotonic() - t0

    @ray.remote(num_cpus=1)
    def warm():
        import autoresearch_magics.core.executors.worker  # noqa: F401
        time.sleep(0.3)
        return os.getpid()

    workers: set[int] = set()
    while len(workers) < args.slots:  # a cluster that has been up a while has its workers started
        workers |= set(ray.get([warm.remote() for _ in range(args.slots)]))

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        timers = {}
        for slots in (1, args.slots):
            campaign = campaign_in(Path(tmp) / f"slots{slots}", args.sleep)
            timers[slots] = Timed(RayExecutor())
            rows.append((slots, timed_loop(campaign, timers[slots], args.n, slots)))
        local = Timed(LocalPoolExecutor())
        timed_loop(campaign_in(Path(tmp) / "local", args.sleep), local, args.slots, args.slots)
        end_to_end_s = end_to_end(Path(tmp) / "e2e", args.sleep, args.n, args.slots,
                                  ray.get_runtime_context().gcs_address)
    ray.shutdown()

    base_rate = 3600 * args.n / rows[0][1]
    print(f"local Ray cluster: {args.slots} logical CPUs, started in {cluster_s:.1f}s; "
          f"script: {args.sleep:g}s fixed; {args.n} timed experiments per campaign\n")
    print(f"{'slots':>5}  {'wall s':>7}  {'exp/hour':>8}  {'vs 1 slot':>9}  {'ideal':>6}  {'target':>8}")
    for slots, elapsed in rows:
        rate = 3600 * args.n / elapsed
        target = f">= {0.9 * slots:.2f}x" if slots > 1 else ""
        print(f"{slots:>5}  {elapsed:>7.1f}  {rate:>8.0f}  {rate / base_rate:>8.2f}x  {slots:>5}x  {target:>8}")
    ideal = 3600 / args.sleep
    print(f"(one slot at zero overhead: {ideal:.0f} exp/hour)\n")
    per_experiment_s = rows[0][1] / args.n
    sequential_s = per_experiment_s * args.n
    print(f"end to end, {args.n} experiments (the baseline included) from `autoresearch loop --executor ray "
          f"--parallel {args.slots}` in a fresh process to its exit: {end_to_end_s:.1f}s against {sequential_s:.1f}s "
          f"one at a time ({per_experiment_s:.2f}s each, measured above): {sequential_s / end_to_end_s:.2f}x   "
          f"target >= {0.6 * args.slots:.2f}x\n")
    ray_first = timers[1].first_line_s + timers[args.slots].first_line_s
    print("submit to first output line, seconds (median / max):")
    print(f"  ray    {statistics.median(ray_first):.3f} / {max(ray_first):.3f}   ({len(ray_first)} experiments)")
    print(f"  local  {statistics.median(local.first_line_s):.3f} / {max(local.first_line_s):.3f}   "
          f"({len(local.first_line_s)} experiments; interpreter start of the script only)")
    print(f"  ray overhead, start to first line (median, script start included): "
          f"{statistics.median(ray_first):.3f} s   target < 1 s")


if __name__ == "__main__":
    main()
