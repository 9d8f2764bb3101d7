"""Parallel batches on the local executor: the batch ratchet, commits and refs, rows, stop, recovery."""
from __future__ import annotations

import socket
import threading

import pytest

from autoresearch_magics.core.executors.base import TaskSpec
from autoresearch_magics.core.executors.local import LocalPoolExecutor
from autoresearch_magics.core.executors.worker import node_data_dir
from autoresearch_magics.core.ledger import experiment_ref
from autoresearch_magics.core.live import write_json_atomic
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.proposers import Proposal, Proposer, RerunProposer

from test_parallel_support import (ValuesProposer, alive, in_thread, pids_of, rows_by_experiment,
                                   script_campaign, wait_for)


def test_batch_keeps_only_its_best_candidate_and_keeps_every_ref(tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=LocalPoolExecutor())  # the baseline alone
    proposer = ValuesProposer({"VALUE": 0.9, "SLEEP_S": 0.8}, {"VALUE": 0.8, "SLEEP_S": 0.8},
                              {"VALUE": 0.95, "SLEEP_S": 0.8})
    results = run_loop(campaign, proposer, 3, executor=LocalPoolExecutor(), parallel=3)

    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in (1, 2, 3, 4)] == ["keep", "discard", "keep", "discard"]
    assert "experiment 3 did better in the same batch" in rows[2][0]["evidence"]
    refs = campaign.ledger.experiment_refs("t")
    assert len({refs[2], refs[3], refs[4]}) == 3                 # each candidate its own commit
    assert {campaign.ledger.parent(refs[n]) for n in (2, 3, 4)} == {refs[1]}  # all from the same best
    assert campaign.ledger.tip() == refs[3]                       # the branch moved to the winner only
    assert "VALUE = 0.8" in (campaign.paths.root / "train.py").read_text()
    assert not campaign.ledger.changed_paths(["train.py"])
    for row in campaign.rows():
        assert row["launcher"] == "local" and row["job_id"].isdigit() and row["node"] == socket.gethostname()
    batch = [r for r in results if r.experiment > 1]
    assert max(r.summary["t_start"] for r in batch) < min(r.summary["t_end"] for r in batch)  # ran at once
    assert proposer.observed == [("VALUE=0.9 SLEEP_S=0.8", "discard"), ("VALUE=0.8 SLEEP_S=0.8", "keep"),
                                 ("VALUE=0.95 SLEEP_S=0.8", "discard")]


def test_the_first_batch_runs_the_baseline_beside_proposals_judged_against_it(tmp_path):
    campaign = script_campaign(tmp_path)
    proposer = ValuesProposer({"VALUE": 1.1, "SLEEP_S": 0.8}, {"VALUE": 0.8, "SLEEP_S": 0.8},
                              {"VALUE": 0.9, "SLEEP_S": 0.8})
    results = run_loop(campaign, proposer, 3, executor=LocalPoolExecutor(), parallel=3)
    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in (1, 2, 3)] == ["keep", "discard", "keep"]   # baseline + 2 at once
    assert "vs best 1.000000" in rows[2][0]["evidence"] and "vs best 1.000000" in rows[3][0]["evidence"]
    first = [r for r in results if r.experiment <= 3]
    assert max(r.summary["t_start"] for r in first) < min(r.summary["t_end"] for r in first)  # ran at once
    assert rows[4][0]["status"] == "discard" and "vs best 0.800000" in rows[4][0]["evidence"]
    assert campaign.ledger.tip() == campaign.ledger.experiment_refs("t")[3]


def test_rerun_batch_is_one_commit_under_distinct_numbers_and_refs(tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, RerunProposer(), 3, executor=LocalPoolExecutor(), parallel=3)
    refs = campaign.ledger.experiment_refs("t")
    assert sorted(refs) == [1, 2, 3, 4]
    assert len(set(refs.values())) == 1                            # the tip, re-run
    assert [r["status"] for r in campaign.rows()] == ["keep", "discard", "discard", "discard"]


def test_working_copy_proposals_start_from_the_same_place(tmp_path):
    class AppendLine(Proposer):
        """Edits train.py in place, as a coding agent does."""
        name = "append"

        def __init__(self):
            self.n = 0

        def propose(self, campaign):
            self.n += 1
            path = campaign.paths.root / "train.py"
            path.write_text(path.read_text() + f"# idea {self.n}\n")
            return Proposal(f"idea {self.n}")

    campaign = script_campaign(tmp_path)
    before = (campaign.paths.root / "train.py").read_text()
    run_loop(campaign, AppendLine(), 3, executor=LocalPoolExecutor(), parallel=3)
    refs = campaign.ledger.experiment_refs("t")
    for n, idea in ((2, 1), (3, 2), (4, 3)):
        text = campaign.ledger.read_file(refs[n], "train.py")
        assert text == before + f"# idea {idea}\n"                 # one idea each, not piled up
    assert (campaign.paths.root / "train.py").read_text() == before  # nothing kept: the working copy is back


