"""A toy training script with the reference output format and no dependencies.

It "trains" for the budget, then reports a val_bpb that depends smoothly on the constants
below (best at LEARNING_RATE = 0.01, WIDTH = 256) plus seeded noise. Use it to try the tool
in seconds, to test proposers and keep rules, and to measure the tool's own overhead.
"""
import math
import os
import random
import sys
import time

# ---------------------------------------------------------------- hyperparameters
LEARNING_RATE = 0.003   # step size (dimensionless); optimum 0.01
WIDTH = 128             # hidden units; optimum 256
NOISE = 0.002           # run-to-run jitter of the metric (bits per byte, standard deviation)
STEP_S = 0.05           # wall-clock seconds one fake training step takes
# --------------------------------------------------------------------------------

budget_s = float(os.environ.get("AUTORESEARCH_BUDGET_S", "2"))
seed = int(os.environ.get("AUTORESEARCH_SEED", "42"))
rng = random.Random(seed)
t0 = time.time()

steps = max(1, int(budget_s / STEP_S))
train_start = time.time()
loss = 4.0
for step in range(steps):
    time.sleep(STEP_S)
    loss = 1.0 + 3.0 * math.exp(-step / max(steps / 4, 1))
    elapsed = time.time() - train_start
    print(f"\rstep {step:05d} ({100 * (step + 1) / steps:.1f}%) | loss: {loss:.6f} | lrm: 1.00 | "
          f"dt: {STEP_S * 1000:.0f}ms | tok/sec: 1,000 | mfu: 0.0% | epoch: 1 | "
          f"remaining: {max(0, budget_s - elapsed):.0f}s", end="", flush=True)
    if elapsed >= budget_s:
        break
training_seconds = time.time() - train_start
print()

val_bpb = (1.0 + 0.1 * (math.log10(LEARNING_RATE) + 2.0) ** 2 + ((WIDTH - 256) / 256) ** 2 * 0.05
           + rng.gauss(0.0, NOISE))
if not math.isfinite(val_bpb):
    print("FAIL")
    sys.exit(1)

print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {training_seconds:.1f}")
print(f"total_seconds:    {time.time() - t0:.1f}")
print("peak_vram_mb:     0.0")
print("mfu_percent:      0.00")
print("total_tokens_M:   0.0")
print(f"num_steps:        {step + 1}")
print(f"num_params_M:     {WIDTH * WIDTH / 1e6:.1f}")
print("depth:            1")
