"""The approve gate: published in live.json, answered from the kernel, the sidebar's route, a stop,
a timeout, or a terminal (driven through a real pseudo-terminal)."""
import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from autoresearch_magics.core.approval import ApprovalGate, Decision, ProposalInfo
from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.live import read_json, read_live, write_json_atomic
from autoresearch_magics.core.paths import CampaignPaths
from autoresearch_magics.server import proposals

INFO = ProposalInfo(7, "widen the model", "-WIDTH = 128\n+WIDTH = 256\n", {"train.py": "WIDTH = 256\n"},
                    similarity={"kind": "same-values", "experiment": 3, "verdict": "discard",
                                "message": "WIDTH=256 already tried in experiment 3 (discard)"},
                    proposer="agent", budget_s=60.0)


@pytest.fixture
def paths(tmp_path):
    paths = CampaignPaths.of(tmp_path)
    paths.state.mkdir()
    return paths


class Asking:
    """Runs gate.ask(info) on a worker thread, as the loop does; `.result` holds the Decision."""

    def __init__(self, gate, info=INFO, **kwargs):
        self.result = None
        self.thread = threading.Thread(target=self._ask, args=(gate, info, kwargs), daemon=True)
        self.thread.start()

    def _ask(self, gate, info, kwargs):
        self.result = gate.ask(info, **kwargs)

    def join(self):
        self.thread.join(20)
        assert not self.thread.is_alive(), "the gate is still waiting"
        return self.result


def wait_for_waiting(paths, experiment=INFO.experiment):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = read_json(paths.live) or {}
        if (state.get("waiting_proposal") or {}).get("experiment") == experiment:
            return state
        time.sleep(0.02)
    raise AssertionError("the proposal was never published")


def test_the_sidebar_route_skips_the_published_proposal_and_live_json_gets_its_old_record_back(paths):
    previous = {"state": "finished", "experiment": 6, "runner_pid": os.getpid(), "outcome": {"status": "keep"}}
    write_json_atomic(paths.live, previous)
    asking = Asking(ApprovalGate(paths))
    state = wait_for_waiting(paths)
    assert read_live(paths)["experiment"] == 7  # the sidebar's "running" record carries the proposal
    assert state["waiting_proposal"] == {**INFO.waiting_record()}
    assert state["waiting_proposal"]["similar"]["experiment"] == 3
    assert {"budget_s", "elapsed_s", "training_fraction", "tail", "rss_mb"} <= set(state)
    written = proposals.decide(paths.root, {"decision": "skip", "reason": "widths were tried", "experiment": 7})
    assert written["written"]
    assert asking.join() == Decision("skip", "widths were tried", source="sidebar")
    assert read_json(paths.live) == previous and not paths.decision.exists()
    with pytest.raises(proposals.NoProposalWaiting):
        proposals.decide(paths.root, {"decision": "run", "reason": "", "experiment": None})


def test_a_decision_from_the_kernel_is_taken_at_once_and_a_late_one_is_refused(paths):
    gate = ApprovalGate(paths)
    assert not gate.decide("run")  # nothing waits
    asking = Asking(gate)
    wait_for_waiting(paths)
    assert gate.waiting == INFO
    assert not gate.decide("run", experiment=8)  # not the waiting one
    assert gate.decide("run", " looks right ", experiment=7)
    assert asking.join() == Decision("run", "looks right", source="kernel")
    assert not gate.decide("skip") and gate.waiting is None
    assert not paths.live.exists()  # there was no record before: none is left behind
    with pytest.raises(CampaignError, match="run, edit, skip, stop"):
        gate.decide("maybe")


def test_a_stale_answer_for_another_proposal_is_dropped(paths):
    write_json_atomic(paths.decision, {"experiment": 6, "decision": "run", "reason": ""})
    gate = ApprovalGate(paths)
    asking = Asking(gate)
    wait_for_waiting(paths)
    assert not paths.decision.exists()
    write_json_atomic(paths.decision, {"experiment": 5, "decision": "run", "reason": ""})
    time.sleep(0.5)
    assert asking.thread.is_alive()  # still waiting: that answer was for another proposal
    gate.decide("skip", "no")
    assert asking.join().choice == "skip"


