"""The widget traffic limit: bursts are merged, the budget holds, the latest state arrives."""
from __future__ import annotations

import time

import ipywidgets

from autoresearch_magics.presentation.throttle import TraitBatcher


def test_bursts_stay_within_ten_messages_a_second_and_end_in_the_latest_state(monkeypatch):
    sent = []
    original = ipywidgets.Widget._send
    monkeypatch.setattr(ipywidgets.Widget, "_send",
                        lambda self, msg, buffers=None: (sent.append(time.monotonic()), original(self, msg, buffers)))
    batch = TraitBatcher(limit=10)
    boxes = [ipywidgets.HTML() for _ in range(4)]
    for i in range(60):
        with batch.hold():
            for box in boxes:
                batch.set(box, value=f"v{i}")
                batch.set(box, value=f"{i}")   # set twice, sent once
        time.sleep(0.02)
    batch.flush(wait=True)
    assert [box.value for box in boxes] == ["59"] * 4
    assert max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent) <= 10
    assert batch.messages == len(sent) < 60 * 4


def test_unchanged_values_send_nothing():
    box = ipywidgets.HTML(value="same")
    batch = TraitBatcher()
    batch.set(box, value="same")
    assert batch.messages == 0
