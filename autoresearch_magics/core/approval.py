"""The approve gate: a proposal waits for the researcher's decision before it runs.

`ApprovalGate.ask` publishes the proposal in live.json (`waiting_proposal`, where the sidebar and
a second terminal see it) and waits, on the loop's worker thread, for the first of:

- a decision from this process: `decide()`, called by `%autoresearch approve` / `skip` / `stop`,
  the live panel's buttons or a terminal front end;
- `.autoresearch/decision.json`, written by the sidebar's Run and Skip buttons;
- a stop: the loop's stop event, or the stop-request file the sidebar's Stop button leaves;
- the timeout, if one is set, which takes the configured default action.

It sleeps on an event between looks at the files (every POLL_S), so the kernel stays responsive
and an in-process answer is taken at once. Afterwards live.json gets back what it held before.
"""
from __future__ import annotations

import os
import select
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import CampaignError
from .live import clear_waiting_proposal, process_alive, publish_waiting_proposal, read_json, write_json_atomic
from .paths import CampaignPaths

CHOICES = ("run", "edit", "skip", "stop")
TIMEOUT_ACTIONS = ("skip", "run", "stop")   # what an unanswered proposal becomes
DEFAULT_TIMEOUT_ACTION = "skip"
POLL_S = 0.2                                 # how often the decision and stop files are looked at
MAX_PUBLISHED_DIFF_CHARS = 200_000           # the sidebar cuts longer diffs at the same length


@dataclass(frozen=True)
class ProposalInfo:
    """What a waiting proposal shows: its number, description, diff against the best, the new content
    of the files it changes (for Edit) and, when it resembles an earlier experiment, how."""

    experiment: int
    description: str
    diff: str = ""
    files: dict = field(default_factory=dict)
    similarity: dict | None = None      # core.tried.Similarity.as_dict()
    proposer: str = ""
    budget_s: float = 0.0

    def waiting_record(self) -> dict:
        """Returns the `waiting_proposal` record of live.json."""
        record = {"experiment": self.experiment, "description": self.description,
                  "diff": self.diff[:MAX_PUBLISHED_DIFF_CHARS], "proposer": self.proposer}
        if self.similarity and self.similarity.get("kind"):
            record["similar"] = self.similarity
        return record


@dataclass(frozen=True)
class Decision:
    """The answer to a proposal: `choice` is one of CHOICES; `files` holds edited content (Edit in a
    terminal); `source` says where the answer came from (kernel, sidebar, terminal, timeout, stop)."""

    choice: str
    reason: str = ""
    files: dict | None = None
    source: str = ""


