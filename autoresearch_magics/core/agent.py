"""The agent proposer: an external coding-agent command edits train.py in the working copy.

The agent gets a prompt (program.md, the best result, recent results, the last crash's log
tail) in a file named by $AUTORESEARCH_PROMPT_FILE, `{prompt_file}` in the command, and on
standard input. It may write a one-line description to $AUTORESEARCH_DESCRIPTION_FILE or print
`description: ...`. Only the editable files may change: any other edit is put back as it was.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .proposers import Proposal, Proposer, ProposalError
from .runner import RunSpec, run
from .summary import LINE_BREAKS

DEFAULT_AGENT_TIMEOUT_S = 900.0
RECENT_ROWS = 15
_DESCRIPTION = re.compile(r"^\s*(?:description|hypothesis)\s*:\s*(.+)$", re.I)


def build_prompt(campaign) -> str:
    """Returns the agent's briefing: charter, objective, best, recent results, last crash."""
    config, root = campaign.config, campaign.paths.root
    program = (root / "program.md").read_text() if (root / "program.md").exists() else "(no program.md)"
    best = campaign.best()
    rows = campaign.rows()[-RECENT_ROWS:]
    metric = config.metric
    table = "\n".join(f"{r.get('experiment', '?')}\t{r[metric]}\t{r['status']}\t{r['description']}"
                      + (f"\t({r['crash_reason']})" if r.get("crash_reason") else "") for r in rows)
    crash = next((r for r in reversed(campaign.rows()) if r["status"] == "crash"), None)
    crash_text = ""
    if crash and crash.get("experiment", "").isdigit():
        tail = campaign.show(int(crash["experiment"]), tail_lines=30)["log_tail"]
        crash_text = f"\n## Last crash: experiment {crash['experiment']} ({crash.get('crash_reason', '')})\n" \
                     + "\n".join(tail)
    best_text = (f"{best['value']:.6f} (experiment {best.get('experiment')}: {best['description']})"
                 if best else "none yet")
    return f"""You are running one step of an autoresearch campaign.

Objective: {'minimise' if config.direction == 'min' else 'maximise'} {metric}; each run trains for {config.budget_s:g} s.
Edit only: {', '.join(config.editable)} (in {root}). Every other file is restored after you finish.
Make ONE focused change that you expect to improve {metric}. Then write a one-line description of
the hypothesis to the file named by $AUTORESEARCH_DESCRIPTION_FILE (or print `description: ...`).
Do not run the training yourself.

Best so far: {best_text}

## Recent results (experiment, {metric}, status, description)
{table or '(none yet)'}
{crash_text}

## Research charter (program.md)
{program}
"""


class AgentProposer(Proposer):
    """Runs `command` (a coding agent) in the working copy and takes its edit of the editable files."""

    name = "agent"

    def __init__(self, command: str, timeout_s: float = DEFAULT_AGENT_TIMEOUT_S) -> None:
        self.command = command
        self.timeout_s = timeout_s

    def propose(self, campaign):
        paths, ledger, editable = campaign.paths, campaign.ledger, campaign.config.editable
        folder = paths.state / "agent"
        folder.mkdir(parents=True, exist_ok=True)
        prompt_file, description_file = folder / "prompt.md", folder / "description.txt"
        prompt_file.write_text(build_prompt(campaign))
        description_file.unlink(missing_ok=True)
        before = _snapshot(campaign)
        n = campaign.next_experiment()
        command = self.command.replace("{prompt_file}", str(prompt_file))
        outcome = run(RunSpec(command=f"{command} < {_quote(prompt_file)}", cwd=str(paths.root),
                              log_path=str(folder / f"{n:04d}.log"), timeout_s=self.timeout_s,
                              env={"AUTORESEARCH_PROMPT_FILE": str(prompt_file),
                                   "AUTORESEARCH_DESCRIPTION_FILE": str(description_file)}))
        refused = _restore_others(campaign, before)
        if outcome.timed_out:
            _restore_editable(campaign, before)
            raise ProposalError(f"agent timed out after {self.timeout_s:g}s (log {folder / f'{n:04d}.log'})")
        if outcome.returncode != 0:
            _restore_editable(campaign, before)
            raise ProposalError(f"agent exited with code {outcome.returncode}: {' | '.join(outcome.tail[-3:])}")
        if not ledger.changed_paths(editable):
            raise ProposalError("agent changed nothing in " + ", ".join(editable)
                                + (f" (its edits to {', '.join(refused)} were refused)" if refused else ""))
        description = _description(description_file, outcome.tail) or "agent edit"
        if refused:
            description += f" [refused edits to {', '.join(refused)}]"
        return Proposal(description)


def _quote(path: Path) -> str:
    import shlex
    return shlex.quote(str(path))


def _snapshot(campaign) -> dict[str, bytes | None]:
    """Returns the content of every file that differs from HEAD now (None: deleted), editable ones included."""
    root = campaign.paths.root
    saved = {}
    for path in campaign.ledger.dirty_paths_here():
        file = root / path
        saved[path] = file.read_bytes() if file.is_file() else None
    return saved


def _restore_others(campaign, before: dict[str, bytes | None]) -> list[str]:
    """Puts back every non-editable file the agent changed; returns their paths."""
    root, ledger, editable = campaign.paths.root, campaign.ledger, set(campaign.config.editable)
    refused = []
    for path in sorted(set(ledger.dirty_paths_here()) | set(before)):
        if path in editable:
            continue
        file = root / path
        now = file.read_bytes() if file.is_file() else None
        if path in before:
            if now != before[path]:
                refused.append(path)
                if before[path] is None:
                    file.unlink(missing_ok=True)
                else:
                    file.write_bytes(before[path])
        else:  # was clean: the agent touched it
            refused.append(path)
            if ledger.untracked([path]):
                file.unlink(missing_ok=True)
            else:
                ledger.write_files_from("HEAD", [path])
    return refused


def _restore_editable(campaign, before) -> None:
    """Undoes the agent's edits of the editable files after a failed proposal."""
    for path in campaign.config.editable:
        file = campaign.paths.root / path
        if path in before and before[path] is not None:
            file.write_bytes(before[path])
        elif path not in before:
            campaign.ledger.write_files_from("HEAD", [path])


def _description(file: Path, tail: list[str]) -> str:
    if file.is_file():
        lines = [l.strip() for l in file.read_text().splitlines() if l.strip()]
        if lines:
            return lines[0][:200]
    for line in reversed(tail):
        for part in LINE_BREAKS.split(line):
            match = _DESCRIPTION.match(part)
            if match:
                return match.group(1).strip()[:200]
    return ""
