"""results.tsv: the one writer and the one reader.

The first five columns are the reference format (`commit <metric> memory_gb status
description`) so existing analysis notebooks keep working; richer columns follow. A file that
was attached with only the reference columns keeps them: new rows then carry just those five,
and the full record of every run is also kept in `.autoresearch/runs.jsonl`.

Every cell is written so that `pd.read_csv(path, sep="\t")`, `csv.reader(f, delimiter="\t")`
and a plain line-by-line reader all see one row per run: tabs, line breaks and other control
characters become spaces, a cell that starts with a double quote is quoted the CSV way, and a
very long cell is shortened (the record in runs.jsonl keeps the original). The file is only
ever appended to. A last line without its line end is a write that was cut short: it never
counts as a result, and the next append starts on a new line and remembers that line as torn
(in `.autoresearch/results-torn.json`), so later reads skip it with a warning naming its line.
"""
from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field

from .errors import MalformedResults
from .paths import STATE_DIR

STATUSES = ("keep", "discard", "crash")
EXTRA_COLUMNS = (
    "experiment", "run", "parent", "branch", "started_at", "elapsed_min", "training_seconds",
    "peak_rss_gb", "crash_reason", "seed", "log", "command", "launcher", "job_id", "node",
    "evidence", "machine_share", "cpu_s", "other_cpu_s", "startup_s", "train_wall_s", "eval_s", "overhead_s",
)
TORN_NAME = "results-torn.json"
# csv.reader refuses fields over 131,072 characters; a quoted cell may double in length.
MAX_CELL_CHARS = 32_000
# Characters some reader takes as a line or field break (str.splitlines, csv, pandas), or that a
# terminal would interpret: all become a space.
_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")

log = logging.getLogger(__name__)


def reference_columns(metric: str) -> list[str]:
    """Returns the five reference column names for `metric`."""
    return ["commit", metric, "memory_gb", "status", "description"]


def full_columns(metric: str) -> list[str]:
    """Returns every column a new results.tsv gets."""
    return reference_columns(metric) + list(EXTRA_COLUMNS)


