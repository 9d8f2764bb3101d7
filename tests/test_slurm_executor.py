"""The Slurm adapter, through submitit's local executor (jobs run as processes of this machine)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("submitit")

from autoresearch_magics.core.executors.slurm import SlurmExecutor  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402

from test_parallel_support import (Recorder, ValuesProposer, alive, in_thread, pids_of,  # noqa: E402
                                   rows_by_experiment, script_campaign, wait_for)


def test_slurm_adapter_runs_a_batch_and_records_job_and_node(tmp_path):
    campaign = script_campaign(tmp_path)
    recorder = Recorder()
    proposer = ValuesProposer({"VALUE": 0.9, "SLEEP_S": 1.0}, {"VALUE": 0.8, "SLEEP_S": 1.0})
    executor = SlurmExecutor(tmp_path / "submitit", cluster="local")
    results = run_loop(campaign, ValuesProposer(), None, executor=executor)  # the baseline alone
    results += run_loop(campaign, proposer, 2, executor=executor, parallel=2, listener=recorder)

    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in (1, 2, 3)] == ["keep", "discard", "keep"]
    assert campaign.ledger.tip() == campaign.ledger.experiment_refs("t")[3]
    for n in (1, 2, 3):
        row = rows[n][0]
        assert row["launcher"] == "slurm" and row["job_id"].isdigit() and row["node"] == socket.gethostname()
    batch = [r for r in results if r.experiment > 1]
    assert max(r.summary["t_start"] for r in batch) < min(r.summary["t_end"] for r in batch)
    assert [r.summary["devices"] for r in results] == ["''"] * 3
    assert "val_bpb:          0.800000" in (campaign.paths.logs / "0003.log").read_text()
    assert any("devices=" in line for _, s in recorder.updates for line in s["tail"])  # followed while running


def test_slurm_stop_ends_the_jobs_and_their_process_groups(tmp_path):
    campaign = script_campaign(tmp_path)
    executor = SlurmExecutor(tmp_path / "submitit", cluster="local")
    run_loop(campaign, ValuesProposer(), None, executor=executor)
    stop = threading.Event()
    proposer = ValuesProposer({"VALUE": 0.5, "SLEEP_S": 60, "SPAWN": True})
    thread, box = in_thread(run_loop, campaign, proposer, None, executor=executor, parallel=1,
                            stop_event=stop)
    pids = wait_for(lambda: pids_of(campaign, 2))
    stop.set()
    thread.join(40)
    assert not thread.is_alive() and "error" not in box
    assert rows_by_experiment(campaign)[2][0]["crash_reason"] == "stopped by user"
    wait_for(lambda: all(not alive(pid) for pid in pids), 10)
