"""One runner per campaign: a file lock plus a note saying who holds it.

Take it with `with campaign.lock.holding("loop"):`; a holder may take it again (a loop's own
experiment), and it is given back when the outermost block ends.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time

import filelock

from .errors import CampaignBusy
from .paths import CampaignPaths
from .validation import check_writable


class RunnerLock:
    """Held while experiments run; a second holder gets CampaignBusy naming the first."""

    def __init__(self, paths: CampaignPaths) -> None:
        self.paths = paths
        # thread_local=False: a kernel's worker thread may release what the main thread took.
        self._lock = filelock.FileLock(str(paths.lock), thread_local=False)
        self._depth = 0
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def holding(self, purpose: str = "run"):
        """Holds the lock for the block (re-entrant in this object); raises CampaignBusy naming the holder."""
        with self._guard:
            if self._depth == 0:
                self._take(purpose)
            self._depth += 1
        try:
            yield self
        finally:
            with self._guard:
                self._depth -= 1
                if self._depth == 0:
                    self._give_back()

    @property
    def held(self) -> bool:
        """Returns True while this object holds the lock."""
        return self._lock.is_locked

    def _take(self, purpose: str) -> None:
        check_writable(self.paths.root)  # a read-only folder: one line naming the fix, not a traceback
        self.paths.state.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise CampaignBusy(self._busy_message()) from None
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "purpose": purpose, "argv": " ".join(sys.argv)[:200]}
        tmp = self.paths.owner.with_suffix(".tmp")
        tmp.write_text(json.dumps(note))
        os.replace(tmp, self.paths.owner)

    def _give_back(self) -> None:
        if self._lock.is_locked:
            self.paths.owner.unlink(missing_ok=True)
            self._lock.release()

    def _busy_message(self) -> str:
        try:
            note = json.loads(self.paths.owner.read_text())
            who = f"process {note['pid']} on {note['host']} ({note['purpose']}: {note['argv']})"
        except (OSError, ValueError, KeyError):
            who = "another process"
        return (f"campaign {self.paths.root} is busy: {who} is running its experiments. "
                f"Wait for it, or stop it with `autoresearch stop -C {self.paths.root}` "
                f"(`%autoresearch stop` in its notebook).")
