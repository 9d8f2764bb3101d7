"""The Ray executor: each run of an experiment is one Ray task, wherever the cluster puts it.

The task asks for `num_gpus=K` (Ray then gives it its own CUDA_VISIBLE_DEVICES) and carries the
candidate's file tree, so no shared filesystem is needed. It is a generator task: output lines
come back while the run goes on and are written to the campaign's log here. The run itself is
started by `worker.run_task` in its own session, so a timeout, a cancel or the death of the Ray
worker kills the whole process group, which Ray alone would not do for grandchildren.

A run lost with its Ray worker or node (not one its own code crashed) is submitted again as the
same run, up to `lost_retries` times, wherever the cluster has room; the lost attempts travel in
the result (`TaskResult.lost_attempts`). When the head stops answering (it restarted, or
this machine lost its connection), the executor drops its connection at once (Ray would end this
process after a minute without its head), waits up to `reconnect_wait_s` for the address to
answer again, reconnects and submits the lost runs again; if it does not come back, the runs end
with ClusterLostError's message and every later submission raises it.

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
import time

from .ray_gate import GATE, shutdown_ray
from .base import ClusterLostError, Executor, ExecutorError, Handle, StreamLog, TaskResult, TaskSink, TaskSpec, note_line
from .scheduler_state import Ending, ray_ending, ray_node_alive
from .worker import stream_task

CONNECT_TIMEOUT_S = 30.0   # a dead address makes ray.init retry for minutes; we give up sooner
PROBE_TIMEOUT_S = 5.0      # TCP check of HOST:PORT before Ray is asked to connect
INSTALL_HINT = "pip install 'autoresearch-magics[ray]'"
LOST_RETRIES = 2           # default: how often a run lost with its worker or node is submitted again
NODE_DEATH_WAIT_S = 10.0   # how long the GCS may take to mark a lost run's node dead
RECONNECT_WAIT_S = 60.0    # how long a head that went away may take to come back
WAIT_SLICE_S = 0.5         # the longest a follower waits inside Ray at a time (see ray_gate)


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
    for event in stream_task(spec, context.get_task_id() or "", devices if spec.gpus else None):
        if event["kind"] == "started":  # hostnames can repeat across nodes; the node id does not
            event["node_id"] = context.get_node_id()
        yield event


class _RayHandle(Handle):
    def __init__(self, generator, generation: int) -> None:
        self.generator = generator
        self.generation = generation          # of the connection the generator belongs to
        self.cancelled = False
        self.lock = threading.Lock()          # a cancel and a resubmission do not cross

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            # A closed gate means the connection is being dropped or made again: the task goes with
            # the old connection, and a cancelled run is not submitted again.
            if not GATE.try_call():
                return
            try:  # force=False raises KeyboardInterrupt in the task: stream_task's cleanup kills the run's group
                _ray().cancel(self.generator)
            finally:
                GATE.leave()


class RayExecutor(Executor):
    """Runs experiments as Ray tasks on an existing or a local Ray cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_experiment: int = 0, cpus_per_experiment: float = 1,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, runtime_env: dict | None = None,
                 resources: dict | None = None, lost_retries: int = LOST_RETRIES,
                 reconnect_wait_s: float = RECONNECT_WAIT_S) -> None:
        if lost_retries < 0:
            raise ExecutorError("lost_retries must be 0 or more")
        self.address = address
        self.gpus_per_experiment = gpus_per_experiment
        self.cpus_per_experiment = cpus_per_experiment
        self.connect_timeout_s = connect_timeout_s
        self.runtime_env = runtime_env
        self.resources = resources or {}      # custom Ray resources each experiment asks for
        self.lost_retries = lost_retries
        self.cluster_lost: ClusterLostError | None = None   # set once the head stops answering
        self.gcs_address = address
        self.reconnect_wait_s = reconnect_wait_s
        self.generation = 0                   # connections made after a lost head
        self._reconnect_lock = threading.Lock()
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
        with GATE.exclusive():
            self._open_exclusively()

    def _open_exclusively(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            connect(self.address, self.connect_timeout_s, self.runtime_env)
            self._connected_here = True
        try:  # the head's GCS, probed when a run is lost: is it the run, or the whole cluster?
            self.gcs_address = ray.get_runtime_context().gcs_address
        except Exception:
            self.gcs_address = self.address
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_experiment > gpus:  # Ray would keep such a task pending for ever
            self.close()
            raise ExecutorError(f"each experiment asks for {self.gpus_per_experiment} GPU(s) but the Ray cluster has "
                                f"{gpus:g} in all: lower --gpus-per-experiment, or add GPU nodes to the cluster")
        # Ray's own retries would hide a lost worker from the results: `_follow` retries lost runs itself.
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
        with GATE.call():
            remote = _ray().remote(max_retries=0, num_cpus=self.cpus_per_experiment)(_warm_task)
            self._warming = [remote.remote() for _ in range(slots)]

    def close(self) -> None:
        self._warming = []
        if self._connected_here:
            shutdown_ray()
            self._connected_here = False

    def capacity(self) -> int | None:
        with GATE.call():
            resources = _ray().cluster_resources()
        if self.gpus_per_experiment:
            return math.floor(resources.get("GPU", 0) / self.gpus_per_experiment)
        return math.floor(resources.get("CPU", 0) / max(self.cpus_per_experiment, 1e-9)) or None

    def reconnect(self, seen_generation: int, cause: BaseException) -> None:
        """Called by a run that died with its cluster: reconnects (once for all such runs), or
        raises ClusterLostError when the head has not answered again within `reconnect_wait_s`."""
        ray = _ray()
        with self._reconnect_lock:
            if self.cluster_lost is not None:
                raise self.cluster_lost
            if self.generation != seen_generation:  # another run's follower reconnected already
                return
            address = self.gcs_address or self.address
            with GATE.exclusive():  # the other runs' followers wait outside Ray until it is done
                try:
                    ray.shutdown()  # at once: a driver whose head is gone for a minute is ended by Ray
                except Exception:
                    pass
                self._connected_here = False
                self._remote = None
                deadline = time.monotonic() + self.reconnect_wait_s
                while True:
                    try:
                        if ray.is_initialized():  # a connection attempt we stopped waiting for got through
                            break
                        _probe(*_host_port(address), PROBE_TIMEOUT_S)
                        time.sleep(2.0)  # a head that just came back answers TCP before its GCS serves
                        connect(address, self.connect_timeout_s, self.runtime_env)
                        break
                    except ExecutorError as exc:
                        if time.monotonic() >= deadline:
                            self.cluster_lost = ClusterLostError(
                                f"the Ray cluster at {address} went away ({_first_line(cause)}) and did not answer "
                                f"again within {self.reconnect_wait_s:g}s ({exc}); restart the head and run the loop "
                                f"again: the runs in flight are recorded from the batch journal")
                            raise self.cluster_lost from None
                    time.sleep(2.0)
                self._connected_here = True
                self.open()
                self.generation += 1

    def placement(self, spec: TaskSpec, attempt: int) -> dict:
        """Returns the Ray options (beyond CPUs and GPUs) for attempt `attempt` (1, 2...) of `spec`."""
        return {"resources": dict(self.resources)} if self.resources else {}

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        if self.cluster_lost is not None:
            raise self.cluster_lost
        if self._remote is None:
            self.open()
        handle = _RayHandle(*self._start(spec, 1))
        threading.Thread(target=_follow, args=(self, handle, spec, log_path, sink), name=spec.name,
                         daemon=True).start()
        return handle

    def _start(self, spec: TaskSpec, attempt: int):
        """Submits one attempt of `spec`; returns (its generator, the connection's generation)."""
        with self._reconnect_lock:  # not while a reconnection is under way
            generation, remote = self.generation, self._remote
        try:
            remote = remote or self.open()._remote
            with GATE.call():
                return remote.options(num_gpus=spec.gpus, name=spec.name,
                                      **self.placement(spec, attempt)).remote(spec), generation
        except Exception as exc:
            if not _cluster_unreachable(self.gcs_address):
                raise
            self.reconnect(generation, exc)
            return self._start(spec, attempt)


def _cluster_unreachable(address) -> bool:
    """True when the head's GCS no longer answers a TCP connection (False when its address is unknown)."""
    if not address or address in ("auto", "local"):
        return False
    try:
        _probe(*_host_port(address), PROBE_TIMEOUT_S)
    except ExecutorError:
        return True
    return False


def _follow(executor: RayExecutor, handle: _RayHandle, spec: TaskSpec, log_path: str, sink: TaskSink) -> None:
    """Follows a run through its attempts until one ends by itself (or retries run out); writes
    its log and tells the sink."""
    log = StreamLog(log_path, spec.log_cap_bytes)
    lost: list[str] = []
    attempt = 1
    result = None
    try:
        while True:
            result, ending = _follow_attempt(executor, handle, log, sink)
            with handle.lock:
                again = (ending is not None and ending.retry and attempt <= executor.lost_retries
                         and not handle.cancelled)
                if again:
                    lost.append(ending.reason)
                    note_line(log, sink, f"{ending.reason}; submitting the run again "
                                         f"(retry {attempt} of {executor.lost_retries})")
                    attempt += 1
                    handle.generator, handle.generation = executor._start(spec, attempt)
            if not again:
                break
    except ClusterLostError as exc:  # no verdict on the idea; later submissions raise the same error
        executor.cluster_lost = exc
        result = TaskResult(None, str(exc), lost=True, scheduler_reason="ray cluster lost")
    except Exception as exc:  # the experiment crashes; the other experiments of the batch go on
        result = TaskResult(None, f"executor error: {_first_line(exc)}")
    finally:
        log.close()
        if result is None:
            result = TaskResult(None, "worker lost: the task ended without a result", lost=True)
        result.lost_attempts = list(lost)
        sink.finished(result)


def _follow_attempt(executor: RayExecutor, handle: _RayHandle, log: StreamLog, sink: TaskSink):
    """Reads one attempt's events until it ends; returns its TaskResult and, when Ray lost
    it, the Ending (None otherwise)."""
    ray = _ray()
    generator = handle.generator
    job_id = generator.completed().task_id().hex()
    node = node_id = ""
    try:
        while True:
            event = _next_event(executor, handle)
            if event is None:
                continue
            kind = event["kind"]
            if kind == "started":
                node, node_id = event["node"], event.get("node_id", "")
                sink.started(job_id, node)
            elif kind == "output":
                log.write(event["lines"])
                if event["lines"]:
                    sink.lines(event["lines"])
                if event["rss_mb"] is not None:
                    sink.sampled(event["rss_mb"])
            elif kind == "done":
                return TaskResult(event["value"], job_id=job_id, node=event["node"]), None
            elif kind == "error":
                return TaskResult(None, f"could not start on {event['node']}: {event['value']}",
                                         job_id, event["node"]), None
            elif kind == "ended":
                break
    except ray.exceptions.TaskCancelledError:
        return TaskResult(None, "stopped by user", job_id, node, cancelled=True), None
    except Exception as exc:
        if handle.cancelled:
            return TaskResult(None, "stopped by user", job_id, node, cancelled=True), None
        if (handle.generation != executor.generation or executor._reconnect_lock.locked()
                or _cluster_unreachable(executor.gcs_address)):  # the head, not the run's node
            executor.reconnect(handle.generation, exc)
            ending = Ending(f"ray cluster lost: the head at {executor.gcs_address} went away mid-run "
                            f"({_first_line(exc)})", "ray cluster lost", True, True)
        elif isinstance(exc, ray.exceptions.RayError):
            ending = ray_ending(exc, node_id, _node_alive(node_id, exc))
        else:
            raise
        return TaskResult(None, ending.reason, job_id, node, lost=ending.lost,
                                 scheduler_reason=ending.scheduler_reason), ending
    return TaskResult(None, "worker lost: the task ended without a result", job_id, node,
                             lost=True, scheduler_reason="no result from ray"), None


class _ConnectionRenewed(Exception):
    """The run's task belongs to a connection to Ray that was dropped and made again."""


def _next_event(executor: RayExecutor, handle: _RayHandle) -> dict | None:
    """Returns the run's next event, None when none came within WAIT_SLICE_S, or an "ended" event
    when its stream ended; raises _ConnectionRenewed when its connection is gone."""
    ray = _ray()
    with GATE.call():
        if handle.generation != executor.generation or not ray.is_initialized():
            raise _ConnectionRenewed("the connection to the Ray cluster was dropped while the run went on")
        ready, _ = ray.wait([handle.generator], timeout=WAIT_SLICE_S)
        if not ready:
            return None
        ref = next(handle.generator, None)
        return {"kind": "ended"} if ref is None else ray.get(ref)


def _node_alive(node_id: str, exc: BaseException) -> bool | None:
    """Returns whether the run's node is still alive, giving the GCS a few seconds to notice a death."""
    if not node_id or isinstance(exc, _ray().exceptions.NodeDiedError):
        return False if node_id else None
    deadline = time.monotonic() + NODE_DEATH_WAIT_S
    while True:
        with GATE.call():
            alive = ray_node_alive(node_id)
        if alive is not True or time.monotonic() >= deadline:
            return alive
        time.sleep(1.0)


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
