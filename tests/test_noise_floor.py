"""status states the campaign's noise floor once repeats measured it, and what the keep rule can detect."""
from __future__ import annotations

from autoresearch_magics import Campaign
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.presentation.text import format_status

from helpers import write_script
from test_parallel_support import ValuesProposer

NOISY = ("import os, random\n"
         "random.seed(int(os.environ.get('AUTORESEARCH_SEED', '1')))\n"
         "print('---')\nprint(f'val_bpb: {1.0 + random.gauss(0, 0.01):.6f}')\n")


def test_status_names_no_noise_floor_before_anything_ran_twice(tmp_path):
    write_script(tmp_path, NOISY)
    campaign = Campaign.init(tmp_path, tag="t", budget_s=30)
    campaign.run("baseline")
    assert campaign.status()["noise"] is None
    assert "noise floor" not in format_status(campaign.status())


def test_status_states_the_noise_floor_and_the_smallest_gain_repeats_keeps(tmp_path):
    write_script(tmp_path, NOISY)
    campaign = Campaign.init(tmp_path, tag="t", budget_s=30, keep_rule="repeats")
    run_loop(campaign, ValuesProposer(), None)        # the baseline and its noise runs, nothing more
    noise = campaign.status()["noise"]
    assert noise["df"] >= 1 and 0 < noise["sd"] < 0.1
    assert noise["smallest_gain"] > 2 * noise["sd"] * (1 / 3 + 1 / 5) ** 0.5   # t(0.95, 4) > 2
    text = format_status(campaign.status())
    assert f"smallest gain the repeats rule keeps: {noise['smallest_gain']:.6f}" in text
