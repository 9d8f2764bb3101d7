"""One gate for this process's calls into Ray, so that no thread is inside Ray when it shuts down.

Ray keeps one connection per process. A thread still waiting inside Ray (`ray.wait`, the next
item of a streaming generator) when `ray.shutdown` runs can crash the whole process with a
segfault, at once or at the next `ray.init` (ray-project/ray#31145): it reads state the shutdown
freed. So every call we make into Ray passes through `GATE.call()` and lasts a bounded time
(waits are sliced), and every shutdown or (re)connection goes through `GATE.exclusive()`, which
lets no new call in and waits for the calls inside to come out first.

The thread holding the gate exclusively may still make calls itself (a reconnection opens the
executor again); other threads wait at the gate until it opens.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator


class RayGate:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._inside: dict[int, int] = {}     # thread id -> depth of its calls in progress
        self._holder: int | None = None       # the thread that has the gate to itself
        self._holder_depth = 0

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Around one bounded call into Ray: waits while another thread has the gate to itself."""
        me = threading.get_ident()
        with self._changed:
            self._changed.wait_for(lambda: self._holder in (None, me))
            self._inside[me] = self._inside.get(me, 0) + 1
        try:
            yield
        finally:
            self._leave(me)

    def try_call(self) -> bool:
        """Enters like `call` when the gate is open now; returns False (and does not enter) otherwise.
        A True must be paired with `leave()`."""
        me = threading.get_ident()
        with self._changed:
            if self._holder not in (None, me):
                return False
            self._inside[me] = self._inside.get(me, 0) + 1
            return True

    def leave(self) -> None:
        self._leave(threading.get_ident())

    def _leave(self, me: int) -> None:
        with self._changed:
            depth = self._inside.pop(me) - 1
            if depth:
                self._inside[me] = depth
            self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Around a shutdown or a (re)connection: no other thread is inside Ray until it ends."""
        me = threading.get_ident()
        with self._changed:
            self._changed.wait_for(lambda: self._holder in (None, me))
            self._holder = me
            self._holder_depth += 1
            self._changed.wait_for(lambda: not any(t != me for t in self._inside))
        try:
            yield
        finally:
            with self._changed:
                self._holder_depth -= 1
                if not self._holder_depth:
                    self._holder = None
                self._changed.notify_all()


GATE = RayGate()


def shutdown_ray() -> None:
    """Disconnects this process from Ray once no thread of ours is inside it."""
    import ray
    with GATE.exclusive():
        ray.shutdown()
