"""The campaign journal: the researcher's steering notes, and the proposals skipped before they ran.

Both are JSON-lines files in `.autoresearch/`, written with one O_APPEND write per record, so a
note typed in a terminal while the loop runs in a kernel never interleaves with another. Neither
is results.tsv: a skipped proposal never ran, so it has no metric and no run row; `show`, `status`,
the report and the agent's next prompt read it from here.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from .errors import CampaignError
from .paths import CampaignPaths

MAX_NOTE_CHARS = 4000        # a note is a steer, not a document
MAX_REASON_CHARS = 2000      # the same bound as the sidebar's skip reason
MAX_STORED_DIFF_CHARS = 20_000
DEFAULT_LATEST = 10


@dataclass(frozen=True)
class Note:
    """One steering note: its text and when it was written (UTC, ISO 8601)."""

    text: str
    at: str

    @property
    def date(self) -> str:
        """Returns the note's date and minute, e.g. '2026-11-22 14:05'."""
        return self.at[:16].replace("T", " ")


@dataclass(frozen=True)
class SkippedProposal:
    """A proposal that was not run: what it proposed, why it was skipped, and by whom.

    `experiment` is the number it would have had; `digest` identifies its editable files (see
    core.tried.content_digest) so an identical later proposal is recognised; `source` is "user"
    (a decision), "timeout" (nobody answered) or "repeat" (identical to an earlier experiment).
    """

    experiment: int | None
    description: str
    reason: str
    at: str
    source: str = "user"
    digest: str = ""
    diff: str = ""
    repeat_of: int | None = None
    proposer: str = ""

    @property
    def date(self) -> str:
        return self.at[:16].replace("T", " ")


def add_note(paths: CampaignPaths, text: str) -> Note:
    """Appends a dated note to the campaign's journal; returns it."""
    text = (text or "").strip()
    if not text:
        raise CampaignError('a note needs text: autoresearch note "try a smaller learning rate first"')
    if len(text) > MAX_NOTE_CHARS:
        raise CampaignError(f"the note is {len(text)} characters long; keep it under {MAX_NOTE_CHARS} "
                            f"(put long plans in program.md)")
    note = Note(text=text, at=_now())
    _append(paths.notes, asdict(note))
    return note


def latest_notes(paths: CampaignPaths, count: int | None = DEFAULT_LATEST) -> list[Note]:
    """Returns the last `count` notes (all with None), oldest first."""
    records = _read(paths.notes)
    if count is not None:
        records = records[-count:] if count > 0 else []
    return [Note(text=str(r.get("text", "")), at=str(r.get("at", ""))) for r in records if r.get("text")]


def record_skip(paths: CampaignPaths, description: str, reason: str = "", *, experiment: int | None = None,
                source: str = "user", digest: str = "", diff: str = "", repeat_of: int | None = None,
                proposer: str = "") -> SkippedProposal:
    """Records a proposal that was not run, with its reason; returns the record."""
    reason = (reason or "").strip()[:MAX_REASON_CHARS]
    skipped = SkippedProposal(experiment=experiment, description=(description or "").strip(), reason=reason,
                              at=_now(), source=source, digest=digest, diff=(diff or "")[:MAX_STORED_DIFF_CHARS],
                              repeat_of=repeat_of, proposer=proposer)
    _append(paths.skipped, asdict(skipped))
    return skipped


def skipped_proposals(paths: CampaignPaths, count: int | None = None) -> list[SkippedProposal]:
    """Returns the last `count` skipped proposals (all with None), oldest first."""
    records = _read(paths.skipped)
    if count is not None:
        records = records[-count:] if count > 0 else []
    known = set(SkippedProposal.__dataclass_fields__)
    out = []
    for record in records:
        fields = {k: v for k, v in record.items() if k in known}
        fields.setdefault("experiment", None)
        fields.setdefault("description", "")
        fields.setdefault("reason", "")
        fields.setdefault("at", "")
        out.append(SkippedProposal(**fields))
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _append(path, record: dict) -> None:
    """Appends one JSON line with a single O_APPEND write (concurrent writers never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # only on a full disk: say so rather than leave half a line
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
    finally:
        os.close(fd)


def _read(path) -> list[dict]:
    """Returns the file's JSON records; a torn or hand-mangled line is passed over, not fatal."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records

