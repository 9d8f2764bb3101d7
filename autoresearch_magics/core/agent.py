"""The agent proposer: an external coding-agent command edits train.py in a sandbox.

The agent never runs in the campaign folder. It gets a scratch copy of the candidate (the
tracked files of the campaign's tip, with the editable files as they are in the working copy),
made into a small git repository of its own so `git diff` works, in a temporary folder outside
the campaign. Only the editable files come back, as the proposal's content: results.tsv,
`.autoresearch/`, ignored files, your uncommitted work and every other file of the campaign are
never where it runs. A deleted, emptied or unreadable editable file is a failed proposal.

The agent gets a prompt (core.agent_prompt: objective, stop rules, notes, skipped proposals, what
was tried, recent results, curves, the last crash, program.md) in a file named by
$AUTORESEARCH_PROMPT_FILE, `{prompt_file}` in the command (shell-quoted), and on standard input.
It may write a one-line description to $AUTORESEARCH_DESCRIPTION_FILE or print `description: ...`.
core.agent_recipes holds the command lines of common coding-agent tools.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Callable

from .agent_prompt import build_prompt
from .ledger import Ledger
from .proposers import Proposal, Proposer, ProposalError
from .runner import RunSpec, run
from .summary import LINE_BREAKS
from .validation import positive_seconds

DEFAULT_AGENT_TIMEOUT_S = 900.0
MAX_EDITABLE_BYTES = 8 << 20      # an editable file larger than this is not a source file
MAX_LISTED_FILES = 20_000         # beyond this many files, other edits are not itemised
_DESCRIPTION = re.compile(r"^\s*(?:description|hypothesis)\s*:\s*(.+)$", re.I)


class AgentProposer(Proposer):
    """Runs `command` (a coding agent) in a sandbox copy and takes its edit of the editable files."""

    name = "agent"

    def __init__(self, command: str, timeout_s: float = DEFAULT_AGENT_TIMEOUT_S,
                 curve_summary: Callable | None = None) -> None:
        self.command = command
        self.timeout_s = positive_seconds("agent_timeout_s", timeout_s, "900")
        self.curve_summary = curve_summary  # curve_summary(campaign) -> text for the prompt, or None

    def propose(self, campaign):
        logs = campaign.paths.state / "agent"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{campaign.next_experiment():04d}.log"
        with tempfile.TemporaryDirectory(prefix="autoresearch-agent-", ignore_cleanup_errors=True) as tmp:
            try:
                sandbox = Sandbox.create(campaign, Path(tmp))
            except Exception as exc:  # the tool's own step failed (disk full, git): say so, keep the loop
                raise ProposalError(f"could not prepare the agent's scratch copy: {exc}") from exc
            return self._propose_in(campaign, sandbox, log_path)

    def _propose_in(self, campaign, sandbox: "Sandbox", log_path: Path) -> Proposal:
        prompt_file, description_file = sandbox.prompt_file, sandbox.description_file
        curves = self.curve_summary(campaign) if self.curve_summary is not None else None
        prompt_file.write_text(build_prompt(campaign, sandbox.work, curves))
        command = self.command.replace("{prompt_file}", shlex.quote(str(prompt_file)))
        outcome = run(RunSpec(command=f"{command} < {shlex.quote(str(prompt_file))}", cwd=str(sandbox.work),
                              log_path=str(log_path), timeout_s=self.timeout_s,
                              env={"AUTORESEARCH_PROMPT_FILE": str(prompt_file),
                                   "AUTORESEARCH_DESCRIPTION_FILE": str(description_file)}))
        if outcome.timed_out:
            raise ProposalError(f"agent timed out after {self.timeout_s:g}s (log {log_path})")
        if outcome.returncode != 0:
            raise ProposalError(f"agent exited with code {outcome.returncode}: {' | '.join(outcome.tail[-3:])}")
        files = sandbox.edited_files()
        ignored = sandbox.other_changes()
        if not files:
            raise ProposalError("agent changed nothing in " + ", ".join(campaign.config.editable)
                                + (f" (its edits to {', '.join(ignored)} were refused)" if ignored else ""))
        sandbox.check_campaign_unchanged()
        description = _description(description_file, outcome.tail) or "agent edit"
        if ignored:
            description += f" [refused edits to {', '.join(ignored)}]"
        return Proposal(description, files)


class Sandbox:
    """A scratch copy of the candidate in a temporary folder: `work/` is where the agent runs."""

    def __init__(self, campaign, folder: Path) -> None:
        self.campaign = campaign
        self.editable = list(campaign.config.editable)
        self.work = folder / "work"
        self.prompt_file = folder / "prompt.md"
        self.description_file = folder / "description.txt"
        self.start: dict[str, bytes | None] = {}
        self.manifest: dict[str, str] = {}

    @classmethod
    def create(cls, campaign, folder: Path) -> "Sandbox":
        """Returns a sandbox holding the tip's tracked files plus the working copy's editable files."""
        sandbox = cls(campaign, folder)
        sandbox.work.mkdir()
        campaign.ledger.export_tree("HEAD", sandbox.work)
        root = campaign.paths.root
        for path in sandbox.editable:
            source, target = root / path, sandbox.work / path
            content = source.read_bytes() if source.is_file() else None
            sandbox.start[path] = content
            if content is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            elif target.exists():
                target.unlink()
        ledger = Ledger.init_repo(sandbox.work, own=True)
        if any(p.name != ".git" for p in sandbox.work.iterdir()):
            ledger.commit_files(["."], "candidate: the campaign's current best")
        sandbox.manifest = sandbox._listing()
        return sandbox

    def edited_files(self) -> dict[str, str]:
        """Returns {path: new text} of the editable files the agent changed; raises ProposalError when
        one was deleted, emptied, replaced by something that is not a text file, or made unreadable."""
        changed = {}
        for path in self.editable:
            before, file = self.start[path], self.work / path
            if file.is_symlink() or (file.exists() and not file.is_file()):
                raise ProposalError(f"agent replaced {path} by something that is not a plain file")
            if not file.exists():
                if before is not None:
                    raise ProposalError(f"agent deleted {path}: a deletion is not an experiment")
                continue
            try:
                if file.stat().st_size > MAX_EDITABLE_BYTES:
                    raise ProposalError(f"agent made {path} larger than {MAX_EDITABLE_BYTES >> 20} MB")
                content = file.read_bytes()
                text = content.decode("utf-8")
            except OSError as exc:
                raise ProposalError(f"agent left {path} unreadable: {exc.strerror or exc}") from None
            except UnicodeDecodeError:
                raise ProposalError(f"agent left {path} in an encoding other than UTF-8") from None
            if not text.strip() and before and before.strip():
                raise ProposalError(f"agent left {path} empty")
            if content != before:
                changed[path] = text
        return changed

    def other_changes(self) -> list[str]:
        """Returns the other files the agent created, changed or deleted (all discarded)."""
        now = self._listing()
        if now is None or self.manifest is None:
            return ["(too many files to list)"]
        paths = {p for p in set(now) | set(self.manifest) if now.get(p) != self.manifest.get(p)}
        return sorted(p for p in paths if p not in self.editable)

    def check_campaign_unchanged(self) -> None:
        """Raises ProposalError when an editable file in the campaign folder changed while the agent
        worked (your edit): it is kept, and the agent's proposal is dropped instead of overwriting it."""
        root = self.campaign.paths.root
        for path, before in self.start.items():
            now = (root / path).read_bytes() if (root / path).is_file() else None
            if now != before:
                raise ProposalError(f"{path} changed in {root} while the agent worked: your version is kept "
                                    f"and the agent's edit dropped")

    def _listing(self) -> dict[str, str] | None:
        """Returns {relative path: content digest} of every file in the sandbox (its .git excluded),
        or None when there are too many to list."""
        found: dict[str, str] = {}
        for folder, dirs, names in os.walk(self.work):
            dirs[:] = [d for d in dirs if not (folder == str(self.work) and d == ".git")]
            for name in names:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, self.work)
                found[rel] = _digest(full)
                if len(found) > MAX_LISTED_FILES:
                    return None
        return found


def _digest(path: str) -> str:
    """Returns a digest of a file's content (a symlink by its target; unreadable as such)."""
    try:
        if os.path.islink(path):
            return "link:" + os.readlink(path)
        with open(path, "rb") as fh:
            return hashlib.sha1(fh.read()).hexdigest()
    except OSError:
        return "unreadable"


def _description(file: Path, tail: list[str]) -> str:
    try:
        lines = [l.strip() for l in file.read_text(errors="replace").splitlines() if l.strip()] \
            if file.is_file() else []
    except OSError:
        lines = []
    if lines:
        return lines[0][:200]
    for line in reversed(tail):
        for part in LINE_BREAKS.split(line):
            match = _DESCRIPTION.match(part)
            if match:
                return match.group(1).strip()[:200]
    return ""
