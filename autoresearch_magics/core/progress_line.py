"""Reads one progress line of a training script into numbers.

A progress line starts with `step N` (or `iter N`), optionally followed by `(P%)`, then any
number of `key: value` (or `key=value`) fields, e.g. the reference script's

    step 00042 (13.9%) | loss: 3.141593 | lrm: 1.00 | dt: 512ms | tok/sec: 1,024,000 | mfu: 39.8% | epoch: 1 | remaining: 258s

Only numeric fields are kept. Thousands separators are dropped. A time unit (us, ms, s, min, h)
converts the value to seconds and the field gets a `_s` suffix (`dt: 512ms` -> `dt_s: 0.512`,
`remaining: 258s` -> `remaining_s: 258.0`); a percent keeps its number and gets `_pct`
(`mfu: 39.8%` -> `mfu_pct: 39.8`). Other characters that cannot be in a column name become `_`,
with `/` read as "per" (`tok/sec` -> `tok_per_sec`). A number cut off by the end of the output
(`loss: 3.`) is not read.
"""
from __future__ import annotations

import re

_HEAD = re.compile(r"^\s*(?:step|iter)\b[\s:=#]*(\d+)(?:\s*/\s*\d+)?\s*(?:\(\s*([-+]?\d+(?:\.\d+)?)\s*%\s*\))?",
                   re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+|[-+]?(?:nan|inf)"
_FIELD = re.compile(r"(?<![\w/.])([A-Za-z_][\w/.\-]*)\s*[:=]\s*(" + _NUMBER + r")\s*(us|µs|ms|s|min|h|%)?(?![\w.])",
                    re.IGNORECASE)
_SECONDS_PER = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
RESERVED = ("experiment", "run", "step", "percent", "progress", "wall_s")  # a line's own training_seconds is kept


def field_name(key: str, unit: str | None) -> str:
    """Returns the column name of field `key` printed with `unit`."""
    name = re.sub(r"\W+", "_", key.replace("/", "_per_")).strip("_").lower() or "value"
    if unit == "%":
        return name if name.endswith("_pct") else f"{name}_pct"
    if unit:
        return name if name.endswith("_s") else f"{name}_s"
    return name


def is_progress_line(line: str) -> bool:
    """Returns True when `line` starts like a progress line (cheap: no field is read)."""
    return _HEAD.match(line) is not None


def parse_progress_line(line: str) -> dict | None:
    """Returns {"step": int, "percent": float | None, <field>: float, ...} for a progress line, else None."""
    head = _HEAD.match(line)
    if head is None:
        return None
    point: dict = {"step": int(head.group(1)),
                   "percent": float(head.group(2)) if head.group(2) is not None else None}
    for key, raw, unit in _FIELD.findall(line, head.end()):
        unit = unit.lower() if unit else None
        value = float(raw.replace(",", ""))
        if unit and unit != "%":
            value *= _SECONDS_PER[unit]
        name = field_name(key, unit)
        if name not in RESERVED:
            point[name] = value
    return point
