"""The Slurm executor against a real single-node Slurm (scripts/slurm_up.sh starts it): a batch at
--parallel 2, a job cancelled by someone else, a job Slurm requeues, a runner killed mid-batch."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from autoresearch_magics.core.executors import ExecutorError, make_executor  # noqa: E402
from autoresearch_magics.core.executors.base import TaskSink, TaskSpec  # noqa: E402
from autoresearch_magics.core.executors.scheduler_state import (SlurmJobState, slurm_ending,  # noqa: E402
                                                                 stepd_cause)
from autoresearch_magics.core.journal import read_journal  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402

from test_parallel_support import (Recorder, ValuesProposer, alive, in_thread, pids_of,  # noqa: E402
                                   rows_by_experiment, script_campaign, wait_for)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def partition():
    """The partition of the single-node Slurm this machine runs (started if need be)."""
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root to start slurmctld and slurmd")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no Slurm here and no apt-get to install slurm-wlm")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_up.sh")], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        if shutil.which("slurmctld") is None:
            pytest.skip(f"Slurm could not be installed: {done.stderr.strip()}")
        pytest.fail(f"scripts/slurm_up.sh failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


class Collect(TaskSink):
    """Keeps a task's events for a test that drives the executor directly."""

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.lines_seen: list[str] = []

    def started(self, job_id, node):
        self.events.put(("started", (job_id, node)))

    def lines(self, lines):
        self.lines_seen.extend(lines)

    def finished(self, result):
        self.events.put(("finished", result))

    def next(self, kind: str, timeout_s: float = 90.0):
        while True:
            got, payload = self.events.get(timeout=timeout_s)
            if got == kind:
                return payload


def sleeper_spec(seconds: float, experiment: int = 1, timeout_s: float = 120) -> TaskSpec:
    """A run that prints 'begin', sleeps, then prints a summary block with val_bpb."""
    script = ("import time\nprint('begin', flush=True)\n"
              f"time.sleep({seconds})\nprint('---')\nprint('val_bpb: 0.5')\n")
    return TaskSpec(experiment=experiment, run=1, tag="t", command="python train.py",
                    files={"train.py": script.encode()}, executable=[], env={}, timeout_s=timeout_s,
                    log_cap_bytes=1 << 20)


def squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def test_a_batch_runs_as_two_slurm_jobs_at_once(partition, tmp_path):
    campaign = script_campaign(tmp_path)
    proposer = ValuesProposer({"VALUE": 0.9, "SLEEP_S": 3.0}, {"VALUE": 0.8, "SLEEP_S": 3.0})
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs")
    run_loop(campaign, ValuesProposer(), None, executor=executor)          # the baseline, alone
    results = run_loop(campaign, proposer, 2, executor=executor, parallel=2)

    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in (1, 2, 3)] == ["keep", "discard", "keep"]
    job_ids = [rows[n][0]["job_id"] for n in (1, 2, 3)]
    assert all(j.isdigit() for j in job_ids) and len(set(job_ids)) == 3
    assert {rows[n][0]["node"] for n in (1, 2, 3)} == {socket.gethostname()}
    batch = [r for r in results if r.experiment > 1]
    assert max(r.summary["t_start"] for r in batch) < min(r.summary["t_end"] for r in batch)  # ran together
    assert "val_bpb:          0.800000" in (campaign.paths.logs / "0003.log").read_text()


def test_a_job_cancelled_by_someone_else_says_cancelled_and_is_not_run_again(partition, tmp_path):
    campaign = script_campaign(tmp_path)
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs")
    run_loop(campaign, ValuesProposer(), None, executor=executor)
    proposer = ValuesProposer({"VALUE": 0.5, "SLEEP_S": 120, "SPAWN": True}, {"VALUE": 0.9, "SLEEP_S": 2.0})
    thread, box = in_thread(run_loop, campaign, proposer, 2, executor=executor, parallel=2)
    pids = wait_for(lambda: pids_of(campaign, 2), 90)
    job_id = wait_for(lambda: subprocess.run(["squeue", "-h", "-n", "autoresearch-t-2", "-o", "%i"],
                                             capture_output=True, text=True).stdout.strip(), 30)
    subprocess.run(["scancel", job_id], check=True)  # an administrator, not the loop
    thread.join(120)
    assert not thread.is_alive() and "error" not in box

    rows = rows_by_experiment(campaign)
    assert len(rows[2]) == 1                                   # a person's cancel is not undone
    row = rows[2][0]
    assert row["status"] == "crash" and row["job_id"] == job_id
    assert "cancelled by the scheduler" in row["crash_reason"] and "CANCELLED" in row["crash_reason"]
    assert "out of memory" not in row["crash_reason"]
    assert rows[3][0]["status"] in ("keep", "discard")         # the other job went on
    wait_for(lambda: all(not alive(pid) for pid in pids), 20)


