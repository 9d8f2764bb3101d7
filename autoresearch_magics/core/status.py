"""The status of a run, as results.tsv spells it."""
from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A run's status; the value is the results.tsv text, so rows and comparisons with strings agree."""

    KEEP = "keep"
    DISCARD = "discard"
    CRASH = "crash"
    PENDING = "pending"      # measured, not yet judged (never written to results.tsv)

    __str__ = str.__str__        # "keep", not "Status.KEEP", in f-strings and cells
    __format__ = str.__format__


# A crash reason the engine gives a run whose runner went away (a killed kernel, a closed terminal).
INTERRUPTED = "interrupted"
STOPPED_BY_USER = "stopped by user"
