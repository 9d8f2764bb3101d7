"""Crash reasons name what is known: a signal from outside is not called out of memory."""
from __future__ import annotations

from autoresearch_magics import Campaign

from helpers import SUMMARY_SCRIPT, write_script


def test_a_run_killed_by_sigterm_is_not_called_out_of_memory(tmp_path):
    write_script(tmp_path, SUMMARY_SCRIPT)
    campaign = Campaign.init(tmp_path, tag="t", budget_s=30)
    campaign.run("baseline")
    write_script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    campaign.run("terminated from outside")
    reason = campaign.rows()[-1]["crash_reason"]
    assert "killed by signal SIGTERM from outside the run" in reason and "memory" not in reason


def test_a_small_run_killed_by_sigkill_is_not_called_out_of_memory(tmp_path):
    write_script(tmp_path, SUMMARY_SCRIPT)
    campaign = Campaign.init(tmp_path, tag="t", budget_s=30)
    campaign.run("baseline")
    write_script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    campaign.run("killed")
    reason = campaign.rows()[-1]["crash_reason"]
    assert reason.endswith("killed by signal SIGKILL by another process (not by this tool)")