def test_a_requeued_job_runs_again_and_gives_a_completed_result(partition, tmp_path):
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs").open()
    sink = Collect()
    executor.submit(sleeper_spec(4.0), str(tmp_path / "run.log"), sink)
    job_id, node = sink.next("started")
    wait_for(lambda: "begin" in sink.lines_seen, 30)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    result = sink.next("finished", 120)

    assert result.outcome is not None and result.outcome.returncode == 0, result.error
    assert result.outcome.summary["val_bpb"] == 0.5
    assert result.job_id == job_id and not result.lost
    assert len(result.lost_attempts) == 1 and "requeued by the scheduler" in result.lost_attempts[0]
    log = (tmp_path / "run.log").read_text()
    assert log.count("begin") == 2 and "requeued by the scheduler" in log


def test_a_cancel_while_queued_is_seen_without_accounting(partition, tmp_path):
    """A job cancelled before it ever ran leaves no result file: Slurm's state alone ends it."""
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs",
                             slurm_parameters={"begin": "now+600"}).open()
    sink = Collect()
    executor.submit(sleeper_spec(1.0), str(tmp_path / "run.log"), sink)
    job_id = wait_for(lambda: subprocess.run(["squeue", "-h", "-n", "autoresearch-t-1", "-o", "%i"],
                                             capture_output=True, text=True).stdout.strip(), 30)
    assert squeue_state(job_id) == "PENDING"
    subprocess.run(["scancel", job_id], check=True)
    result = sink.next("finished", 60)
    assert result.outcome is None and result.lost and not result.cancelled
    assert result.scheduler_reason == "CANCELLED" and "out of memory" not in result.error


def test_stop_and_timeout_of_a_real_slurm_job(partition, tmp_path):
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs").open()
    stopped, timed = Collect(), Collect()
    handle = executor.submit(sleeper_spec(300), str(tmp_path / "stop.log"), stopped)
    executor.submit(sleeper_spec(300, experiment=2, timeout_s=3), str(tmp_path / "timeout.log"), timed)
    stop_job, _ = stopped.next("started")
    wait_for(lambda: "begin" in stopped.lines_seen, 30)
    handle.cancel()
    result = stopped.next("finished", 60)
    assert result.outcome is not None and result.outcome.stopped and not result.lost
    result = timed.next("finished", 90)
    assert result.outcome is not None and result.outcome.timed_out and not result.lost
    assert not squeue_state(stop_job)                    # the job left the queue


def test_gpus_the_partition_does_not_have_are_refused_at_open(partition, tmp_path):
    executor = make_executor("slurm", partition=partition, folder=tmp_path / "jobs", gpus_per_experiment=1)
    with pytest.raises(ExecutorError, match="list no GPUs"):
        executor.open()


def test_slurm_words_for_an_end_name_the_cause():
    note = "slurmstepd: error: *** JOB 41 ON node7 CANCELLED AT 2024-05-01T10:00:00 DUE TO PREEMPTION ***\n"
    assert stepd_cause(note) == "PREEMPTION"
    assert stepd_cause("slurmstepd: error: *** JOB 41 ON node7 CANCELLED AT 2024-05-01T10:00:00 ***") == "cancelled"
    cancelled = SlurmJobState("CANCELLED", nodes="node7")
    preempted = slurm_ending(cancelled, "41", stepd_cause(note))
    assert preempted.lost and preempted.retry and preempted.scheduler_reason == "PREEMPTED"
    by_admin = slurm_ending(SlurmJobState("CANCELLED", cancelled_by="1001"), "41")
    assert by_admin.lost and not by_admin.retry and "CANCELLED by 1001" in by_admin.reason
    assert slurm_ending(SlurmJobState("NODE_FAIL"), "41").retry
    oom = slurm_ending(SlurmJobState("OUT_OF_MEMORY"), "41")
    assert not oom.lost and not oom.retry and oom.reason.startswith("out of memory")
    assert slurm_ending(SlurmJobState("COMPLETED"), "41") is None


