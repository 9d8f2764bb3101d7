"""The local executor: experiments run concurrently on this machine, each in its own temporary
folder holding its candidate commit's files, one thread per running experiment.

GPUs are handed out from a pool (`devices`, default: the CUDA devices this process sees), so
concurrent experiments never share a device; an experiment that asks for none gets an empty
CUDA_VISIBLE_DEVICES.
"""
from __future__ import annotations

import os
import socket
import threading

from ..runner import RunListener
from .base import Executor, ExecutorError, Handle, TaskResult, TaskSink, TaskSpec
from .worker import run_task


class _Handle(Handle):
    def __init__(self) -> None:
        self.stop = threading.Event()

    def cancel(self) -> None:
        self.stop.set()


class _ToSink(RunListener):
    def __init__(self, sink: TaskSink) -> None:
        self.sink = sink

    def started(self, pid):
        self.sink.started(str(pid), socket.gethostname(), pid)

    def lines(self, lines):
        self.sink.lines(lines)

    def sampled(self, rss_mb):
        self.sink.sampled(rss_mb)


class LocalPoolExecutor(Executor):
    """Runs experiments as concurrent child processes of this one."""

    name = "local"
    runs_here = True

    def __init__(self, gpus_per_experiment: int | None = 0, devices: list[str] | None = None) -> None:
        """`gpus_per_experiment` None: every run sees the devices this process sees (one run at a time)."""
        self.gpus_per_experiment = gpus_per_experiment
        self._free = list(devices) if devices is not None else (_visible_devices() if gpus_per_experiment else [])
        self._lock = threading.Lock()
        if gpus_per_experiment and len(self._free) < gpus_per_experiment:
            raise ExecutorError(f"each experiment asks for {gpus_per_experiment} GPU(s) but this machine shows "
                                f"{len(self._free)}: lower --gpus-per-experiment, or use --executor ray")

    def capacity(self) -> int | None:
        if self.gpus_per_experiment:
            return len(self._free) // self.gpus_per_experiment
        return os.cpu_count() or 1

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        handle = _Handle()
        devices = self._take(spec.gpus or 0)
        if devices is None:
            raise ExecutorError(f"no free GPU for experiment {spec.experiment}: lower --parallel")
        visible = None if spec.gpus is None else ",".join(devices)

        def work() -> None:
            try:
                outcome = run_task(spec, _ToSink(sink), handle.stop.is_set, log_path, visible)
                result = TaskResult(outcome, job_id=str(outcome.pid), node=socket.gethostname())
            except Exception as exc:  # a run that could not start is that experiment's crash, not the loop's
                result = TaskResult(None, f"could not start: {type(exc).__name__}: {exc}")
            finally:
                self._give_back(devices)
            sink.finished(result)

        threading.Thread(target=work, name=spec.name, daemon=True).start()
        return handle

    def _take(self, count: int) -> list[str] | None:
        with self._lock:
            if count > len(self._free):
                return None
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def _give_back(self, devices: list[str]) -> None:
        with self._lock:
            self._free.extend(devices)


def _visible_devices() -> list[str]:
    """Returns the CUDA device ids this process may use."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip()]
    try:
        import torch
        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []
