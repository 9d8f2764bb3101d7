"""The Ray executor: each run of an experiment is one Ray task, wherever the cluster puts it.

The task asks for `num_gpus=K` (Ray then gives it its own CUDA_VISIBLE_DEVICES) and carries the
candidate's file tree, so no shared filesystem is needed. It is a generator task: output lines
come back while the run goes on and are written to the campaign's log here. The run itself is
started by `worker.run_task` in its own session, so a timeout, a cancel or the death of the Ray
worker kills the whole process group, which Ray alone would not do for grandchildren.

Connect with `address`: None (the cluster RAY_ADDRESS names, else a new local one), "auto" (the
cluster this node belongs to), "local" (a new one) or "HOST:PORT" of a head node's GCS.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import sys
import threading

from .base import Executor, ExecutorError, Handle, StreamLog, TaskResult, TaskSink, TaskSpec
from .worker import stream_task

CONNECT_TIMEOUT_S = 30.0   # a dead address makes ray.init retry for minutes; we give up sooner
PROBE_TIMEOUT_S = 5.0      # TCP check of HOST:PORT before Ray is asked to connect
INSTALL_HINT = "pip install 'autoresearch-magics[ray]'"


def _ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray on this machine and on the cluster: {INSTALL_HINT}") from None
    return ray


def _warm_task() -> int:
    """Imports what a run needs, so the first experiment on this worker does not pay for it."""
    from . import worker  # noqa: F401
    return os.getpid()


def _ray_task(spec: TaskSpec):
    """The Ray task body: runs `spec` on the worker and yields its events."""
    import ray
    context = ray.get_runtime_context()
    devices = ",".join(str(d) for d in context.get_accelerator_ids().get("GPU", []))
    yield from stream_task(spec, context.get_task_id() or "", devices if spec.gpus else None)


class _RayHandle(Handle):
    def __init__(self, generator) -> None:
        self.generator = generator
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        # force=False raises KeyboardInterrupt in the task: stream_task's cleanup kills the run's group
        _ray().cancel(self.generator)


class RayExecutor(Executor):
    """Runs experiments as Ray tasks on an existing or a local Ray cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_experiment: int = 0, cpus_per_experiment: float = 1,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, runtime_env: dict | None = None) -> None:
        self.address = address
        self.gpus_per_experiment = gpus_per_experiment
        self.cpus_per_experiment = cpus_per_experiment
        self.connect_timeout_s = connect_timeout_s
        self.runtime_env = runtime_env
        self._connected_here = False
        self._remote = None
        self._warming: list = []
        self._opening: threading.Thread | None = None
        self._open_error: BaseException | None = None

    def open_soon(self, slots: int | None = None) -> None:
        if self._opening is not None or self._remote is not None or not self.opens_anywhere:
            return

        def work() -> None:
            try:
                self._open_now()
                self.warm(slots or self.capacity() or 1)
            except BaseException as exc:  # raised by `open` in the caller's thread
                self._open_error = exc

        self._opening = threading.Thread(target=work, name="ray-open", daemon=True)
        self._opening.start()

    def open(self) -> "RayExecutor":
        if self._opening is not None:
            self._opening.join()
            self._opening, error, self._open_error = None, self._open_error, None
            if error is not None:
                raise error
        if self._remote is None:
            self._open_now()
        return self

    def _open_now(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            connect(self.address, self.connect_timeout_s, self.runtime_env)
            self._connected_here = True
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_experiment > gpus:  # Ray would keep such a task pending for ever
            self.close()
            raise ExecutorError(f"each experiment asks for {self.gpus_per_experiment} GPU(s) but the Ray cluster has "
                                f"{gpus:g} in all: lower --gpus-per-experiment, or add GPU nodes to the cluster")
        # retries would run an experiment twice and hide a lost worker: a lost run is a crash.
        # max_calls=0 lets GPU tasks reuse warm workers (Ray's default of 1 starts a fresh worker
        # per GPU task, a second or more each); the GPU is used by the child, which has exited.
        self._remote = ray.remote(max_retries=0, max_calls=0, num_cpus=self.cpus_per_experiment)(_ray_task)

    @property
    def opens_anywhere(self) -> bool:
        # a new local cluster belongs to the thread that starts it; a connection to a running one does not
        if (self.address or os.environ.get("RAY_ADDRESS") or "local") != "local":
            return True
        ray = sys.modules.get("ray")
        return ray is not None and ray.is_initialized()

    def warm(self, slots: int) -> None:
        """Starts `slots` no-op tasks shaped like experiments, so Ray starts their workers now."""
        if self._remote is None or self.gpus_per_experiment or self._warming:
            return  # GPU tasks get their workers when they run
        remote = _ray().remote(max_retries=0, num_cpus=self.cpus_per_experiment)(_warm_task)
        self._warming = [remote.remote() for _ in range(slots)]

    def close(self) -> None:
        self._warming = []
        if self._connected_here:
            _ray().shutdown()
            self._connected_here = False

    def capacity(self) -> int | None:
        resources = _ray().cluster_resources()
        if self.gpus_per_experiment:
            return math.floor(resources.get("GPU", 0) / self.gpus_per_experiment)
        return math.floor(resources.get("CPU", 0) / max(self.cpus_per_experiment, 1e-9)) or None

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        if self._remote is None:
            self.open()
        generator = self._remote.options(num_gpus=spec.gpus, name=spec.name).remote(spec)
        handle = _RayHandle(generator)
        threading.Thread(target=_follow, args=(handle, spec, log_path, sink), name=spec.name, daemon=True).start()
        return handle


def _follow(handle: _RayHandle, spec: TaskSpec, log_path: str, sink: TaskSink) -> None:
    """Reads a task's events until it ends; writes its log and tells the sink."""
    ray = _ray()
    job_id = handle.generator.completed().task_id().hex()
    node = ""
    result = None
    log = StreamLog(log_path, spec.log_cap_bytes)
    try:
        for ref in handle.generator:
            event = ray.get(ref)
            kind = event["kind"]
            if kind == "started":
                node = event["node"]
                sink.started(job_id, node)
            elif kind == "output":
                log.write(event["lines"])
                if event["lines"]:
                    sink.lines(event["lines"])
                if event["rss_mb"] is not None:
                    sink.sampled(event["rss_mb"])
            elif kind == "done":
                result = TaskResult(event["value"], job_id=job_id, node=event["node"])
            elif kind == "error":
                result = TaskResult(None, f"could not start on {event['node']}: {event['value']}", job_id, event["node"])
    except ray.exceptions.TaskCancelledError:
        result = TaskResult(None, "stopped by user", job_id, node, cancelled=True)
    except ray.exceptions.RayError as exc:
        if handle.cancelled:
            result = TaskResult(None, "stopped by user", job_id, node, cancelled=True)
        else:
            result = TaskResult(None, f"worker lost{' on ' + node if node else ''}: {_first_line(exc)}", job_id, node)
    except Exception as exc:  # the experiment crashes; the other experiments of the batch go on
        result = TaskResult(None, f"executor error: {type(exc).__name__}: {_first_line(exc)}", job_id, node)
    finally:
        log.close()
        sink.finished(result or TaskResult(None, "worker lost: the task ended without a result", job_id, node))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def connect(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S, runtime_env: dict | None = None) -> None:
    """Connects this process to Ray, or raises ExecutorError within about `timeout_s` seconds.

    No address (and no RAY_ADDRESS) starts a local cluster, in the calling thread: Ray ties the
    processes it starts to the life of the thread that started them.
    """
    ray = _ray()
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    options = {"runtime_env": runtime_env, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        try:
            ray.init(address="local", **options)
        except Exception as exc:
            raise ExecutorError(f"cannot start a local Ray cluster: {_first_line(exc)}") from None
        return
    if address != "auto":
        host, port = _host_port(address)
        _probe(host, port, min(PROBE_TIMEOUT_S, timeout_s))
    outcome: dict = {}

    def init() -> None:
        try:
            ray.init(address=address, **options)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    # ray.init retries a silent address for minutes: it runs on a thread we can stop waiting for
    quiet = _NotMainThreadNote()
    logging.getLogger("ray._private.worker").addFilter(quiet)
    try:
        thread = threading.Thread(target=init, name="ray-connect", daemon=True)
        thread.start()
        thread.join(timeout_s)
    finally:
        logging.getLogger("ray._private.worker").removeFilter(quiet)
    if thread.is_alive():
        raise ExecutorError(f"Ray at {address} did not complete the connection within {timeout_s:g}s: check that "
                            f"the address is the head node's GCS address (`ray status` on the head prints it) "
                            f"and that this machine can reach every port of that node")
    if "error" in outcome:
        hint = ("start one with `ray start --head`, or leave --address out to start a local cluster"
                if address == "auto" else "check the address, or leave --address out to start a local cluster")
        raise ExecutorError(f"cannot connect to Ray at {address}: {_first_line(outcome['error'])}; {hint}") from None


class _NotMainThreadNote(logging.Filter):
    """Drops Ray's note that a connection made off the main thread sets no SIGTERM handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "not the main thread" not in record.getMessage()


def _host_port(address: str) -> tuple[str, int]:
    text = address.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"cannot read Ray address {address!r}: give HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    return host.strip("[]"), int(port)


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Raises ExecutorError unless something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except socket.timeout:
        raise ExecutorError(f"no answer from Ray at {host}:{port} within {timeout_s:g}s: check the address and "
                            f"that a firewall does not drop the connection") from None
    except OSError as exc:
        raise ExecutorError(f"no Ray cluster at {host}:{port} ({exc.strerror or exc}): start one there with "
                            f"`ray start --head --port {port}`, or check the address") from None