def test_stop_event_and_stop_request_file_both_stop(paths):
    stop = threading.Event()
    gate = ApprovalGate(paths, stop_event=stop)
    asking = Asking(gate)
    wait_for_waiting(paths)
    stop.set()
    assert asking.join().choice == "stop"

    gate = ApprovalGate(paths)
    asking = Asking(gate)
    wait_for_waiting(paths)
    paths.stop_request.touch()  # what the sidebar's Stop button leaves
    assert asking.join() == Decision("stop", "stop requested", source="stop")
    assert not paths.stop_request.exists() and gate.stop_event.is_set()


def test_an_unanswered_proposal_takes_the_default_action_after_the_timeout(paths):
    assert ApprovalGate(paths, timeout_s=0.3).ask(INFO) == Decision("skip", "no answer within 0.3 s", source="timeout")
    assert ApprovalGate(paths, on_timeout="run").ask(INFO, timeout_s=0.3).choice == "run"
    with pytest.raises(CampaignError, match="skip, run, stop"):
        ApprovalGate(paths, on_timeout="edit")
    with pytest.raises(CampaignError, match="positive"):
        ApprovalGate(paths, timeout_s=0)


# -- the terminal, through a real pseudo-terminal ---------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys, threading
    from autoresearch_magics.core.approval import ApprovalGate, ProposalInfo, terminal_prompt
    from autoresearch_magics.core.paths import CampaignPaths
    info = ProposalInfo(**json.loads(sys.argv[2]))
    if sys.argv[1] == "prompt":
        decision = terminal_prompt(info)
    else:  # the gate with the terminal as its front end; the sidebar may answer first
        decision = ApprovalGate(CampaignPaths.of(sys.argv[3]), front_end=terminal_prompt).ask(info)
    print("DECISION " + json.dumps(decision.__dict__) + " END", flush=True)
""")

EDITOR = textwrap.dedent("""
    import sys
    path = sys.argv[1]
    text = open(path).read()
    open(path, "w").write(text.replace("WIDTH = 256", "WIDTH = 192  # halfway"))