class ApprovalGate:
    """Asks for a decision on each proposal of one campaign; one proposal waits at a time."""

    def __init__(self, paths: CampaignPaths, *, timeout_s: float | None = None,
                 on_timeout: str = DEFAULT_TIMEOUT_ACTION, stop_event: threading.Event | None = None,
                 front_end: Callable | None = None, poll_s: float = POLL_S) -> None:
        if on_timeout not in TIMEOUT_ACTIONS:
            raise CampaignError(f"an unanswered proposal can become {', '.join(TIMEOUT_ACTIONS)}, not {on_timeout!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise CampaignError(f"--approve-timeout must be a positive number of seconds, not {timeout_s!r}")
        self.paths = paths
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self.stop_event = stop_event or threading.Event()
        self.front_end = front_end      # front_end(info, cancel_event) -> Decision | None, on its own thread
        self.poll_s = poll_s
        self.watchers: list[Callable] = []   # watcher(info or None) when a proposal starts / stops waiting
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self._answer: Decision | None = None
        self._waiting: ProposalInfo | None = None

    @property
    def waiting(self) -> ProposalInfo | None:
        """Returns the proposal waiting for a decision now, or None."""
        return self._waiting

    def decide(self, choice: str, reason: str = "", *, experiment: int | None = None,
               files: dict | None = None, source: str = "kernel") -> bool:
        """Answers the waiting proposal; returns False when none waits (or another one than `experiment`)."""
        if choice not in CHOICES:
            raise CampaignError(f"a proposal can be answered with {', '.join(CHOICES)}, not {choice!r}")
        with self._lock:
            waiting = self._waiting
            if waiting is None or self._answered.is_set() or (experiment is not None and experiment != waiting.experiment):
                return False
            self._answer = Decision(choice, (reason or "").strip(), files, source)
            self._answered.set()
            return True

    def ask(self, info: ProposalInfo, timeout_s: float | None = None) -> Decision:
        """Publishes `info` as the waiting proposal and returns the decision taken on it."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._waiting is not None:
                raise CampaignError(f"proposal #{self._waiting.experiment} is still waiting for a decision")
            self._answer, self._waiting = None, info
            self._answered.clear()
        self.paths.decision.unlink(missing_ok=True)  # an answer to an earlier proposal is not for this one
        previous = publish_waiting_proposal(self.paths, info.waiting_record(), info.budget_s)
        self._tell_watchers(info)
        cancel = threading.Event()
        if self.front_end is not None:
            threading.Thread(target=self._run_front_end, args=(info, cancel), daemon=True,
                             name="autoresearch-approve-prompt").start()
        try:
            return self._wait(info, timeout_s)
        finally:
            cancel.set()
            with self._lock:
                self._waiting = None
                self._answered.set()  # a late decide() now returns False
            self.paths.decision.unlink(missing_ok=True)
            clear_waiting_proposal(self.paths, previous)
            self._tell_watchers(None)

    def _tell_watchers(self, info: ProposalInfo | None) -> None:
        for watcher in list(self.watchers):
            try:
                watcher(info)
            except Exception:  # a display's failure must not decide the proposal
                pass

    def _wait(self, info: ProposalInfo, timeout_s: float | None) -> Decision:
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            if self._answered.wait(self.poll_s):
                return self._answer
            answer = self._read_decision_file(info.experiment)
            if answer is not None:
                return answer
            if self.stop_event.is_set():
                return Decision("stop", "loop stopped on request", source="stop")
            if self.paths.stop_request.exists():
                self.paths.stop_request.unlink(missing_ok=True)
                self.stop_event.set()
                return Decision("stop", "stop requested", source="stop")
            if deadline is not None and time.monotonic() >= deadline:
                return Decision(self.on_timeout, f"no answer within {timeout_s:g} s", source="timeout")

    def _read_decision_file(self, experiment: int) -> Decision | None:
        """Returns the sidebar's answer for `experiment` from decision.json, or None; drops a stale one."""
        record = read_json(self.paths.decision)
        if record is None:
            return None
        self.paths.decision.unlink(missing_ok=True)
        if record.get("experiment") not in (experiment, None) or record.get("decision") not in ("run", "skip"):
            return None
        return Decision(record["decision"], str(record.get("reason") or "").strip(), source="sidebar")

    def _run_front_end(self, info: ProposalInfo, cancel: threading.Event) -> None:
        decision = self.front_end(info, cancel)
        if decision is not None:
            self.decide(decision.choice, decision.reason, experiment=info.experiment, files=decision.files,
                        source=decision.source or "terminal")


# -- answers from another process ----------------------------------------------------------------

OUTSIDE_CHOICES = ("run", "skip")   # what decision.json carries (stop goes through the stop request)


class NoProposalWaiting(CampaignError):
    """The campaign waits on no proposal, or on another one than the one answered."""


def waiting_proposal(paths: CampaignPaths) -> dict | None:
    """Returns the proposal the campaign's live runner waits on (its live.json record), or None."""
    state = read_json(paths.live) or {}
    proposal = state.get("waiting_proposal")
    if not isinstance(proposal, dict) or not process_alive(state.get("runner_pid")):
        return None
    return proposal


def decide_from_outside(paths: CampaignPaths, choice: str, reason: str = "", experiment: int | None = None) -> dict:
    """Writes the answer to the waiting proposal to .autoresearch/decision.json, where the runner's
    gate reads it (the sidebar and `autoresearch approve|skip` in another terminal); returns the record."""
    if choice not in OUTSIDE_CHOICES:
        raise CampaignError(f"from another process a proposal can be answered with {', '.join(OUTSIDE_CHOICES)}, "
                            f"not {choice!r} (`autoresearch stop` stops the loop)")
    proposal = waiting_proposal(paths)
    if proposal is None:
        raise NoProposalWaiting("the campaign is not waiting on a proposal: nothing to run or skip "
                                "(start the loop with --approve)")
    number = proposal.get("experiment")
    if experiment is not None and experiment != number:
        raise NoProposalWaiting(f"proposal #{experiment} is no longer waiting (#{number} is): "
                                "refresh and decide again")
    record = {"experiment": number, "decision": choice, "reason": (reason or "").strip(), "decided_at": time.time()}
    write_json_atomic(paths.decision, record)
    return record


# -- the terminal front end ------------------------------------------------------------------------

PROMPT = "[r]un  [e]dit  [s]kip  [q]uit (stop the loop)? "


def terminal_prompt(info: ProposalInfo, cancel: threading.Event | None = None, *,
                    tty_in=None, tty_out=None) -> Decision | None:
    """Shows the proposal on the terminal and reads r/e/s/q; returns the Decision, or None when
    `cancel` was set (answered elsewhere) or the terminal closed. Edit opens $VISUAL or $EDITOR
    (default vi) on a temporary copy of each changed file and returns the edited content."""
    cancel = cancel or threading.Event()
    own = None
    if tty_in is None:
        if sys.stdin is not None and sys.stdin.isatty():
            tty_in, tty_out = sys.stdin, sys.stdout
        else:
            try:
                own = tty_in = tty_out = open("/dev/tty", "r+")
            except OSError:
                return None  # no terminal: the sidebar, the magics or the timeout answer instead
    try:
        return _converse(info, cancel, tty_in, tty_out or tty_in)
    finally:
        if own is not None:
            own.close()


def _converse(info: ProposalInfo, cancel: threading.Event, tty_in, tty_out) -> Decision | None:
    def say(text: str) -> None:
        tty_out.write(text)
        tty_out.flush()

    similar = (info.similarity or {}).get("message") if (info.similarity or {}).get("kind") else ""
    say(f"\nProposal #{info.experiment}: {info.description}\n" + (f"  note: {similar}\n" if similar else "")
        + (info.diff.rstrip("\n") + "\n" if info.diff else "(no change to the editable files)\n"))
    while True:
        say(PROMPT)
        line = _read_line(tty_in, cancel)
        if line is None:
            return None
        key = line.strip().lower()[:1]
        if key == "r":
            return Decision("run", source="terminal")
        if key == "q":
            return Decision("stop", "stopped from the terminal", source="terminal")
        if key == "s":
            say("reason (optional, Enter for none): ")
            reason = _read_line(tty_in, cancel)
            return None if reason is None else Decision("skip", reason.strip(), source="terminal")
        if key == "e":
            try:
                edited = edit_in_editor(info.files, tty_in, tty_out)
            except CampaignError as exc:
                say(f"{exc}\n")
                continue
            return Decision("edit", "edited before running", files=edited, source="terminal")
        say("type r, e, s or q, then Enter\n")


def _read_line(stream, cancel: threading.Event) -> str | None:
    """Returns one line typed on `stream`, or None when `cancel` is set first or the stream ends.
    Waits with select() so a decision taken elsewhere ends the wait within POLL_S."""
    fd = stream.fileno()
    chunks = b""
    while not cancel.is_set():
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        data = os.read(fd, 1024)
        if not data:
            return None
        chunks += data
        if b"\n" in chunks or b"\r" in chunks:
            return chunks.decode("utf-8", errors="replace").splitlines()[0]
    return None


def edit_in_editor(files: dict, tty_in=None, tty_out=None, editor: str | None = None) -> dict:
    """Opens `editor` ($VISUAL, $EDITOR, else vi) on a temporary copy of each file; returns {path: edited text}."""
    if not files:
        raise CampaignError("this proposal changes no file: there is nothing to edit (run or skip it)")
    command = shlex.split(editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    edited = {}
    with tempfile.TemporaryDirectory(prefix="autoresearch-edit-") as tmp:
        for path, text in files.items():
            copy = Path(tmp) / Path(path).name
            copy.write_text(text)
            try:
                done = subprocess.run([*command, str(copy)], stdin=tty_in, stdout=tty_out, check=False)
            except OSError as exc:
                raise CampaignError(f"could not start the editor {command[0]!r} ({exc.strerror or exc}): "
                                    f"set $EDITOR to an editor on the PATH") from None
            if done.returncode != 0:
                raise CampaignError(f"the editor exited with code {done.returncode}; the proposal is unchanged")
            edited[path] = copy.read_text()
    return edited
