"""
tinylm: a small GPT trained for a fixed wall-clock budget, judged by val_bpb (lower is better).
This is the file experiments edit: model, optimizer, schedule, training loop.

Usage: python train.py
Environment: AUTORESEARCH_BUDGET_S (training seconds, default 60), AUTORESEARCH_SEED (default 42),
AUTORESEARCH_DATA_DIR (data folder, default data/ beside prepare.py), AUTORESEARCH_MAX_STEPS
(a fixed number of steps instead of the budget, for tests and noise studies; default 0: off).
"""

import time

STARTED = time.time()  # before the imports: start-up is part of each run's fixed cost

import gc
import json
import math
import os
import platform
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import MAX_SEQ_LEN, VOCAB_SIZE, cache_dir, ensure_data, evaluate_bpb, make_dataloader

# ---------------------------------------------------------------------------
# Run settings, set by the tool through the environment (never edit these here)
# ---------------------------------------------------------------------------

BUDGET_S = float(os.environ.get("AUTORESEARCH_BUDGET_S", "60"))  # seconds of training per run
SEED = int(os.environ.get("AUTORESEARCH_SEED", "42"))            # seeds init and data order
MAX_STEPS = int(os.environ.get("AUTORESEARCH_MAX_STEPS", "0"))   # steps per run instead of the budget (0: off)

# ---------------------------------------------------------------------------
# Hyperparameters (edit these directly, no CLI flags needed)
# ---------------------------------------------------------------------------

# Model
DEPTH = 2                # transformer blocks
MODEL_DIM = 128          # channels of the residual stream
N_HEAD = 4               # attention heads (head size = MODEL_DIM / N_HEAD)
MLP_RATIO = 4            # MLP hidden width, as a multiple of MODEL_DIM
ROPE_BASE = 10000.0      # rotary positions: the longest rotation wavelength is 2*pi*ROPE_BASE tokens
SEQ_LEN = MAX_SEQ_LEN    # tokens per training sequence (the evaluation always uses MAX_SEQ_LEN)

# Optimization
BATCH_SIZE = 8           # sequences per optimizer step (tokens per step = BATCH_SIZE * SEQ_LEN)
LEARNING_RATE = 2e-3     # peak AdamW learning rate
WEIGHT_DECAY = 0.1       # decoupled weight decay, matrices only
ADAM_BETAS = (0.9, 0.95) # AdamW beta1, beta2
GRAD_CLIP = 1.0          # max global gradient norm (0 disables clipping)
WARMUP_STEPS = 20        # steps raising the LR from 0 (counted in steps: a slow machine still gets them all)
WARMDOWN_RATIO = 0.5     # fraction of the budget, at the end, spent lowering the LR
FINAL_LR_FRAC = 0.0      # LR at the end of the budget, as a fraction of the peak

# Runtime
DTYPE = "auto"           # "auto" (bf16 autocast where it measures faster than fp32), "fp32", "bf16"
COMPILE = False          # torch.compile the model (its compile time falls in the untimed steps)
THREADS = 0              # CPU threads for torch (0: one per available core)
UNTIMED_STEPS = 5        # first steps not counted against the budget (allocator and compile warm-up)

# ---------------------------------------------------------------------------
# Device, dtype and the measured matmul peak (for MFU)
# ---------------------------------------------------------------------------


def pick_device():
    """Returns the fastest available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def sync(device):
    """Waits for queued work on `device`, so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device):
    """Returns a human-readable name of the device's hardware."""
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    if device.type == "cpu" and Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return f"{device.type} {platform.machine()} {platform.processor()}".strip()


def _time_matmuls(a, b, device, reps):
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return time.perf_counter() - t0


def measure_matmul_flops(device, dtype, trial_s=0.1):
    """Returns the best FLOP/s of square `dtype` matmuls on `device` (0.0 if unsupported)."""
    best, n = 0.0, 256
    max_n = 2048 if device.type == "cpu" else 8192
    try:
        while n <= max_n:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            once = _time_matmuls(a, b, device, 1)
            reps = max(1, int(trial_s / max(once, 1e-6)))
            for _ in range(3):
                best = max(best, 2 * n**3 * reps / _time_matmuls(a, b, device, reps))
            if once > 0.05:
                break  # large enough to be compute-bound (or too slow to be worth growing)
            n *= 2
    except (RuntimeError, TypeError):
        pass  # this dtype has no matmul on this device
    return best


