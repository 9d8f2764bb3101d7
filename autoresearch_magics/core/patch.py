"""`%%experiment --patch`: apply a unified diff (from `git diff` or `diff -u`) to one file's text.

Hunks are matched by their context and removed lines, first at the line the header names and
otherwise at the nearest place they fit, so a patch written against a slightly older train.py
still applies when its context is intact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import CampaignError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(CampaignError):
    """The patch does not apply; the message names the hunk."""


@dataclass
class Hunk:
    """One `@@` block: the lines it expects (context and removed) and what replaces them."""

    header: str
    old_start: int
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


def parse_patch(patch: str, path: str) -> list[Hunk]:
    """Returns the hunks of a unified diff of `path`; raises PatchError for another file or no hunks."""
    hunks: list[Hunk] = []
    for line in patch.splitlines():
        if line.startswith("+++ "):
            target = line[4:].split("\t")[0].strip()
            if target != "/dev/null" and target.split("/")[-1] != path.split("/")[-1]:
                raise PatchError(f"the patch changes {target}; an experiment's patch may only change {path}")
            continue
        if line.startswith(("--- ", "diff ", "index ", "\\")):
            continue
        match = _HUNK.match(line)
        if match:
            start, count = int(match.group(1)), match.group(2)
            # "-5,0" inserts after line 5; "-5,3" replaces from line 5
            hunks.append(Hunk(line, start if count == "0" else start - 1))
        elif hunks:
            tag, body = (line[0], line[1:]) if line else (" ", "")  # editors strip a blank context line
            if tag in " -":
                hunks[-1].old.append(body)
            if tag in " +":
                hunks[-1].new.append(body)
            if tag not in " -+":
                raise PatchError(f"line {line[:60]!r} of the patch is neither context (' '), removed ('-') "
                                 f"nor added ('+'): paste the diff as `git diff` prints it")
    if not hunks:
        raise PatchError("the cell holds no hunk (lines starting with @@): paste the output of `git diff` "
                         "or `diff -u`, or drop --patch to give the whole file")
    return hunks


def apply_patch(text: str, patch: str, path: str = "train.py") -> str:
    """Returns `text` with the unified diff `patch` applied; raises PatchError when a hunk does not fit."""
    lines = text.splitlines()
    out: list[str] = []
    pos = 0
    for hunk in parse_patch(patch, path):
        start = _locate(lines, hunk.old, hunk.old_start, pos)
        if start is None:
            expected = "\n".join(hunk.old[:6]) or "(an insertion)"
            raise PatchError(f"hunk {hunk.header} does not apply to the current {path}: its lines\n{expected}\n"
                             f"are not there. Diff against the best train.py (`%autoresearch edit` shows it).")
        out.extend(lines[pos:start])
        out.extend(hunk.new)
        pos = start + len(hunk.old)
    out.extend(lines[pos:])
    return "\n".join(out) + "\n"


def _locate(lines: list[str], old: list[str], hint: int, earliest: int) -> int | None:
    """Returns where `old` occurs at or after `earliest`, the occurrence nearest `hint` first."""
    if not old:
        return max(earliest, min(hint, len(lines)))
    n = len(old)
    candidates = range(earliest, len(lines) - n + 1)
    for start in sorted(candidates, key=lambda i: abs(i - hint)):
        if [l.rstrip() for l in lines[start:start + n]] == [l.rstrip() for l in old]:
            return start
    return None