def test_stop_cancels_every_running_experiment_and_kills_its_group(tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=LocalPoolExecutor())  # the baseline alone
    stop = threading.Event()
    proposer = ValuesProposer(*[{"VALUE": 0.5, "SLEEP_S": 60, "SPAWN": True}] * 3)
    thread, box = in_thread(run_loop, campaign, proposer, None, executor=LocalPoolExecutor(),
                            parallel=2, stop_event=stop)
    pids = [wait_for(lambda n=n: pids_of(campaign, n)) for n in (2, 3)]
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and "error" not in box
    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["crash_reason"] for n in (2, 3)] == ["stopped by user", "stopped by user"]
    assert 4 not in rows                                          # never proposed: only two slots
    assert all(not alive(pid) for group in pids for pid in group)
    assert not campaign.paths.current.exists()


def test_repeats_rule_gets_its_extra_runs_inside_the_batch(tmp_path):
    campaign = script_campaign(tmp_path, keep_rule="repeats", noise_runs=2, repeats=2)
    proposer = ValuesProposer({"VALUE": 0.5}, {"VALUE": 2.0})
    run_loop(campaign, proposer, 2, executor=LocalPoolExecutor(), parallel=4)
    rows = rows_by_experiment(campaign)
    assert [r["run"] for r in rows[1]] == ["1", "2"]               # noise runs of the baseline
    assert [(r["run"], r["status"]) for r in rows[2]] == [("1", "keep"), ("2", "keep")]
    assert [(r["run"], r["status"]) for r in rows[3]] == [("1", "discard")]  # worse at once: no repeat


def test_runs_of_a_batch_that_lost_its_runner_are_recorded_as_interrupted(tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=LocalPoolExecutor())
    tip = campaign.ledger.tip()
    campaign.ledger.set_ref(experiment_ref("t", 2), tip)
    journal = {"runner_pid": 1, "launcher": "ray", "working_copy": None, "runs": [
        {"experiment": 2, "run": 1, "commit": tip, "parent": tip, "description": "idea", "started_at": "",
         "seed": None, "log": "logs/0002.log", "job_id": "abc", "node": "n1"}]}
    write_json_atomic(campaign.paths.current, journal)
    campaign.status(), campaign.frame()
    assert 2 not in rows_by_experiment(campaign)                  # reading records nothing
    assert campaign.recover().recorded == [2]
    row = rows_by_experiment(campaign)[2][0]
    assert (row["status"], row["crash_reason"], row["launcher"], row["job_id"], row["node"]) == \
        ("crash", "interrupted", "ray", "abc", "n1")
    write_json_atomic(campaign.paths.current, journal)            # left again: recorded once
    assert campaign.recover().recorded == [] and len(rows_by_experiment(campaign)[2]) == 1


def test_data_folder_is_the_campaigns_when_visible_else_a_per_node_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tmp_path / "cache"))
    spec = TaskSpec(1, 1, "nov22", "true", {}, [], {}, 10, 1000, data_dir=str(tmp_path))
    assert node_data_dir(spec) == str(tmp_path)
    spec.data_dir = "/nonexistent/elsewhere/data"
    assert node_data_dir(spec) == str(tmp_path / "cache" / "data" / "nov22")
    assert (tmp_path / "cache" / "data" / "nov22").is_dir()


def test_cli_loop_runs_batches_with_the_parallel_flag(tmp_path, capsys):
    from autoresearch_magics import cli
    if "--parallel" not in cli.build_parser()._subparsers._group_actions[0].choices["loop"].format_help():
        pytest.skip("the CLI has no --parallel yet")
    campaign = script_campaign(tmp_path)
    assert cli.main(["loop", "-C", str(campaign.paths.root), "--parallel", "3", "--max", "3"]) == 0
    rows = rows_by_experiment(campaign)
    assert sorted(rows) == [1, 2, 3, 4] and {r[0]["launcher"] for r in rows.values()} == {"local"}
    assert cli.main(["loop", "-C", str(campaign.paths.root), "--executor", "ray", "--address", "127.0.0.1:1"]) == 2
    assert "no Ray cluster at 127.0.0.1:1" in capsys.readouterr().err