""")


class Terminal:
    """A child process whose controlling terminal is a pseudo-terminal this test types into."""

    def __init__(self, tmp_path, mode, *extra, env=None):
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        info = {k: v for k, v in INFO.__dict__.items()}
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, str(script), mode, json.dumps(info), *extra],
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env={**os.environ, **(env or {})})
        os.close(slave)
        self.seen = ""

    def expect(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    assert text in self.seen, f"never saw {text!r} in {self.seen!r}"
        return self.seen

    def type(self, line):
        os.write(self.master, line.encode() + b"\n")

    def decision(self):
        self.expect(" END")
        text = self.seen.split("DECISION ", 1)[1].split(" END", 1)[0]
        assert self.proc.wait(20) == 0
        os.close(self.master)
        return json.loads(text)


def test_terminal_shows_the_proposal_and_skip_asks_for_a_reason(tmp_path):
    term = Terminal(tmp_path, "prompt")
    screen = term.expect("[q]uit")
    assert "Proposal #7: widen the model" in screen and "+WIDTH = 256" in screen
    assert "already tried in experiment 3" in screen
    term.type("x")
    term.expect("type r, e, s or q")
    term.type("s")
    term.expect("reason")
    term.type("too big for this GPU")
    assert term.decision() == {"choice": "skip", "reason": "too big for this GPU", "files": None,
                               "source": "terminal"}


def test_terminal_edit_opens_the_editor_on_a_copy_and_returns_the_edited_content(tmp_path):
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    term = Terminal(tmp_path, "prompt", env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""})
    term.expect("[q]uit")
    term.type("e")
    decision = term.decision()
    assert decision["choice"] == "edit" and decision["files"] == {"train.py": "WIDTH = 192  # halfway\n"}


def test_terminal_run_and_quit(tmp_path):
    term = Terminal(tmp_path, "prompt")
    term.expect("[q]uit")
    term.type("r")
    assert term.decision()["choice"] == "run"
    term = Terminal(tmp_path, "prompt")
    term.expect("[q]uit")
    term.type("q")
    assert term.decision()["choice"] == "stop"


def test_a_sidebar_answer_ends_the_terminal_prompt_of_a_waiting_gate(tmp_path):
    paths = CampaignPaths.of(tmp_path / "campaign")
    paths.state.mkdir(parents=True)
    term = Terminal(tmp_path, "gate", str(paths.root))
    term.expect("[q]uit")
    wait_for_waiting(paths)
    proposals.decide(paths.root, {"decision": "run", "reason": "", "experiment": 7})
    assert term.decision() == {"choice": "run", "reason": "", "files": None, "source": "sidebar"}


# -- review_proposal: the tried check and the gate, as the loop uses them ------------------------------

def _answer_when_waiting(gate, *args, **kwargs):
    """Answers the gate's next proposal from another thread, as the kernel's magics would."""
    def answer():
        deadline = time.monotonic() + 20
        while gate.waiting is None and time.monotonic() < deadline:
            time.sleep(0.02)
        gate.decide(*args, **kwargs)
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_review_skips_an_exact_repeat_without_a_gate_and_records_why(tmp_path):
    from autoresearch_magics import Campaign
    from autoresearch_magics.core.notes import skipped_proposals
    from autoresearch_magics.core.proposers import Proposal
    from autoresearch_magics.core.review import review_proposal
    c = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    c.run("baseline")
    text = (c.paths.root / "train.py").read_text()
    review = review_proposal(c, Proposal("same again", {"train.py": text}), proposer="agent")
    assert review.action == "skip" and review.reason.startswith("repeat of experiment 1 (keep")
    (skip,) = skipped_proposals(c.paths)
    assert (skip.experiment, skip.source, skip.repeat_of, skip.proposer) == (2, "repeat", 1, "agent")
    assert len(c.rows()) == 1  # no run row
    new = review_proposal(c, Proposal("higher LR", {"train.py": text.replace("0.003", "0.006")}))
    assert new.action == "run" and new.similarity.kind is None


def test_review_with_the_gate_runs_skips_edits_and_stops_and_the_skip_reason_reaches_the_next_prompt(paths):
    from autoresearch_magics import Campaign
    from autoresearch_magics.core.agent_prompt import build_prompt
    from autoresearch_magics.core.proposers import Proposal
    from autoresearch_magics.core.review import EDIT_IN_CELL_REASON, review_proposal
    c = Campaign.init(paths.root / "c", tag="t", template="toy", budget_s=0.05)
    c.run("baseline")
    text = (c.paths.root / "train.py").read_text()
    wider = Proposal("wider", {"train.py": text.replace("WIDTH = 128 ", "WIDTH = 512 ")})
    gate = ApprovalGate(c.paths)

    _answer_when_waiting(gate, "skip", "512 is too wide for this machine")
    review = review_proposal(c, wider, gate=gate, proposer="agent")
    assert review.action == "skip" and not c.paths.decision.exists()
    assert "'wider': 512 is too wide for this machine" in build_prompt(c, c.paths.root)

    _answer_when_waiting(gate, "run")
    again = review_proposal(c, Proposal("baseline again", {"train.py": text}), gate=gate)
    assert again.action == "run" and again.similarity.is_repeat
    assert again.proposal.description == "baseline again (approved repeat of experiment 1)"

    _answer_when_waiting(gate, "edit", files={"train.py": text.replace("WIDTH = 128 ", "WIDTH = 300 ")})
    edited = review_proposal(c, wider, gate=gate)
    assert edited.action == "run" and "WIDTH = 300" in edited.proposal.files["train.py"]
    assert edited.proposal.description == "wider (edited)"

    _answer_when_waiting(gate, "edit")
    to_cell = review_proposal(c, wider, gate=gate)
    assert to_cell.action == "edit" and to_cell.reason == EDIT_IN_CELL_REASON

    _answer_when_waiting(gate, "stop")
    assert review_proposal(c, wider, gate=gate).action == "stop"
    assert len(c.rows()) == 1
