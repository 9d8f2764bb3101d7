"""A traffic limit for a group of widgets: trait changes are coalesced and sent as at most
`limit` messages in any one-second window (one message per changed widget per flush).

Changes made under `hold()` travel together when it ends. Changes beyond the budget are merged
and sent by a timer once the window allows, so the latest state always arrives; `flush(wait=True)`
sends what is pending before returning (a job's end, so a waiting cell sees the final state).
Safe to call from any thread.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager

LIMIT_PER_S = 10         # widget messages in any one-second window


class TraitBatcher:
    """Coalesces trait changes and sends them within a message budget."""

    def __init__(self, limit: int = LIMIT_PER_S) -> None:
        self.limit = limit
        self.messages = 0                                  # sent so far
        self._pending: dict = {}                           # widget -> {trait: value}
        self._sent: deque[float] = deque()                 # send times within the last second
        self._held = 0
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    @contextmanager
    def hold(self):
        """Collects the changes made inside, and sends them together at the end."""
        with self._lock:
            self._held += 1
        try:
            yield self
        finally:
            with self._lock:
                self._held -= 1
            self.flush()

    def set(self, widget, **traits) -> None:
        """Records new trait values; they are sent now if the budget allows, else soon."""
        with self._lock:
            self._pending.setdefault(widget, {}).update(traits)
            if self._held:
                return
        self.flush()

    def value(self, widget, name: str):
        """Returns the trait's latest value, sent or not."""
        with self._lock:
            return self._pending.get(widget, {}).get(name, getattr(widget, name))

    def flush(self, wait: bool = False) -> None:
        """Sends pending changes if the budget allows (or, with `wait`, once it does)."""
        while True:
            with self._lock:
                changes = self._changes()
                if not changes:
                    return
                delay = self._delay(len(changes))
                if delay <= 0:
                    self._send(changes)
                    return
                if not wait:
                    self._arm(delay)
                    return
            time.sleep(delay)

    def _changes(self) -> dict:
        changes = {}
        for widget, traits in self._pending.items():
            changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
            if changed:
                changes[widget] = changed
        if not changes:
            self._pending.clear()
        return changes

    def _delay(self, needed: int) -> float:
        """Returns seconds until `needed` messages fit in the budget (0: now)."""
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()
        wait = 0.0
        excess = len(self._sent) + needed - self.limit
        if excess > 0 and self._sent:  # wait until enough of the last second's messages age out
            wait = max(wait, self._sent[min(excess, len(self._sent)) - 1] + 1.0 - now)
        return max(wait, 0.0)

    def _send(self, changes: dict) -> None:
        now = time.monotonic()
        for widget, traits in changes.items():
            with widget.hold_sync():
                for key, value in traits.items():
                    setattr(widget, key, value)
            self._sent.append(now)
            self.messages += 1
        self._pending.clear()

    def _arm(self, delay: float) -> None:
        if self._timer is not None and self._timer.is_alive() and self._timer is not threading.current_thread():
            return
        self._timer = threading.Timer(delay + 0.01, self.flush)
        self._timer.daemon = True
        self._timer.start()