def start_doomed_runner(campaign, partition: str, folder: Path, *settings: dict, **options) -> subprocess.Popen:
    """Starts, in a child process, a loop running `settings` as one Slurm batch at --parallel 2
    (`options`: the Slurm executor's own)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from autoresearch_magics import Campaign
        from autoresearch_magics.core.executors import make_executor
        from autoresearch_magics.core.loop import run_loop
        from test_parallel_support import ValuesProposer
        campaign = Campaign.open({str(campaign.paths.root)!r})
        executor = make_executor("slurm", partition={partition!r}, folder={str(folder)!r}, **{options!r})
        run_loop(campaign, ValuesProposer(*{list(settings)!r}), {len(settings)}, executor=executor, parallel=2)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_runner(runner: subprocess.Popen) -> None:
    runner.send_signal(signal.SIGKILL)   # no handler runs: the journal is all the next runner gets
    runner.wait(30)


def in_queue(name: str) -> bool:
    return bool(subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.strip())


def test_jobs_that_finish_after_their_runner_was_killed_are_recorded_from_their_logs(partition, tmp_path):
    campaign = script_campaign(tmp_path)
    folder = tmp_path / "jobs"
    executor = make_executor("slurm", partition=partition, folder=folder)
    run_loop(campaign, ValuesProposer(), None, executor=executor)          # the baseline: 1.0
    runner = start_doomed_runner(campaign, partition, folder, {"VALUE": 0.9, "SLEEP_S": 8.0},
                                 {"VALUE": 0.8, "SLEEP_S": 8.0})
    try:
        wait_for(lambda: pids_of(campaign, 2) and pids_of(campaign, 3), 120)
    finally:
        kill_runner(runner)
    assert set(rows_by_experiment(campaign)) == {1}                       # nothing of the batch recorded
    wait_for(lambda: not in_queue("autoresearch-t-2") and not in_queue("autoresearch-t-3"), 120, 0.5)

    recorder = Recorder()
    run_loop(campaign, ValuesProposer(), None, executor=executor, listener=recorder)   # the next runner
    rows = rows_by_experiment(campaign)
    assert sorted(rows) == [1, 2, 3] and all(len(rows[n]) == 1 for n in rows)
    two, three = rows[2][0], rows[3][0]
    assert (two["status"], float(two["val_bpb"])) == ("discard", 0.9)    # real metrics, not 'interrupted'
    assert (three["status"], float(three["val_bpb"])) == ("keep", 0.8)   # at most one keep: the better one
    assert two["crash_reason"] == three["crash_reason"] == ""
    assert "experiment 3 did better" in two["evidence"]
    assert two["job_id"].isdigit() and three["job_id"].isdigit() and two["node"] == socket.gethostname()
    text = " ".join(recorder.messages)
    assert text.count("finished while no runner was listening; recorded from its log") == 2, text

    refs = campaign.ledger.experiment_refs("t")
    assert campaign.ledger.tip() == refs[3] and campaign.ledger.current_branch() == campaign.config.branch
    assert (campaign.paths.root / "train.py").read_text() == campaign.ledger.read_file(refs[3], "train.py")
    assert campaign.best()["key"] == "3" and campaign.next_experiment() == 4
    assert not campaign.paths.current.exists()
    log = (campaign.paths.root / three["log"]).read_text()
    assert log.count("devices=") == 1 and "val_bpb:          0.800000" in log   # completed, nothing twice


def test_a_job_still_running_when_the_next_runner_starts_is_cancelled_and_recorded_interrupted(partition, tmp_path):
    campaign = script_campaign(tmp_path)
    folder = tmp_path / "jobs"
    executor = make_executor("slurm", partition=partition, folder=folder)
    run_loop(campaign, ValuesProposer(), None, executor=executor)
    runner = start_doomed_runner(campaign, partition, folder, {"VALUE": 0.9, "SLEEP_S": 2.0},
                                 {"VALUE": 0.8, "SLEEP_S": 300, "SPAWN": True})
    try:
        wait_for(lambda: pids_of(campaign, 2) and pids_of(campaign, 3), 120)
    finally:
        kill_runner(runner)
    wait_for(lambda: not in_queue("autoresearch-t-2"), 120, 0.5)           # the short one finished unheard
    long_job = subprocess.run(["squeue", "-h", "-n", "autoresearch-t-3", "-o", "%i"], capture_output=True,
                              text=True).stdout.strip()
    assert long_job and squeue_state(long_job) == "RUNNING"

    recorder = Recorder()
    run_loop(campaign, ValuesProposer(), None, executor=executor, listener=recorder)
    rows = rows_by_experiment(campaign)
    assert (rows[2][0]["status"], float(rows[2][0]["val_bpb"])) == ("keep", 0.9)
    assert (rows[3][0]["status"], rows[3][0]["crash_reason"]) == ("crash", "interrupted")
    assert rows[3][0]["job_id"] == long_job
    text = " ".join(recorder.messages)
    assert f"slurm job {long_job} was still running: cancelled it" in text, text
    assert "recorded from its log" in text
    assert not in_queue("autoresearch-t-3")
    wait_for(lambda: all(not alive(pid) for pid in pids_of(campaign, 3)), 30)  # training and its child
    assert campaign.ledger.tip() == campaign.ledger.experiment_refs("t")[2]


def test_a_queued_job_of_a_killed_runner_is_cancelled_and_recorded_interrupted(partition, tmp_path):
    campaign = script_campaign(tmp_path)
    folder = tmp_path / "jobs"
    executor = make_executor("slurm", partition=partition, folder=folder)
    run_loop(campaign, ValuesProposer(), None, executor=executor)
    runner = start_doomed_runner(campaign, partition, folder, {"VALUE": 0.9}, slurm_parameters={"begin": "now+600"})
    journaled = lambda: [n for n in (read_journal(campaign) or {}).get("runs", []) if n.get("task")]
    try:
        note = wait_for(journaled, 120)[0]
    finally:
        kill_runner(runner)
    job_id = note["task"]["job_id"]
    assert squeue_state(job_id) == "PENDING"

    recorder = Recorder()
    run_loop(campaign, ValuesProposer(), None, executor=executor, listener=recorder)
    row = rows_by_experiment(campaign)[2][0]
    assert (row["status"], row["crash_reason"], row["job_id"]) == ("crash", "interrupted", job_id)
    assert f"slurm job {job_id} was still pending: cancelled it" in " ".join(recorder.messages)
    assert not squeue_state(job_id)
