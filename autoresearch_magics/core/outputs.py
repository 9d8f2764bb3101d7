"""Files the tool writes for the user (report, plot, HTML): never over a file it did not write.

The tool keeps a record of every such file it wrote (path and content digest) in
`.autoresearch/outputs.json`. A default name is the tool's to (over)write only when nothing is
there, or the file there is one it wrote, unchanged since and not tracked by git. Otherwise the
outputs go to a folder of their own, and the caller says where.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from .errors import CampaignError

RECORD_NAME = "outputs.json"
OWN_FOLDER = "autoresearch-report"   # beside the requested folder, when its names are taken
log = logging.getLogger(__name__)


class OutputRecord:
    """What the tool wrote, so that it overwrites only its own files."""

    def __init__(self, campaign) -> None:
        self.campaign = campaign
        self.path = campaign.paths.state / RECORD_NAME
        try:
            self.written = json.loads(self.path.read_text())
            if not isinstance(self.written, dict):
                self.written = {}
        except (OSError, ValueError):
            self.written = {}

    def why_taken(self, path: Path) -> str:
        """Returns why the tool may not write `path` ('' when it may)."""
        if not os.path.lexists(path):
            return ""
        if path.is_symlink() or not path.is_file():
            return "it is not a plain file"
        if self.campaign.ledger.is_tracked(path):
            return "it is tracked in git"
        recorded = self.written.get(str(path.resolve()))
        if recorded is None:
            return "the tool did not write it"
        if recorded != _digest(path):
            return "it changed since the tool wrote it"
        return ""

    def choose_folder(self, folder: Path, names: list[str], alternative: Path) -> Path:
        """Returns `folder` when every name in it is free or the tool's own, else the first free folder of
        the tool's own (`alternative`, then `alternative-2`, ...), saying why."""
        taken = {name: self.why_taken(folder / name) for name in names}
        taken = {name: why for name, why in taken.items() if why}
        if not taken:
            return folder
        for n in range(1, 100):
            candidate = alternative if n == 1 else alternative.with_name(f"{alternative.name}-{n}")
            if all(not self.why_taken(candidate / name) for name in names):
                name, why = next(iter(taken.items()))
                log.warning("%s is not the tool's to overwrite (%s): writing to %s instead", folder / name, why,
                            candidate)
                return candidate
        raise OSError(f"no free folder for the outputs near {folder}")

    def write(self, path: Path, data: bytes) -> Path:
        """Writes `data` to `path` (a name chosen by choose_folder) and records it as the tool's own."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.remember(path)
        return path

    def remember(self, path: Path) -> None:
        """Records `path` as written by the tool (silently skipped when the campaign folder is read-only)."""
        self.written[str(path.resolve())] = _digest(path)
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.written, indent=1))
            os.replace(tmp, self.path)
        except OSError:
            pass


def save_own_file(campaign, where, data: bytes) -> Path:
    """Writes `data` to `where` (relative to the campaign folder), never over a file the tool did not
    write (tracked, or yours: then into the campaign's report folder); returns the path written."""
    target = Path(where).expanduser()
    target = target if target.is_absolute() else campaign.paths.root / target
    outputs = OutputRecord(campaign)
    folder = outputs.choose_folder(target.parent, [target.name], campaign.paths.state / "report")
    return outputs.write(folder / target.name, data)


def check_folder_writable(folder: Path, fix: str) -> None:
    """Raises CampaignError (naming `fix`) when `folder`, or its nearest existing parent, cannot be written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CampaignError(f"{existing} is read-only: {fix}")


def _digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()
