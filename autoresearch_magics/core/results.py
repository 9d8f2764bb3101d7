"""results.tsv: the one writer and the one reader.

The first five columns are the reference format (`commit <metric> memory_gb status
description`) so existing analysis notebooks keep working; richer columns follow. A file that
was attached with only the reference columns keeps them: new rows then carry just those five,
and the full record of every run is also kept in `.autoresearch/runs.jsonl`.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

from .errors import MalformedResults

STATUSES = ("keep", "discard", "crash")
EXTRA_COLUMNS = (
    "experiment", "run", "parent", "branch", "started_at", "elapsed_min", "training_seconds",
    "peak_rss_gb", "crash_reason", "seed", "log", "command", "launcher", "job_id", "node",
    "evidence",
)


def reference_columns(metric: str) -> list[str]:
    """Returns the five reference column names for `metric`."""
    return ["commit", metric, "memory_gb", "status", "description"]


def full_columns(metric: str) -> list[str]:
    """Returns every column a new results.tsv gets."""
    return reference_columns(metric) + list(EXTRA_COLUMNS)


def _clean(value) -> str:
    """Returns a cell value with no tab or line break in it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return " ".join(str(value).split()) if any(c in str(value) for c in "\t\r\n") else str(value)


@dataclass
class ResultRow:
    """One run as results.tsv records it."""

    commit: str
    metric: float | None
    memory_gb: float
    status: str
    description: str
    extra: dict = field(default_factory=dict)

    def cells(self, metric_name: str, columns: list[str]) -> list[str]:
        """Returns this row's cells in the order of `columns`."""
        crash = self.status == "crash" or self.metric is None
        values = {
            "commit": self.commit[:7],
            metric_name: "0.000000" if crash else f"{self.metric:.6f}",
            "memory_gb": "0.0" if crash else f"{self.memory_gb:.1f}",
            "status": self.status,
            "description": self.description,
        }
        values.update({k: v for k, v in self.extra.items() if k not in values})
        return [_clean(values.get(col, "")) for col in columns]

    def record(self, metric_name: str) -> dict:
        """Returns the full JSON record of this row."""
        out = {"commit": self.commit, metric_name: self.metric, "memory_gb": self.memory_gb,
               "status": self.status, "description": self.description}
        out.update(self.extra)
        return out


class ResultsFile:
    """Reads and appends results.tsv. Reads are incremental: only appended bytes are parsed."""

    def __init__(self, path, metric: str, records_path=None) -> None:
        self.path = os.fspath(path)
        self.metric = metric
        self.records_path = os.fspath(records_path) if records_path else None
        self._header: list[str] | None = None
        self._rows: list[dict] = []
        self._offset = 0
        self._lineno = 0
        self._inode = None

    # -- reading -----------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Returns every row as a dict of column -> text (a shared list: do not mutate), validating as it goes."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._reset()
            return []
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._reset()
            self._inode = st.st_ino
        if st.st_size > self._offset:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read(st.st_size - self._offset)
            end = chunk.rfind(b"\n") + 1
            self._parse(chunk[:end].decode("utf-8", errors="replace"))
            self._offset += end
        pending = self._unterminated_row(st.st_size)
        return self._rows + pending if pending else self._rows  # shared: callers must not mutate it

    def _unterminated_row(self, size: int) -> list[dict]:
        """Returns a last line that lacks its newline (a hand-edited file) as a row, uncached."""
        if size <= self._offset or self._header is None:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            cells = fh.read().decode("utf-8", errors="replace").rstrip("\r").split("\t")
        if len(cells) < 5:
            return []
        self._lineno += 1
        try:
            return [self._check_row(cells)]
        finally:
            self._lineno -= 1

    def _reset(self) -> None:
        self._header, self._rows, self._offset, self._lineno, self._inode = None, [], 0, 0, None

    def _parse(self, text: str) -> None:
        for line in text.split("\n")[:-1]:
            self._lineno += 1
            line = line.rstrip("\r")
            if not line.strip():
                continue
            cells = line.split("\t")
            if self._header is None:
                self._check_header(cells)
                continue
            self._rows.append(self._check_row(cells))

    def _check_header(self, cells: list[str]) -> None:
        expected = reference_columns(self.metric)
        if cells[:5] != expected:
            raise MalformedResults(
                f"{self.path} line 1: header is {cells[:5]!r}, expected {expected!r} "
                f"(tab-separated). Fix the header, or move the file aside to start a fresh one.")
        self._header = cells

    def _check_row(self, cells: list[str]) -> dict:
        where = f"{self.path} line {self._lineno}"
        fix = "fix or delete that line (the file is otherwise kept as it is)"
        if len(cells) < 5 or len(cells) > len(self._header):
            raise MalformedResults(f"{where}: {len(cells)} fields, expected {len(self._header)}; {fix}")
        row = dict(zip(self._header, cells + [""] * (len(self._header) - len(cells))))
        if row["status"] not in STATUSES:
            raise MalformedResults(f"{where}: status {row['status']!r} is not one of {', '.join(STATUSES)}; {fix}")
        for col in (self.metric, "memory_gb"):
            try:
                float(row[col])
            except ValueError:
                raise MalformedResults(f"{where}: {col} {row[col]!r} is not a number; {fix}") from None
        return row

    def header(self) -> list[str]:
        """Returns the file's header (the full column list when the file does not exist yet)."""
        self.rows()
        return list(self._header) if self._header else full_columns(self.metric)

    # -- writing -----------------------------------------------------------------------------
    def append(self, row: ResultRow) -> None:
        """Appends one row with a single write, so an interrupted process never leaves half a row."""
        self.rows()  # validates the existing file before anything is added to it
        new_file = self._header is None
        columns = self.header()
        payload = ""
        if new_file:
            payload = "\t".join(columns) + "\n"
        elif not self._ends_with_newline():
            payload = "\n"
        payload += "\t".join(row.cells(self.metric, columns)) + "\n"
        _append_once(self.path, payload.encode())
        if self.records_path:
            os.makedirs(os.path.dirname(self.records_path), exist_ok=True)
            _append_once(self.records_path, (json.dumps(row.record(self.metric)) + "\n").encode())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return True
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"


def _append_once(path: str, data: bytes) -> None:
    """Appends `data` with one O_APPEND write and flushes it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # only on a full disk; report rather than leave a torn row
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
