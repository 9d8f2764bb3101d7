"""Speed of the tinylm template's training step against this machine's matmul peak.

Measures, in one run: the best square-matmul FLOP/s in fp32 and bf16, then tokens/s and
achieved FLOP/s of train.py's own `train_step` (default hyperparameters, the dtype train.py
would pick), then a per-op profile saying where the step's time goes.
Target: the step reaches at least 40% of the measured peak of the dtype it uses.

Usage: python benchmarks/tinylm_speed.py [--seconds 15] [--dtype auto|fp32|bf16] [--compile]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "autoresearch_magics" / "templates" / "tinylm"
sys.path.insert(0, str(TEMPLATE))
sys.dont_write_bytecode = True  # no __pycache__ inside the shipped template

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import train as T  # noqa: E402  (the template's train.py)

TARGET = 0.40
BUCKETS = (  # profiler op name fragments -> what kind of work it is
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::_addmm_activation")),
    ("attention", ("scaled_dot_product", "flash_attention")),
    ("optimizer", ("adam", "_foreach", "clip_grad")),
)


def load():
    """Returns the 1-minute load average, or nan where the OS has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def bucket_of(name):
    for bucket, fragments in BUCKETS:
        if any(f in name for f in fragments):
            return bucket
    return "elementwise/other"


def profile_step(step, device, reps=3):
    """Returns ({bucket: seconds per step}, wall seconds per step) from the torch profiler."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        T.sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        T.sync(device)
        wall = (time.perf_counter() - t0) / reps
    times = {}
    for event in prof.key_averages():
        self_us = event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
        times[bucket_of(event.key)] = times.get(bucket_of(event.key), 0.0) + self_us / 1e6 / reps
    return times, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of timed training steps")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    args = parser.parse_args()

    device = T.pick_device()
    T.DTYPE = args.dtype
    if device.type == "cpu":
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(T.THREADS or max(1, min(torch.get_num_threads(), available)))
    torch.set_float32_matmul_precision("high")
    load_before = load()
    print(f"device: {device.type} ({T.device_name(device)}), threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, load average {load_before:.2f}")

    peaks = {name: T.measure_matmul_flops(device, dt, trial_s=0.3)
             for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    dtype = T.pick_dtype(peaks)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s "
          f"-> train.py uses {dtype}")

    torch.manual_seed(0)
    model = T.GPT(T.GPTConfig()).to(device)
    optimizer = T.make_optimizer(model)
    step_model = torch.compile(model) if args.compile else model
    tokens_per_step = T.BATCH_SIZE * T.SEQ_LEN
    flops_per_step = model.flops_per_token(T.SEQ_LEN) * tokens_per_step
    x = torch.randint(0, T.VOCAB_SIZE - 1, (T.BATCH_SIZE, T.SEQ_LEN), device=device)
    y = torch.randint(0, T.VOCAB_SIZE - 1, (T.BATCH_SIZE, T.SEQ_LEN), device=device)

    def step():
        return T.train_step(step_model, optimizer, x, y, 1.0, ctx).item()

    print(f"model: depth {T.DEPTH}, dim {T.MODEL_DIM}, {model.num_params() / 1e6:.2f}M params, "
          f"batch {T.BATCH_SIZE}x{T.SEQ_LEN} tokens, {flops_per_step / 1e9:.2f} GFLOP per step")
    for _ in range(T.UNTIMED_STEPS + 2):
        step()

    # Rounds of (matmul peak, then training steps): on a shared machine the load changes from
    # second to second, so each round's step time is compared with the peak measured beside it.
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    n = 1024 if device.type == "cpu" else 4096
    a = torch.randn(n, n, device=device).to(torch_dtype)
    b = torch.randn(n, n, device=device).to(torch_dtype)
    rounds, times = [], []
    t_end = time.perf_counter() + args.seconds
    while time.perf_counter() < t_end or len(rounds) < 3:
        once = T._time_matmuls(a, b, device, 1)
        reps = max(1, int(0.25 / once))
        peak_r = 2 * n**3 * reps / T._time_matmuls(a, b, device, reps)
        step_times = []
        t_round = time.perf_counter() + 1.0
        while time.perf_counter() < t_round or len(step_times) < 2:
            T.sync(device)
            t0 = time.perf_counter()
            step()
            T.sync(device)
            step_times.append(time.perf_counter() - t0)
        times += step_times
        rounds.append((peak_r, statistics.median(step_times)))

    ratios = sorted(flops_per_step / st / pk for pk, st in rounds)
    ratio = statistics.median(ratios)
    quiet_peak, quiet_step = max(rounds)  # the round with the least contention
    median = statistics.median(times)
    peak = max(peaks[dtype], quiet_peak)
    print(f"\nrounds: {len(rounds)} (0.25 s of {n}x{n} matmuls, then ~1 s of steps), {len(times)} steps")
    print(f"tokens/s: {tokens_per_step / median:,.0f} (median step {median * 1000:.1f} ms), "
          f"{tokens_per_step / quiet_step:,.0f} in the quietest round")
    print(f"achieved: {flops_per_step / median / 1e9:.1f} GFLOP/s (median step); "
          f"{flops_per_step / quiet_step / 1e9:.1f} GFLOP/s in the quietest round")
    print(f"fraction of the {dtype} matmul peak, round by round: median {100 * ratio:.1f}% "
          f"(range {100 * ratios[0]:.1f}-{100 * ratios[-1]:.1f}%); quietest round "
          f"{100 * flops_per_step / quiet_step / quiet_peak:.1f}% of {quiet_peak / 1e9:.1f} GFLOP/s")

    # The profile with the shortest steps is the one least disturbed by other processes.
    buckets, wall = min((profile_step(step, device) for _ in range(5)), key=lambda result: result[1])
    print(f"\nwhere a step's time goes (profiler on, {wall * 1000:.1f} ms per step):")
    matmul_flops = 6 * model.num_params() * tokens_per_step
    share = {name: buckets.get(name, 0.0) / wall for name in ("matmul", "attention", "elementwise/other",
                                                              "optimizer")}
    share["python/dispatch"] = max(0.0, 1 - sum(buckets.values()) / wall)
    matmul_eff = matmul_flops / max(buckets.get("matmul", 0.0), 1e-9) / peak
    for name, fraction in share.items():
        note = f"  (at {100 * matmul_eff:.0f}% of the peak)" if name == "matmul" else ""
        print(f"  {name:<18} {fraction * wall * 1000:8.1f} ms  {100 * fraction:5.1f}%{note}")

    verdict = "MEETS" if ratio >= TARGET else "MISSES"
    print(f"\n{verdict} the {TARGET:.0%} target ({100 * ratio:.1f}% of the measured {dtype} peak).")
    print(f"What limits it: only {100 * share['matmul']:.0f}% of the step is matmul work, itself at "
          f"~{100 * matmul_eff:.0f}% of the peak ({T.MODEL_DIM}-wide matrices); attention "
          f"({T.MODEL_DIM // T.N_HEAD}-wide heads) takes {100 * share['attention']:.0f}% and memory-bound "
          f"elementwise work (layer norms, GELU, softmax, residual adds, copies) "
          f"{100 * share['elementwise/other']:.0f}%, both far below the matmul rate. Wider matrices "
          f"(MODEL_DIM) raise the fraction; so do wider heads, while attention is a large share.")
    print(f"load average: {load_before:.2f} before, {load():.2f} after (other processes share the cores)")


if __name__ == "__main__":
    main()
