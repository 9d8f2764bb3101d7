"""Reads a training script's output: the final `---` summary block and the `\\r` progress line."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .progress_line import parse_progress_line

_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:\s*(.*?)\s*$")
LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def _number(text: str):
    """Returns `text` as a float when it reads as one (NaN and inf included), else the text."""
    try:
        return float(text.replace(",", "")) if text else text
    except ValueError:
        return text


class SummaryParser:
    """Fed lines one at a time; remembers the last complete `---` block. O(1) memory."""

    def __init__(self) -> None:
        self._block: dict | None = None
        self.last: dict = {}

    def feed(self, line: str) -> None:
        """Consumes one output line."""
        stripped = line.strip()
        if stripped == "---":
            self._close()
            self._block = {}
            return
        if self._block is None:
            return
        match = _KEY_VALUE.match(line)
        if match:
            self._block[match.group(1)] = _number(match.group(2))
        elif stripped:
            self._close()

    def _close(self) -> None:
        if self._block:
            self.last = self._block
        self._block = None

    def result(self) -> dict:
        """Returns the last summary block seen (the one still open at end of output counts)."""
        self._close()
        return dict(self.last)


def parse_summary(text: str) -> dict:
    """Returns the last summary block in `text`, keys in order, numbers as floats; {} if none."""
    parser = SummaryParser()
    for line in LINE_BREAKS.split(text):
        parser.feed(line)
    return parser.result()


@dataclass
class Progress:
    """One reading of the reference progress line."""

    step: int
    percent: float | None
    loss: float | None = None
    tok_per_s: float | None = None
    remaining_s: float | None = None
    mfu: float | None = None


def parse_progress(line: str) -> Progress | None:
    """Returns the main fields of a `step 00042 (13.9%) | loss: ... | remaining: 258s` line, or None
    (every field, with units, is in `progress_line.parse_progress_line`)."""
    fields = parse_progress_line(line)
    if fields is None:
        return None
    return Progress(step=fields["step"], percent=fields["percent"], loss=fields.get("loss"),
                    tok_per_s=fields.get("tok_per_sec"), remaining_s=fields.get("remaining_s"),
                    mfu=fields.get("mfu_pct"))


def is_finite_number(value) -> bool:
    """Returns True for a real, finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
