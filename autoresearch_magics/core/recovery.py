"""Recovering from a runner that died mid-experiment (a killed kernel, a closed terminal).

Called only by a runner that holds the campaign lock, before it starts (reading a campaign never
recovers). The runs the journal lists become crash rows ('interrupted'); orphaned training
processes are killed; editable files are brought back to the branch tip only where they hold
what the engine wrote there, never where the user has written since.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .candidate import files_at
from .journal import clear_journal, digest, read_journal
from .live import process_alive, read_json, write_json_atomic
from .outcome import result_of, row_for
from .containment import kill_process_tree, kill_run
from .status import INTERRUPTED, Status
from .working_copy import working_copy, write_working_copy


@dataclass
class RecoveryReport:
    """What recovery did."""

    recorded: list[int] = field(default_factory=list)      # experiments recorded as interrupted
    restored: list[str] = field(default_factory=list)      # editable files put back to the branch tip
    kept: list[str] = field(default_factory=list)          # editable files holding the user's own edit, left alone
    descriptions: dict[int, str] = field(default_factory=dict)

    def text(self) -> str:
        """Returns one line for the user."""
        parts = []
        for number in self.recorded:
            parts.append(f"experiment #{number} ({self.descriptions.get(number, '')!r}) was cut off "
                         f"(kernel restart?): recorded as a crash, 'interrupted'; its training process is gone")
        if self.restored:
            parts.append(f"put {', '.join(self.restored)} back to the best commit")
        if self.kept:
            parts.append(f"kept your edited {', '.join(self.kept)} as it is (it is not what the cut-off "
                         f"experiment ran; `git diff` shows it against the best)")
        return "; ".join(parts) or "cleaned up after a runner that stopped"


def recover(campaign) -> RecoveryReport | None:
    """Records what a dead runner left (see module doc); returns what was done, or None when nothing was left."""
    assert campaign.lock.held, "recovery runs only under the runner lock"
    journal = read_journal(campaign)
    if journal is None:
        clear_journal(campaign)
        return None
    report = RecoveryReport()
    _record_runs(campaign, journal, report)
    if journal.get("legacy_branch_moved"):
        _move_branch_back(campaign, journal["working_copy"])
    if journal.get("working_copy"):
        _settle_working_copy(campaign, journal["working_copy"], report)
    live = read_json(campaign.paths.live)
    if live and live.get("state") == "running":
        live.update(state="finished", outcome={"status": str(Status.CRASH), "crash_reason": INTERRUPTED})
        write_json_atomic(campaign.paths.live, live)
    clear_journal(campaign)
    campaign.paths.stop_request.unlink(missing_ok=True)
    return report


def _record_runs(campaign, journal: dict, report: RecoveryReport) -> None:
    have = {(r.get("experiment"), r.get("run") or "1") for r in campaign.rows()}
    for note in sorted(journal.get("runs", []), key=lambda n: (n["experiment"], n["run"])):
        child = note.get("child_pid")
        if child and process_alive(child, note.get("child_started")):
            kill_process_tree(child)
        if note.get("run_id"):
            kill_run(note["run_id"])   # what survived its shepherd, found by the marker the run set
        if (str(note["experiment"]), str(note["run"])) in have:
            continue
        note = {**note, "launcher": note.get("launcher") or journal.get("launcher", "local")}
        result = result_of(campaign, note, None, INTERRUPTED)
        campaign.results.append(row_for(campaign, result))
        if note["experiment"] not in report.recorded:
            report.recorded.append(note["experiment"])
            report.descriptions[note["experiment"]] = note.get("description", "")


def _move_branch_back(campaign, record: dict) -> None:
    """A runner of an earlier version moved the branch to the undecided commit: move it back."""
    ledger, config = campaign.ledger, campaign.config
    if ledger.current_branch() == config.branch and ledger.tip() == record["commit"] != record["parent"]:
        ledger.move_branch(record["parent"])
        ledger.sync_index(config.editable)


def _settle_working_copy(campaign, record: dict, report: RecoveryReport) -> None:
    """Puts editable files back to the tip where they hold the engine's content; keeps the user's."""
    editable = campaign.config.editable
    tip = campaign.ledger.tip()
    at_tip = files_at(campaign, tip, editable)
    now = working_copy(campaign)
    if record.get("digests") is not None:
        ours = {p: set(record["digests"].get(p, [])) for p in editable}
    else:  # the earlier form: the engine's content is the experiment's commit
        ran = files_at(campaign, record["commit"], editable)
        ours = {p: {str(digest(ran[p]))} for p in editable}
    restore = {}
    for path in editable:
        if now[path] == at_tip[path]:
            continue
        if str(digest(now[path])) in ours[path] and at_tip[path] is not None:
            restore[path] = at_tip[path]
        else:
            report.kept.append(path)
    if restore:
        write_working_copy(campaign, restore)
        report.restored.extend(sorted(restore))
