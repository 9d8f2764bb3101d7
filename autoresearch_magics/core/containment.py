"""Keeping every process of a run inside the run: the shepherd's command line, the run's marker,
and ending processes, by process tree or by marker.

Each run has a run id. The runner puts it in the environment of the shepherd (see shepherd.py) as
AUTORESEARCH_RUN_ID, every process of the run inherits it, and `kill_run` finds them again by
reading it back from /proc/<pid>/environ: the last resort when the shepherd itself was killed
(kill -9 of its whole session, an OOM kill), e.g. for recovery after a runner died.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

import psutil

RUN_ID_ENV = "AUTORESEARCH_RUN_ID"
SHEPHERD = Path(__file__).with_name("shepherd.py")
GRACE_S = 5.0            # between SIGTERM and SIGKILL
LEFTOVER_GRACE_S = 0.5   # for processes still running when the command itself has exited
WAIT_EVERY_S = 0.02
KILL_ROUNDS = 3          # a process stuck in the kernel may outlive one SIGKILL for a while


def new_run_id() -> str:
    """Returns a fresh, unique run id."""
    return uuid.uuid4().hex


def attempt_run_id(run_id: str) -> str:
    """Returns the marker of one attempt of run `run_id`: a run submitted again (its worker or node
    was lost) must not be ended by what cleans up after the lost attempt, while `kill_run(run_id)`
    still finds every attempt."""
    return f"{run_id}.{uuid.uuid4().hex[:8]}"


def _of_run(marker: str | None, run_id: str) -> bool:
    return marker is not None and (marker == run_id or marker.startswith(run_id + "."))


def shepherd_command(command: str, grace_s: float = GRACE_S) -> list[str]:
    """Returns the argv that runs `command` under a shepherd watching this process."""
    # -I -S: the shepherd uses the standard library only; skipping site-packages saves start-up time
    return [sys.executable or "python3", "-I", "-S", str(SHEPHERD), str(os.getpid()), str(grace_s),
            str(LEFTOVER_GRACE_S), command]


def run_processes(run_id: str) -> list[psutil.Process]:
    """Returns the live processes carrying run `run_id`'s marker, or that of one of its attempts (other
    users' processes, whose environment cannot be read, are not among them)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if _of_run(proc.environ().get(RUN_ID_ENV), run_id) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_run(run_id: str, grace_s: float = GRACE_S) -> int:
    """Ends every process of run `run_id` left anywhere on this machine: SIGTERM, then SIGKILL to
    what is still alive after `grace_s`; returns how many processes carried the marker."""
    if not run_id:
        return 0
    procs = run_processes(run_id)
    _send(procs, signal.SIGTERM)
    _send(procs, signal.SIGCONT)  # a stopped process acts on TERM only once continued
    _wait_gone(procs, grace_s)
    killed = {p.pid for p in procs}
    for _ in range(KILL_ROUNDS):  # again each time: a process may have forked meanwhile
        survivors = run_processes(run_id)
        if not survivors:
            break
        _send(survivors, signal.SIGKILL)
        _wait_gone(survivors, grace_s)
        killed.update(p.pid for p in survivors)
    return len(killed)


def kill_process_tree(pid: int, grace_s: float = GRACE_S, reap: Callable[[], object] | None = None) -> None:
    """Sends SIGTERM to the process group `pid` and its descendants, then SIGKILL after `grace_s`.

    `pid` is normally a shepherd, which on TERM ends its own tree (orphans included); the direct
    signals are for what it cannot reach. `reap` collects our own child's exit status. Zombies
    count as gone: in a container the reaper of orphaned grandchildren may be slow.
    """
    members = _tree(pid)
    _signal_group(pid, signal.SIGTERM)
    _send(members, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not any(_alive(p) for p in members):
            return
        time.sleep(WAIT_EVERY_S)
    members = {*members, *_tree(pid)}  # and what was born during the grace
    _signal_group(pid, signal.SIGKILL)
    _send(members, signal.SIGKILL)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _send(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)  # psutil checks the pid still names the same process
        except psutil.Error:
            pass


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(WAIT_EVERY_S)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
