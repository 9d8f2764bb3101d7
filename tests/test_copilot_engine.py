"""Approve mode, skip reasons in the agent's prompt and the memory of what was tried, through the one loop."""
import sys
import textwrap
import threading

from autoresearch_magics import Campaign
from autoresearch_magics.core.approval import ApprovalGate
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.notes import skipped_proposals
from autoresearch_magics.core.proposers import make_proposer

# widens the model to WIDTH + 32 each time (or always to 32, a worse model, with SAME=1) and saves each prompt it gets
AGENT = textwrap.dedent("""
    import os, re, sys
    prompt = sys.stdin.read()
    log = os.environ["PROMPT_LOG"]
    count = len([n for n in os.listdir(log)])
    open(os.path.join(log, f"prompt{count + 1}.txt"), "w").write(prompt)
    text = open("train.py").read()
    width = int(re.search(r"^WIDTH = (\\d+)", text, re.M).group(1))
    new = 32 if os.environ.get("SAME") else width + 32
    open("train.py", "w").write(re.sub(r"^WIDTH = \\d+", f"WIDTH = {new}", text, flags=re.M))
    open(os.environ["AUTORESEARCH_DESCRIPTION_FILE"], "w").write(f"width {new}\\n")
""")


class Messages(CampaignListener):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


def _setup(tmp_path, monkeypatch, same=False):
    campaign = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    log = tmp_path / "prompts"
    log.mkdir()
    monkeypatch.setenv("PROMPT_LOG", str(log))
    if same:
        monkeypatch.setenv("SAME", "1")
    agent = make_proposer(campaign, "agent", agent_cmd=f"{sys.executable} {script}")
    return campaign, agent, log


def _answer(gate, decisions):
    """Answers the gate's proposals in turn from another thread, as the magics and buttons do."""
    def work():
        for choice, reason in decisions:
            while gate.waiting is None:
                threading.Event().wait(0.05)
            number = gate.waiting.experiment
            assert gate.decide(choice, reason, experiment=number)
            while gate.waiting is not None and gate.waiting.experiment == number:
                threading.Event().wait(0.05)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_approved_proposal_runs(tmp_path, monkeypatch):
    campaign, agent, _ = _setup(tmp_path, monkeypatch)
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    answering = _answer(gate, [("run", "")])
    results = run_loop(campaign, agent, 1, gate=gate)
    answering.join(5)
    assert [r.description for r in results] == ["baseline", "width 160"]
    assert results.ended_by == "maximum" and not skipped_proposals(campaign.paths)


def test_skipped_proposal_is_not_run_and_its_reason_reaches_the_next_prompt(tmp_path, monkeypatch):
    campaign, agent, log = _setup(tmp_path, monkeypatch)
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    answering = _answer(gate, [("skip", "width is not the bottleneck"), ("run", "")])
    results = run_loop(campaign, agent, 2, gate=gate)
    answering.join(5)
    # the agent proposed the skipped edit again: the user was told, and ran it as an approved repeat
    assert [r.description for r in results] == ["baseline", "width 160 (approved repeat of experiment 2)"]
    assert len(campaign.rows()) == 2
    [skipped] = skipped_proposals(campaign.paths)
    assert skipped.reason == "width is not the bottleneck" and skipped.description == "width 160"
    assert "width is not the bottleneck" not in (log / "prompt1.txt").read_text()
    assert "width is not the bottleneck" in (log / "prompt2.txt").read_text()


def test_stop_at_a_proposal_ends_the_loop_cleanly(tmp_path, monkeypatch):
    campaign, agent, _ = _setup(tmp_path, monkeypatch)
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    answering = _answer(gate, [("stop", "enough")])
    results = run_loop(campaign, agent, 5, gate=gate)
    answering.join(5)
    assert [r.description for r in results] == ["baseline"]
    assert results.ended_by == "stop requested" and not results.failed
    assert not skipped_proposals(campaign.paths)


def test_edit_hands_the_proposal_over_and_ends_the_loop(tmp_path, monkeypatch):
    campaign, agent, _ = _setup(tmp_path, monkeypatch)
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    handed = []
    answering = _answer(gate, [("edit", "")])
    results = run_loop(campaign, agent, 5, gate=gate, on_edit=handed.append)
    answering.join(5)
    assert results.ended_by == "edit" and not results.failed
    assert [p.description for p in handed] == ["width 160"] and "WIDTH = 160" in handed[0].files["train.py"]
    assert [r.description for r in results] == ["baseline"]


