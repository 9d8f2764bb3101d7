"""Approve mode from the front ends: a real kernel answered with %autoresearch approve / skip while
the loop waits, the terminal prompt through a pseudo-terminal, and the CLI verbs of another process."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient

from autoresearch_magics import Campaign
from autoresearch_magics.core.notes import latest_notes, skipped_proposals

from test_copilot_engine import AGENT
from test_kernel import kernel_name, text_of  # noqa: F401 (the kernelspec fixture)

WAIT_FOR_PROPOSAL = """
import json, time
from pathlib import Path
live = Path("campaign/.autoresearch/live.json")
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    state = json.loads(live.read_text()) if live.exists() else {{}}
    if (state.get("waiting_proposal") or {{}}).get("experiment") == {number}:
        break
    time.sleep(0.1)
print("waiting:", state.get("waiting_proposal", {{}}).get("description"))
"""


def _agent(tmp_path, monkeypatch) -> str:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    (tmp_path / "prompts").mkdir()
    monkeypatch.setenv("PROMPT_LOG", str(tmp_path / "prompts"))
    return f"{sys.executable} {script}"


def test_kernel_loop_waits_while_cells_answer_with_skip_and_approve(tmp_path, kernel_name, monkeypatch):
    agent = _agent(tmp_path, monkeypatch)
    cells = [
        "%load_ext autoresearch_magics",
        "%autoresearch init campaign --tag k --template toy --budget 0.05",
        '%autoresearch note "widths above 200 do not fit"',
        f'%autoresearch loop --proposer agent --agent-cmd "{agent}" --approve --max 2',
        WAIT_FOR_PROPOSAL.format(number=2),
        '%autoresearch skip -m "why: not this one"',
        WAIT_FOR_PROPOSAL.format(number=2),
        "%autoresearch approve",
        "%autoresearch wait",
        "%autoresearch status --text",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert "waiting: width 160" in text_of(nb.cells[4])
    assert "proposal #2 skipped: why: not this one" in text_of(nb.cells[5])
    assert "proposal #2 runs" in text_of(nb.cells[7])
    campaign = Campaign.open(tmp_path / "campaign")
    assert [row["description"] for row in campaign.rows()][0] == "baseline" and len(campaign.rows()) == 2
    [skipped] = skipped_proposals(campaign.paths)
    assert skipped.reason == "why: not this one"
    assert [n.text for n in latest_notes(campaign.paths)] == ["widths above 200 do not fit"]
    second = (tmp_path / "prompts" / "prompt2.txt").read_text()
    assert "why: not this one" in second and "widths above 200 do not fit" in second


def test_kernel_stop_at_a_waiting_proposal_ends_the_loop_cleanly(tmp_path, kernel_name, monkeypatch):
    agent = _agent(tmp_path, monkeypatch)
    cells = [
        "%load_ext autoresearch_magics",
        "%autoresearch init campaign --tag k --template toy --budget 0.05",
        f'%autoresearch loop --proposer agent --agent-cmd "{agent}" --approve',
        WAIT_FOR_PROPOSAL.format(number=2),
        "%autoresearch stop",
        "%autoresearch wait",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert "stopping the loop at proposal #2" in text_of(nb.cells[4])
    assert "failed" not in text_of(nb.cells[5])
    campaign = Campaign.open(tmp_path / "campaign")
    assert [row["description"] for row in campaign.rows()] == ["baseline"]
    assert not skipped_proposals(campaign.paths)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_terminal_loop_shows_the_proposal_and_s_skips_it(tmp_path, monkeypatch):
    agent = _agent(tmp_path, monkeypatch)
    folder = tmp_path / "c"
    assert _cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch_magics.cli", "loop", "-C", str(folder),
                             "--proposer", "agent", "--agent-cmd", agent, "--approve", "--max", "1"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = ""

    def expect(text, timeout=90):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < deadline, f"never saw {text!r} in {seen!r}"
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 4096).decode(errors="replace")
                except OSError:
                    assert text in seen, f"never saw {text!r} in {seen!r}"
        return seen

    try:
        screen = expect("[q]uit")
        assert "Proposal #2: width 160" in screen and "+WIDTH = 160" in screen
        os.write(master, b"s\n")
        expect("reason")
        os.write(master, b"too wide for now\n")
        expect("skipped proposal")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    campaign = Campaign.open(folder)
    assert [row["description"] for row in campaign.rows()] == ["baseline"]
    assert [s.reason for s in skipped_proposals(campaign.paths)] == ["too wide for now"]


def test_cli_note_and_answers_without_a_waiting_proposal(tmp_path):
    folder = tmp_path / "c"
    assert _cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    done = _cli("note", "-C", str(folder), "try", "a smaller learning rate")
    assert done.returncode == 0 and "try a smaller learning rate" in done.stdout
    assert [n.text for n in latest_notes(Campaign.open(folder).paths)] == ["try a smaller learning rate"]
    refused = _cli("skip", "-C", str(folder), "-m", "no")
    assert refused.returncode == 2 and "not waiting on a proposal" in refused.stderr and "--approve" in refused.stderr