def encode_cell(value) -> str:
    """Returns `value` as one results.tsv cell that every tab-separated reader reads back the same.

    Breaks and control characters become a space (the only change to ordinary text); a cell that
    starts with a double quote is wrapped in quotes with its own quotes doubled, which is how both
    pandas and the csv module read a quoted field back.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    text = str(value).encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be written
    text = _BREAKING.sub(" ", text)
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS - 1] + "\u2026"
    if text.startswith('"'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def split_line(line: str) -> list[str]:
    """Returns the cells of one results.tsv line, read the way csv.reader reads them; raises
    ValueError for a quoted cell that is never closed (pandas would read on into the next lines)."""
    if '"' not in line:
        return line.split("\t")
    try:
        return next(csv.reader([line], delimiter="\t", strict=True), [""])
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise ValueError("a cell opens a double quote that is never closed") from None
    return next(csv.reader([line], delimiter="\t", strict=False), [""])


def measured(rows: list[dict], metric: str) -> list[float]:
    """Returns the metric values of `rows` that were measured: crashes and runs without a value
    (pruned ones, "nan") left out."""
    values = []
    for row in rows:
        if row.get("status") == "crash":
            continue
        try:
            value = float(row[metric])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            values.append(value)
    return values


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
        # the reference format's crash cell is 0.000000; a run without a value that is no crash (a
        # pruned one) gets "nan", which every reader takes as missing rather than as a perfect score
        missing = "0.000000" if self.status == "crash" else "nan"
        values = {
            "commit": self.commit[:7],
            metric_name: missing if crash else f"{self.metric:.6f}",
            "memory_gb": "0.0" if crash else f"{self.memory_gb:.1f}",
            "status": self.status,
            "description": self.description,
        }
        values.update({k: v for k, v in self.extra.items() if k not in values})
        return [encode_cell(values.get(col, "")) for col in columns]

    def record(self, metric_name: str) -> dict:
        """Returns the full JSON record of this row."""
        out = {"commit": self.commit, metric_name: self.metric, "memory_gb": self.memory_gb,
               "status": self.status, "description": self.description}
        out.update(self.extra)
        return out


class ResultsFile:
    """Reads and appends results.tsv. Reads are incremental: only appended bytes are parsed."""

    def __init__(self, path, metric: str, records_path=None, torn_path=None) -> None:
        self.path = os.fspath(path)
        self.metric = metric
        self.records_path = os.fspath(records_path) if records_path else None
        self.torn_path = os.fspath(torn_path) if torn_path else os.path.join(
            os.path.dirname(self.path), STATE_DIR, TORN_NAME)
        self.torn_lines: list[int] = []   # line numbers of torn lines seen by the last read
        self._header: list[str] | None = None
        self._rows: list[dict] = []
        self._offset = 0
        self._lineno = 0
        self._inode = None
        self._torn_known: set[str] | None = None
        self._warned: set[tuple[int, str]] = set()

    # -- reading -----------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Returns every row as a dict of column -> text (a shared list: do not mutate), validating as it goes.

        A last line without its line end (a write cut short) is left out and reported."""
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
            tail = chunk[end:].decode("utf-8", errors="replace")
            if tail.strip() and not self._tail_is_header(tail):
                self._report_torn(self._lineno + 1, "its last line has no line end (a write cut short)")
        return self._rows  # shared: callers must not mutate it

    def _reset(self) -> None:
        self._header, self._rows, self._offset, self._lineno, self._inode = None, [], 0, 0, None
        self.torn_lines = []

    def _parse(self, text: str) -> None:
        for line in text.split("\n")[:-1]:
            self._lineno += 1
            line = line.rstrip("\r")
            if not line.strip():
                continue
            if line in self._torn_texts():
                self._report_torn(self._lineno, "a write that was cut short")
                continue
            try:
                cells = split_line(line)
            except ValueError as exc:
                raise MalformedResults(f"{self.path} line {self._lineno}: {exc}; fix or delete that line (the "
                                       f"file is otherwise kept as it is)") from None
            if self._header is None:
                self._check_header(cells)
                continue
            self._rows.append(self._check_row(cells))

    def _tail_is_header(self, tail: str) -> bool:
        """Returns True when the only line is a complete header lacking its line end (a hand-made file)."""
        if self._header is not None:
            return False
        self._lineno += 1
        try:
            self._check_header(split_line(tail.rstrip("\r")))
        except (MalformedResults, ValueError):
            return False
        finally:
            self._lineno -= 1
        self._header = None  # read again, with its line end, once a row is appended
        return True

    def _torn_texts(self) -> set[str]:
        """Returns the lines earlier appends found torn and ended (recorded beside the file)."""
        if self._torn_known is None:
            try:
                with open(self.torn_path) as fh:
                    self._torn_known = {entry["text"] for entry in json.load(fh).get("torn", [])}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self._torn_known = set()
        return self._torn_known

    def _report_torn(self, lineno: int, why: str) -> None:
        if lineno not in self.torn_lines:
            self.torn_lines.append(lineno)
        key = (lineno, why)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s line %d is incomplete, %s: it is not counted as a result. Delete that line "
                        "when you like; the file is otherwise kept as it is.", self.path, lineno, why)

    def _check_header(self, cells: list[str]) -> None:
        expected = reference_columns(self.metric)
        if cells[:5] != expected:
            raise MalformedResults(
                f"{self.path} line {self._lineno or 1}: header is {cells[:5]!r}, expected {expected!r} "
                f"(tab-separated). Fix the header, or move the file aside to start a fresh one.")
        self._header = cells

    def _check_row(self, cells: list[str]) -> dict:
        where = f"{self.path} line {self._lineno}"
        fix = "fix or delete that line (the file is otherwise kept as it is)"
        if len(cells) != len(self._header):
            columns = ", ".join(self._header[:5]) + (", ..." if len(self._header) > 5 else "")
            raise MalformedResults(f"{where}: {len(cells)} fields, expected {len(self._header)} like the header "
                                   f"({columns}); {fix}")
        row = dict(zip(self._header, cells))
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
        """Appends one row with a single write, so an interrupted process never leaves half a row.

        A torn last line is first ended (and remembered as torn), so the row starts on a line of its own."""
        self.rows()  # validates the existing file before anything is added to it
        raw_tail = self._unterminated_tail()
        tail = raw_tail.decode("utf-8", errors="replace")
        ending = b""
        if self._header is not None:
            columns = list(self._header)
            if raw_tail:  # a torn row: end it, and remember it so no later read counts it
                ending = _utf8_completion(raw_tail)
                torn = (raw_tail + ending).decode("utf-8", errors="replace")
                ending += _closing_quote(torn).encode()
                self._remember_torn((raw_tail + ending).decode("utf-8", errors="replace").rstrip("\r"),
                                    self._lineno + 1)
                ending += b"\n"
            payload = ""
        elif not tail.strip():
            columns = full_columns(self.metric)
            ending = b"\n" if raw_tail else b""
            payload = "\t".join(columns) + "\n"
        elif self._tail_is_header(tail):  # a hand-made header without its line end
            columns = split_line(tail.rstrip("\r"))
            ending, payload = b"\n", ""
        else:
            raise MalformedResults(f"{self.path} line {self._lineno + 1}: the header line is incomplete; move the "
                                   f"file aside to start a fresh one")
        payload += "\t".join(row.cells(self.metric, columns)) + "\n"
        _append_once(self.path, ending + payload.encode())
        if self.records_path:
            os.makedirs(os.path.dirname(self.records_path), exist_ok=True)
            _append_once(self.records_path, (json.dumps(row.record(self.metric)) + "\n").encode())

    def _unterminated_tail(self) -> bytes:
        """Returns the bytes after the file's last line end (empty when it ends with one or does not exist)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                return fh.read()
        except FileNotFoundError:
            return b""

    def _remember_torn(self, text: str, lineno: int) -> None:
        """Records a torn line before it is ended, so no later read takes it for a row."""
        try:
            with open(self.torn_path) as fh:
                known = json.load(fh)
        except (OSError, ValueError):
            known = {}
        entries = known.get("torn", []) if isinstance(known, dict) else []
        entries.append({"line": lineno, "text": text})
        os.makedirs(os.path.dirname(self.torn_path), exist_ok=True)
        tmp = self.torn_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"file": os.path.basename(self.path), "torn": entries}, fh, indent=1)
        os.replace(tmp, self.torn_path)
        self._torn_known = None


def _utf8_completion(torn: bytes) -> bytes:
    """Returns the bytes that complete a character cut in half at the end of `torn` (b"" if none was),
    so that readers that insist on valid UTF-8 (pandas) can still read the file."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(torn, final=False)
    except UnicodeDecodeError:
        return b""  # damage earlier in the line: nothing an append can mend
    pending = decoder.getstate()[0]
    if not pending:
        return b""
    length = 2 if pending[0] < 0xE0 else 3 if pending[0] < 0xF0 else 4
    for second in (0x80, 0x90, 0xA0):  # the lowest continuation byte every lead byte accepts
        completion = (bytes([second]) + b"\x80" * (length - 2)) if len(pending) == 1 else b"\x80" * (length - len(pending))
        try:
            (pending + completion).decode("utf-8")
            return completion
        except UnicodeDecodeError:
            continue
    return b""


def _closing_quote(torn: str) -> str:
    """Returns '"' when a torn line ends inside a quoted cell (which would swallow the next line)."""
    last = torn.rstrip("\r").split("\t")[-1]
    return '"' if last.startswith('"') and last.count('"') % 2 == 1 else ""


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