def matmul_peaks(device, remeasure=False):
    """Returns {"fp32": FLOP/s, "bf16": FLOP/s} for this machine, measured once and cached.

    With `remeasure`, measures again and keeps the higher figures: a peak first measured while
    other programs were busy is too low, and shows up later as an MFU above 100%.
    """
    key = f"{platform.node()}|{device_name(device)}|threads={torch.get_num_threads()}|torch={torch.__version__}"
    path = cache_dir() / "matmul_peak.json"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key not in cached or remeasure:
        old = cached.get(key, {})
        cached[key] = {name: max(old.get(name, 0.0), measure_matmul_flops(device, dt))
                       for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1))
        os.replace(tmp, path)  # atomic: concurrent runs never read half a file
    return cached[key]


def pick_dtype(peaks):
    """Returns "bf16" when bf16 matmuls run clearly faster than fp32 here, else "fp32"."""
    if DTYPE != "auto":
        return DTYPE
    return "bf16" if peaks["bf16"] > 1.3 * peaks["fp32"] else "fp32"  # never fp16: slow on CPUs


def peak_rss_mb():
    """Returns this process's peak resident memory in MB (0.0 where unknown)."""
    try:
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux
    except ImportError:
        try:
            import psutil
            return psutil.Process().memory_info().peak_wset / 2**20  # Windows
        except (ImportError, AttributeError):
            return 0.0


def peak_vram_mb(device):
    """Returns the peak accelerator memory in MB; 0.0 on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    if device.type == "mps":
        return torch.mps.driver_allocated_memory() / 2**20  # the driver keeps freed blocks: ~peak
    return 0.0

# ---------------------------------------------------------------------------
# Model: a GPT with pre-norm blocks, rotary positions, tied embeddings, no biases or norm weights
# ---------------------------------------------------------------------------


@dataclass
class GPTConfig:
    vocab_size: int = VOCAB_SIZE
    block_size: int = max(SEQ_LEN, MAX_SEQ_LEN)
    n_layer: int = DEPTH
    n_head: int = N_HEAD
    n_embd: int = MODEL_DIM
    mlp_ratio: int = MLP_RATIO


def norm(x):
    # LayerNorm without weights: on CPU its fused kernel is several times faster than rms_norm's.
    return F.layer_norm(x, (x.size(-1),))


def rotary_tables(seq_len, head_dim, base=ROPE_BASE):
    """Returns (cos, sin), each (seq_len, head_dim / 2): the rotation angles of each position."""
    freqs = base ** (-torch.arange(0, head_dim // 2, dtype=torch.float32) / (head_dim // 2))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), freqs)
    return angles.cos(), angles.sin()


def rotate(x, cos, sin):
    """Rotates pairs of channels of x (B, H, T, D) by position: q.k then depends on the offset."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        cos, sin = rotary_tables(config.block_size, config.n_embd // config.n_head)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        cos, sin = self.cos[:T], self.sin[:T]
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(norm(x))
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: fewer parameters to learn in a short budget
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual branches start small (GPT-2)
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        """Returns logits (B, T, vocab) without targets, else the mean cross-entropy."""
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))

    def num_params(self):
        """Returns the number of distinct parameters (the tied matrix counted once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len):
        """Returns training FLOPs per token: 6 per matmul weight, plus causal attention."""
        c = self.config
        matmul_weights = self.num_params()  # wte counts once: as lm_head (the lookup is free)
        attention = 6 * c.n_layer * c.n_embd * seq_len  # QK^T and AV over T/2 keys on average
        return 6 * matmul_weights + attention


def make_optimizer(model):
    """Returns AdamW with weight decay on matrices only (norms have no weights here)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=LEARNING_RATE, betas=ADAM_BETAS, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=LEARNING_RATE, betas=ADAM_BETAS)


def lr_multiplier(step, progress):
    """Returns the LR multiplier at `step` and `progress` (fraction of the budget used): warmup, flat, warmdown."""
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    if progress < 1.0 - WARMDOWN_RATIO:
        return 1.0
    cooldown = (1.0 - progress) / WARMDOWN_RATIO
    return cooldown + (1 - cooldown) * FINAL_LR_FRAC


def train_step(model, optimizer, x, y, lrm, autocast_ctx):
    """Runs one optimizer step on batch (x, y) at LR multiplier `lrm`; returns the loss tensor."""
    with autocast_ctx:
        loss = model(x, y)
    loss.backward()
    for group in optimizer.param_groups:
        group["lr"] = LEARNING_RATE * lrm
    if GRAD_CLIP > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def setup(device):
    """Returns (peaks, dtype name, autocast context) after setting threads and precision."""
    if device.type == "cpu":
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(THREADS or max(1, min(torch.get_num_threads(), available)))
    torch.set_float32_matmul_precision("high")  # TF32 on GPUs that have it
    peaks = matmul_peaks(device)
    dtype = pick_dtype(peaks)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    return peaks, dtype, ctx

# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def main():
    torch.manual_seed(SEED)
    device = pick_device()
    peaks, dtype, autocast_ctx = setup(device)
    peak_flops = peaks[dtype]
    meta = ensure_data()
    print(f"Device: {device.type} ({device_name(device)}), dtype {dtype}, threads {torch.get_num_threads()}")
    print(f"Matmul peak: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    print(f"Data: {meta['train_tokens']:,} train tokens, hash {meta['data_hash']}")

    model = GPT(GPTConfig()).to(device)
    num_params = model.num_params()
    flops_per_token = model.flops_per_token(SEQ_LEN)
    print(f"Parameters: {num_params:,}; FLOPs per token: {flops_per_token:.3e}")
    optimizer = make_optimizer(model)
    train_model = torch.compile(model) if COMPILE else model
    loader = make_dataloader(BATCH_SIZE, SEQ_LEN, device=device, seed=SEED)
    tokens_per_step = BATCH_SIZE * SEQ_LEN
    length = f"{MAX_STEPS} steps (AUTORESEARCH_MAX_STEPS; the budget is ignored)" if MAX_STEPS else f"{BUDGET_S:g}s"
    print(f"Time budget: {length}; tokens per step: {tokens_per_step:,}")
    print(f"Start-up: {time.time() - STARTED:.1f}s (interpreter, imports, device set-up, data)")

    x, y, epoch = next(loader)
    smooth_loss, training_time, step = 0.0, 0.0, 0
    while True:
        sync(device)
        t0 = time.perf_counter()
        progress = min(step / MAX_STEPS if MAX_STEPS else training_time / BUDGET_S, 1.0)
        lrm = lr_multiplier(step, progress)
        loss = train_step(train_model, optimizer, x, y, lrm, autocast_ctx)
        x, y, epoch = next(loader)
        loss_f = loss.item()  # also waits for the step to finish
        if math.isnan(loss_f) or loss_f > 100:
            print("\nFAIL")
            sys.exit(1)
        sync(device)
        dt = time.perf_counter() - t0
        if step >= UNTIMED_STEPS:
            training_time += dt

        smooth_loss = 0.9 * smooth_loss + 0.1 * loss_f
        debiased = smooth_loss / (1 - 0.9 ** (step + 1))
        mfu = 100 * flops_per_token * tokens_per_step / dt / peak_flops
        remaining = max(0.0, BUDGET_S - training_time)
        print(f"\rstep {step:05d} ({100 * progress:.1f}%) | loss: {debiased:.6f} | lrm: {lrm:.2f} | "
              f"dt: {dt * 1000:.0f}ms | tok/sec: {int(tokens_per_step / dt):,} | mfu: {mfu:.1f}% | "
              f"epoch: {epoch} | remaining: {remaining:.0f}s    ", end="", flush=True)

        if step == 0:  # the collector's pauses would land inside timed steps
            gc.collect()
            gc.freeze()
            gc.disable()
        step += 1
        if (step >= MAX_STEPS) if MAX_STEPS else (step > UNTIMED_STEPS and training_time >= BUDGET_S):
            break
    print()

    t_eval = time.perf_counter()
    with autocast_ctx:
        val_bpb = evaluate_bpb(model)
    print(f"Evaluation: {time.perf_counter() - t_eval:.1f}s")
    timed_steps = step - UNTIMED_STEPS
    tokens_per_sec = tokens_per_step * timed_steps / training_time if timed_steps > 0 else 0.0
    achieved = flops_per_token * tokens_per_sec
    if achieved > peak_flops:
        print(f"Cached matmul peak {peak_flops / 1e9:.1f} GFLOP/s is below this run's rate: measuring again")
        peak_flops = max(achieved, matmul_peaks(device, remeasure=True)[dtype])
    mfu_percent = 100 * achieved / peak_flops
    summary = {
        "val_bpb": f"{val_bpb:.6f}",
        "training_seconds": f"{training_time:.1f}",
        "total_seconds": f"{time.time() - STARTED:.1f}",
        "peak_vram_mb": f"{peak_vram_mb(device):.1f}",
        "mfu_percent": f"{mfu_percent:.2f}",
        "total_tokens_M": f"{step * tokens_per_step / 1e6:.2f}",
        "num_steps": step,
        "num_params_M": f"{num_params / 1e6:.2f}",
        "depth": DEPTH,
        "peak_rss_mb": f"{peak_rss_mb():.1f}",
        "tokens_per_sec": f"{tokens_per_sec:.0f}",
        "data_hash": meta["data_hash"],
        "device": device.type,
        "dtype": dtype,
        "seed": SEED,
    }
    print("---")
    for key, value in summary.items():
        print(f"{key + ':':<18}{value}")


if __name__ == "__main__":
    main()
