"""What training will run on: CUDA devices, Apple MPS, or the CPU."""
from __future__ import annotations

import os
import time


def _cpu_bf16_fast(torch, size: int = 1024) -> dict:
    """Returns measured fp32 and bf16 matmul throughput on the CPU and whether bf16 is faster.

    Takes the best of several timed products, so a busy machine blurs the figures less.
    """
    def gflops(dtype) -> float:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        for _ in range(3):  # warm-up: the first bf16 products build their kernels
            a @ b
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        return 2 * size**3 / best / 1e9

    fp32 = gflops(torch.float32)
    a = torch.randn(size, size).to(torch.bfloat16)
    start = time.perf_counter()
    a @ a
    if time.perf_counter() - start > 20 * 2 * size**3 / fp32 / 1e9:
        # bf16 without hardware support runs tens of times slower: one product says so, and timing
        # the full set would take tens of seconds on such a machine
        bf16 = 2 * size**3 / (time.perf_counter() - start) / 1e9
    else:
        bf16 = gflops(torch.bfloat16)
    return {"fp32_gflops": round(fp32, 1), "bf16_gflops": round(bf16, 1), "bf16_fast": bf16 > 1.2 * fp32}


def describe_hardware(measure: bool = True) -> dict:
    """Returns a JSON-able description of the accelerator training will use; `measure=False` skips
    timing the CPU's matmul throughput (what a report needs in well under a second)."""
    info: dict = {"cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError:
        info.update(device="cpu", torch=None, note="torch is not installed")
        return info
    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        devices = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({"index": i, "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                            "capability": f"{props.major}.{props.minor}"})
        info.update(device="cuda", cuda_devices=devices, bf16_fast=torch.cuda.is_bf16_supported())
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info.update(device="mps", bf16_fast=False)
    else:
        info.update(device="cpu", threads=torch.get_num_threads(), **(_cpu_bf16_fast(torch) if measure else {}))
    return info