def test_a_repeated_edit_is_not_run_again_and_names_the_experiment_it_repeats(tmp_path, monkeypatch):
    campaign, agent, _ = _setup(tmp_path, monkeypatch, same=True)
    listener = Messages()
    results = run_loop(campaign, agent, 2, listener=listener)
    assert [r.description for r in results] == ["baseline", "width 32"]
    assert results.ended_by == "maximum"     # the skipped repeat counted toward --max
    [skipped] = skipped_proposals(campaign.paths)
    assert skipped.source == "repeat" and skipped.repeat_of == 2
    said = [line for line in listener.lines if line.startswith("skipped proposal")]
    assert len(said) == 1 and "experiment 2" in said[0]


def test_an_agent_that_only_repeats_itself_ends_the_loop(tmp_path, monkeypatch):
    campaign, agent, _ = _setup(tmp_path, monkeypatch, same=True)
    results = run_loop(campaign, agent)
    assert [r.description for r in results] == ["baseline", "width 32"]
    assert results.ended_by == "proposal failures" and len(skipped_proposals(campaign.paths)) == 3


def test_a_skipped_sweep_trial_is_pruned_not_left_running(tmp_path):
    import optuna
    campaign = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    sweep = make_proposer(campaign, "sweep", space="WIDTH=int(100,400)")
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    answering = _answer(gate, [("skip", "not now")])
    results = run_loop(campaign, sweep, 1, gate=gate)
    answering.join(5)
    assert [r.description for r in results] == ["baseline"]
    assert [t.state for t in sweep.study.trials] == [optuna.trial.TrialState.PRUNED]


def test_panel_shows_the_waiting_proposal_and_its_skip_button_answers_with_the_reason(tmp_path):
    from autoresearch_magics.core.approval import ProposalInfo
    from autoresearch_magics.presentation.panel import ExperimentPanel
    campaign = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    panel = ExperimentPanel("val_bpb", 0.05, "agent", kind="loop")
    view = panel.attach_gate(gate)
    info = ProposalInfo(2, "widen the model", "--- a/train.py\n+++ b/train.py\n-WIDTH = 128\n+WIDTH = 256\n",
                        similarity={"kind": "near", "message": "close to experiment 1 (discard)"})
    decisions = []
    asking = threading.Thread(target=lambda: decisions.append(gate.ask(info)))
    asking.start()
    deadline = __import__("time").monotonic() + 10
    while "waiting for approval" not in view.summary.value:
        assert __import__("time").monotonic() < deadline
        threading.Event().wait(0.05)
    static = panel.static_html()
    assert "waiting for approval" in static and "widen the model" in static and "close to experiment 1" in static
    view.reason.value = "widths were tried"
    view.buttons["Skip"].click()
    asking.join(5)
    assert decisions[0].choice == "skip" and decisions[0].reason == "widths were tried"
    panel._batch.flush(wait=True)
    assert view.widget.layout.display == "none" and "waiting for approval" not in panel.static_html()
    assert not view.buttons["Run"].click() and gate.waiting is None   # a late click answers nothing


def test_status_show_and_report_tell_the_notes_and_skipped_proposals(tmp_path, monkeypatch):
    from autoresearch_magics.core.notes import add_note
    from autoresearch_magics.presentation.report import campaign_report
    from autoresearch_magics.presentation.text import format_show, format_status
    campaign, agent, _ = _setup(tmp_path, monkeypatch)
    add_note(campaign.paths, "keep the model small")
    gate = ApprovalGate(campaign.paths, poll_s=0.05)
    answering = _answer(gate, [("skip", "too wide")])
    run_loop(campaign, agent, 1, gate=gate)
    answering.join(5)
    status = format_status(campaign.status())
    assert "keep the model small" in status and "skipped proposals: 1" in status
    shown = format_show(campaign.show(2))
    assert "proposal 2 skipped" in shown and "reason: too wide" in shown and "+WIDTH = 160" in shown
    report = campaign_report(campaign)
    assert "## Notes" in report and "keep the model small" in report
    assert "## Skipped proposals" in report and "| 2 | width 160 | user | too wide |" in report
