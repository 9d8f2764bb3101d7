"""The process between the runner and a training command: every process the command starts ends with it.

Run as `python -I -S shepherd.py RUNNER_PID STOP_GRACE_S LEFTOVER_GRACE_S COMMAND` (standard library
only, so it starts in a few milliseconds). It

- makes itself a child subreaper, so that orphans of the run (a double-forked daemon, a `setsid`
  child whose parent exited) are re-parented to it instead of to init and stay in its tree;
- asks the kernel to send it SIGTERM when the runner dies (kill -9 of a kernel or CLI included);
- runs COMMAND with /bin/sh in its own process group (the runner started it in a new session),
  reaping orphans as they come;
- when the command exits, or on SIGTERM/SIGINT/SIGHUP (a stop, a timeout, the runner's death),
  sends TERM to every descendant, KILL after the grace, reaps them all, and exits with the
  command's own status (dying of the same signal if the command died of one).

It never prints: its stdout and stderr are the run's output pipe, which it holds until its tree is
gone, so the runner sees the end of the output only once nothing of the run is left.
"""
from __future__ import annotations

import os
import select
import sys
import time

import _signal as signal  # the C core of `signal`, whose enum wrappers would triple the start-up time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
WATCHED = (signal.SIGCHLD, *STOP_SIGNALS)
KILL_EVERY_S = 0.01      # how often survivors of the grace get KILL until none is left
PARENT_CHECK_S = 0.5     # only where the kernel cannot signal the runner's death


def prctl(option: int, value: int) -> bool:
    """Returns True when the Linux prctl call succeeded (False elsewhere)."""
    try:
        return _libc_function("prctl")(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError, ImportError):
        return False


def _libc_function(name: str):
    """Returns a libc function taking and returning C ints. Built on _ctypes, the C core of
    ctypes: importing ctypes itself costs several times more than the rest of this start-up."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = Int

        class Libc:
            _handle = _ctypes.dlopen(None)

        return Function((name, Libc))
    except (ImportError, AttributeError, TypeError):
        import ctypes
        return getattr(ctypes.CDLL(None), name)


class Signals:
    """SIGCHLD and the stop signals, read from a pipe: their handlers do nothing, so no signal
    can interrupt the clean-up half-way, and one arriving just before a wait still ends it."""

    def __init__(self) -> None:
        self.read_end, write_end = os.pipe()
        for fd in (self.read_end, write_end):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for sig in WATCHED:
            signal.signal(sig, lambda signum, frame: None)

    def wait(self, timeout_s: float | None) -> list[int]:
        """Returns the signals that arrived, waiting up to `timeout_s` for one (None: for ever)."""
        select.select([self.read_end], [], [], timeout_s)
        try:
            return list(os.read(self.read_end, 512))
        except BlockingIOError:
            return []


def spawn(command: str) -> int:
    """Starts `/bin/sh -c command` as our child; returns its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)  # the pipe is the shepherd's, not the command's
            # exec keeps ignored signals ignored: give the command the defaults
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.execv("/bin/sh", ["/bin/sh", "-c", command])
        except OSError as exc:
            os.write(2, f"autoresearch: cannot start /bin/sh: {exc}\n".encode())
        finally:
            os._exit(127)
    return pid


def descendants() -> list[int]:
    """Returns the pids of every process below this one, read from /proc (empty without /proc)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def signal_descendants(sig: int) -> None:
    for pid in descendants():
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    if not os.path.isdir("/proc") and sig != signal.SIGKILL:
        try:  # no /proc to walk: the process group is what we can reach (our own TERM is blocked)
            os.killpg(os.getpgrp(), sig)
        except OSError:
            pass


class Reaper:
    """Collects exited children, keeping the command's own status when it comes by."""

    def __init__(self) -> None:
        self.command: int | None = None
        self.status: int | None = None

    def reap_exited(self) -> bool:
        """Reaps every child that has exited; returns True while some child is still running."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.command:
                self.status = status

    def wait_for_command(self, signals: Signals, runner: int, check_s: float | None) -> int | None:
        """Reaps re-parented orphans until the command exits (returns None) or a stop signal
        comes (returns it). With `check_s`, checks that often that the runner is alive."""
        while True:
            self.reap_exited()
            if self.status is not None:
                return None
            arrived = signals.wait(check_s)
            for sig in arrived:
                if sig in STOP_SIGNALS:
                    return sig
            if check_s is not None and not arrived and os.getppid() != runner:
                return signal.SIGTERM


def end_descendants(reaper: Reaper, signals: Signals, grace_s: float) -> None:
    """TERM to every descendant, KILL after `grace_s`, until none is left: as a subreaper, any
    live descendant keeps one of our children alive, so "no child left" means "nothing left"."""
    if not reaper.reap_exited():
        return
    signal_descendants(signal.SIGTERM)
    signal_descendants(signal.SIGCONT)  # a stopped process acts on TERM only once continued
    deadline = time.monotonic() + grace_s
    while reaper.reap_exited():
        left = deadline - time.monotonic()
        if left <= 0:
            signal_descendants(signal.SIGKILL)
            left = KILL_EVERY_S
        signals.wait(left)  # a SIGCHLD ends the wait early


def exit_like(status: int | None, fallback: int) -> None:
    """Exits with the command's exit code, or dies of the signal that killed it."""
    if status is None:
        os._exit(fallback)
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = os.WTERMSIG(status)
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's crash, not ours: no second core file
        signal.signal(sig, signal.SIG_DFL)
    except (ImportError, OSError, ValueError):
        pass
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


def main(argv: list[str]) -> None:
    runner, stop_grace_s, leftover_grace_s, command = int(argv[1]), float(argv[2]), float(argv[3]), argv[4]
    signals, reaper = Signals(), Reaper()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    check_s = None if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) else PARENT_CHECK_S
    if os.getppid() != runner:  # the runner died before we asked to hear of it
        stop = signal.SIGTERM
    else:
        reaper.command = spawn(command)
        stop = reaper.wait_for_command(signals, runner, check_s)
    end_descendants(reaper, signals, leftover_grace_s if stop is None else stop_grace_s)
    exit_like(reaper.status, 128 + (stop or signal.SIGTERM))


if __name__ == "__main__":
    main(sys.argv)
