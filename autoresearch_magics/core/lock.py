"""One runner per campaign: a file lock plus a note saying who holds it."""
from __future__ import annotations

import json
import os
import socket
import sys
import time

import filelock

from .errors import CampaignBusy
from .paths import CampaignPaths
from .validation import check_writable


class RunnerLock:
    """Held while experiments run; a second holder gets CampaignBusy naming the first."""

    def __init__(self, paths: CampaignPaths) -> None:
        self.paths = paths
        paths.state.mkdir(parents=True, exist_ok=True)
        # thread_local=False: a kernel's worker thread may release what the main thread took.
        self._lock = filelock.FileLock(str(paths.lock), thread_local=False)

    def acquire(self, purpose: str = "run") -> None:
        """Takes the lock or raises CampaignBusy."""
        check_writable(self.paths.root)  # a read-only folder: one line naming the fix, not a traceback
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise CampaignBusy(self._busy_message()) from None
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "purpose": purpose, "argv": " ".join(sys.argv)[:200]}
        tmp = self.paths.owner.with_suffix(".tmp")
        tmp.write_text(json.dumps(note))
        os.replace(tmp, self.paths.owner)

    def release(self) -> None:
        """Gives the lock back."""
        if self._lock.is_locked:
            self.paths.owner.unlink(missing_ok=True)
            self._lock.release()

    @property
    def held(self) -> bool:
        """Returns True while this object holds the lock."""
        return self._lock.is_locked

    def _busy_message(self) -> str:
        try:
            note = json.loads(self.paths.owner.read_text())
            who = f"process {note['pid']} on {note['host']} ({note['purpose']}: {note['argv']})"
        except (OSError, ValueError, KeyError):
            who = "another process"
        return (f"campaign {self.paths.root} is busy: {who} is running its experiments. "
                f"Wait for it, or stop it with `autoresearch stop {self.paths.root}` "
                f"(`%autoresearch stop` in its notebook).")

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
