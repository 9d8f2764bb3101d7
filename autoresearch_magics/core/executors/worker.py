"""The worker side of a task, the same under every executor: materialise the shipped file tree
in a temporary folder, point the data folder at a per-node cache, run the command with
`core.runner` (own session, hard timeout, log cap). The runner's shepherd owns every process of
the run and ends them when the process that started it dies. On a cluster worker a watchdog
outside the worker's children backs it up: Ray SIGKILLs a dying worker's children, the shepherd
among them, which leaves the run's orphans to the machine's init.

`stream_task` is the body of a Ray task: it yields the run's events in small batches, so the
driver's live panel and log file follow the run while it goes on.
"""
from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from ..config import ENV_DATA_DIR
from ..containment import RUN_ID_ENV, attempt_run_id
from ..runner import RunListener, RunOutcome, RunSpec, run
from .base import TaskSpec

FLUSH_S = 0.1            # how long output lines may wait on the worker before they are sent
WATCH_EVERY_S = 0.2      # how often the watchdog checks the worker and the shepherd
SETTLE_S = 1.0           # after the shepherd is gone: how often the watchdog looks for what is left

# The watchdog, double-forked so that no clean-up of the worker's children reaches it. When the
# worker dies, it ends every process that carries the run's marker; once the shepherd is gone and
# no process carries the marker, the run is over and the watchdog leaves.
WATCHDOG = r"""
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
owner, shepherd, run_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
every, settle = float(sys.argv[4]), float(sys.argv[5])
marker = f"AUTORESEARCH_RUN_ID={run_id}".encode() + b"\0"
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
def marked_left():
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if marker in fh.read() + b"\0" and alive(int(name)):
                        return True
            except OSError:
                pass
    return False
while alive(owner):
    # the shepherd gone and nothing of the run left: the run is over
    if not alive(shepherd) and not marked_left():
        sys.exit(0)
    time.sleep(every if alive(shepherd) else settle)
from autoresearch_magics.core.containment import kill_run
kill_run(run_id)
"""
def cache_root() -> Path:
    """Returns this machine's cache folder (AUTORESEARCH_CACHE_DIR, else XDG, else ~/.cache)."""
    if os.environ.get("AUTORESEARCH_CACHE_DIR"):
        return Path(os.environ["AUTORESEARCH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autoresearch"


def node_data_dir(spec: TaskSpec) -> str:
    """Returns the data folder a run uses: the campaign's own when this machine sees it (the same
    machine, a shared filesystem), else a per-node cache kept between runs, so data is prepared
    once per node."""
    if spec.data_dir and os.path.isdir(spec.data_dir) and os.access(spec.data_dir, os.W_OK):
        return spec.data_dir
    folder = cache_root() / "data" / spec.tag
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def materialise(spec: TaskSpec, root: Path) -> None:
    """Writes the shipped file tree under `root`."""
    for rel, content in spec.files.items():
        target = root / rel
        if root.resolve() not in target.resolve().parents:
            raise ValueError(f"refusing a path outside the work folder: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if rel in spec.executable:
            target.chmod(0o755)


def task_env(spec: TaskSpec, visible_devices: str | None) -> dict:
    """Returns the variables a run gets on top of the worker's environment."""
    env = dict(spec.env)
    env[ENV_DATA_DIR] = node_data_dir(spec)
    # `python` in the command means the worker's interpreter (in a kernel, too, whose PATH may lack its venv)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    if spec.gpus is None:
        pass                              # the devices this process sees
    elif spec.gpus <= 0:
        env["CUDA_VISIBLE_DEVICES"] = ""  # no device, rather than every device of the node
    elif visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_devices
    return env


class _Watched(RunListener):
    """Forwards runner callbacks and starts the watchdog once the shepherd exists."""

    def __init__(self, inner: RunListener, run_id: str) -> None:
        self.inner, self.run_id = inner, run_id
        self.watchdog: subprocess.Popen | None = None

    def started(self, pid: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != RUN_ID_ENV}   # the watchdog is no part of the run
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(pid), self.run_id, str(WATCH_EVERY_S),
             str(SETTLE_S)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.inner.started(pid)

    def lines(self, lines: list[str]) -> None:
        self.inner.lines(lines)

    def sampled(self, rss_mb: float) -> None:
        self.inner.sampled(rss_mb)


def run_task(spec: TaskSpec, listener: RunListener, should_stop: Callable[[], bool],
             log_path: str | None = None, visible_devices: str | None = None,
             watchdog: bool = False) -> RunOutcome:
    """Runs `spec` in its workdir, else in a fresh temporary folder holding its files; returns the
    runner's outcome. `watchdog`: on a cluster worker, whose death may take the shepherd with it."""
    work = Path(tempfile.mkdtemp(prefix=f"{spec.name}-"))
    run_id = attempt_run_id(spec.run_id)   # this attempt's own marker: a retry is no part of a lost attempt
    if watchdog:
        listener = _Watched(listener, run_id)
    try:
        tree = Path(spec.workdir) if spec.workdir else work / "tree"
        if not spec.workdir:
            materialise(spec, tree)
        outcome = run(RunSpec(command=spec.command, cwd=str(tree), log_path=log_path or str(work / "run.log"),
                              env=task_env(spec, visible_devices), timeout_s=spec.timeout_s,
                              startup_timeout_s=spec.startup_timeout_s, log_cap_bytes=spec.log_cap_bytes, run_id=run_id), listener, should_stop)
    finally:
        if isinstance(listener, _Watched) and listener.watchdog is not None:
            listener.watchdog.wait()   # its first half exits at once; the detached half watches on
        shutil.rmtree(work, ignore_errors=True)
    return outcome


class _Queued(RunListener):
    def __init__(self, events: queue.Queue) -> None:
        self.events = events

    def started(self, pid):
        self.events.put(("started", pid))

    def lines(self, lines):
        self.events.put(("lines", lines))

    def sampled(self, rss_mb):
        self.events.put(("rss", rss_mb))


def stream_task(spec: TaskSpec, job_id: str, visible_devices: str | None = None) -> Iterator[dict]:
    """Runs `spec` and yields its events as dicts: `started` (job id, node, pid), `output`
    (lines, rss), then one `done` (the RunOutcome) or `error` (why the run could not start).

    Closing the generator (a cancelled task) stops the run and kills its process group.
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            events.put(("done", run_task(spec, _Queued(events), stop.is_set, visible_devices=visible_devices,
                                         watchdog=True)))
        except BaseException as exc:  # reported to the driver, which records a crash with this reason
            events.put(("error", f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=work, name=spec.name, daemon=True)
    thread.start()
    node = socket.gethostname()
    lines: list[str] = []
    rss = None
    sent_output = False
    last_sent = time.monotonic()
    try:
        while True:
            try:
                kind, payload = events.get(timeout=FLUSH_S)
            except queue.Empty:
                kind, payload = None, None
            if kind == "started":
                yield {"kind": "started", "job_id": job_id, "node": node, "pid": payload, "worker_pid": os.getpid()}
            elif kind == "lines":
                lines.extend(payload)
            elif kind == "rss":
                rss = payload
            due = not sent_output or time.monotonic() - last_sent >= FLUSH_S  # the first line goes at once
            if (lines or rss is not None) and (due or kind in ("done", "error")):
                yield {"kind": "output", "lines": lines, "rss_mb": rss}
                lines, rss, sent_output, last_sent = [], None, sent_output or bool(lines), time.monotonic()
            if kind in ("done", "error"):
                yield {"kind": kind, "node": node, "value": payload}
                return
    finally:
        stop.set()
        thread.join()
