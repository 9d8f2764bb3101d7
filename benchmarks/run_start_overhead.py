"""What the shepherd costs a run: start-up latency and whole-run wall time, side by side with a
plain `/bin/sh -c` child in its own session (what the runner did before it had a shepherd).

Start-up latency = from just before the process is started to the first output line of the
command, read from the pipe. Wall = from start to the end of the output and the exit status.
Three paths, interleaved so that machine load hits them alike:

- plain:    Popen(["/bin/sh", "-c", command], start_new_session=True), stdout piped;
- python:   a bare `python -I -S` printing a line, for scale: the floor of any Python shepherd;
- shepherd: the same with the shepherd in between (containment.shepherd_command);
- run():    the whole runner (shepherd, log file, summary parser, marker, clean-up).

    python benchmarks/run_start_overhead.py [--n 40] [--command "echo ready"]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoresearch_magics.core.containment import RUN_ID_ENV, new_run_id, shepherd_command  # noqa: E402
from autoresearch_magics.core.runner import RunListener, RunSpec, run  # noqa: E402


def time_popen(argv: list[str], env: dict) -> tuple[float, float]:
    """Returns (start-up latency, wall) in seconds for one child started with `argv`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    proc.stdout.readline()
    first = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait()
    proc.stdout.close()
    return first, time.perf_counter() - t0


def time_run(command: str, folder: str) -> tuple[float, float]:
    """Returns (start-up latency, wall) in seconds for one `run()` of `command`."""
    seen: list[float] = []

    class FirstLine(RunListener):
        def lines(self, lines):
            if not seen and lines:
                seen.append(time.perf_counter())

    t0 = time.perf_counter()
    run(RunSpec(command=command, cwd=folder, log_path=os.path.join(folder, "run.log"), timeout_s=60), FirstLine())
    return seen[0] - t0, time.perf_counter() - t0


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(samples) * 1000:7.1f} {p90 * 1000:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="runs per path")
    parser.add_argument("--command", default="echo ready", help="the command run on every path")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "python": [], "shepherd": [], "run()": []}
    bare_python = [sys.executable, "-I", "-S", "-c", "print('ready')"]
    with tempfile.TemporaryDirectory() as folder:
        time_popen(shepherd_command(args.command), env)  # warm the page cache for the interpreter
        for _ in range(args.n):
            results["plain"].append(time_popen(["/bin/sh", "-c", args.command], env))
            results["python"].append(time_popen(bare_python, env))
            results["shepherd"].append(time_popen(shepherd_command(args.command), {**env, RUN_ID_ENV: new_run_id()}))
            results["run()"].append(time_run(args.command, folder))
    print(f"command: {args.command!r}, {args.n} runs per path, times in ms")
    print(f"{'path':10} {'start-up median':>16} {'p90':>7} {'wall median':>12} {'p90':>7}")
    for name, samples in results.items():
        start = describe([s for s, _ in samples])
        wall = describe([w for _, w in samples])
        print(f"{name:10} {start[:7]:>16} {start[8:]:>7} {wall[:7]:>12} {wall[8:]:>7}")
    plain = {k: statistics.median(x[k] for x in results["plain"]) for k in (0, 1)}
    for name in ("python", "shepherd", "run()"):
        added = [statistics.median(x[k] for x in results[name]) - plain[k] for k in (0, 1)]
        print(f"added by {name:9}: start-up {added[0] * 1000:+.1f} ms, wall {added[1] * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
