"""Executors run a batch's experiments concurrently: on this machine (`local`, the default, no
extra needed), on a Ray cluster (`ray`, extra `[ray]`) or as Slurm jobs (`slurm`, extra `[slurm]`).
Each one only starts tasks and reports their events; the ratchet stays in `core.engine`."""
from __future__ import annotations

from .base import Executor, ExecutorError, TaskResult, TaskSink, TaskSpec

EXECUTORS = ("local", "ray", "slurm")


def make_executor(kind: str = "local", *, address: str | None = None, gpus_per_experiment: int = 0,
                  partition: str | None = None, folder=None, **options) -> Executor:
    """Returns the executor a front end asked for (not yet connected); raises ExecutorError naming the choices."""
    if gpus_per_experiment < 0:
        raise ExecutorError("--gpus-per-experiment must be 0 or more")
    if kind == "local":
        from .local import LocalPoolExecutor
        return LocalPoolExecutor(gpus_per_experiment, **options)
    if kind == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor(address, gpus_per_experiment, **options)
    if kind == "slurm":
        if folder is None:
            raise ExecutorError("the slurm executor needs a folder the compute nodes share (submitit keeps jobs there)")
        from .slurm import SlurmExecutor
        return SlurmExecutor(folder, partition, gpus_per_experiment, **options)
    raise ExecutorError(f"unknown executor {kind!r}: use one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "ExecutorError", "TaskResult", "TaskSink", "TaskSpec", "make_executor"]
