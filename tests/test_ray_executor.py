"""The Ray executor on a real local Ray cluster (4 CPUs, 4 logical GPUs), one per module."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

ray = pytest.importorskip("ray")

from autoresearch_magics.core.executors.ray_executor import RayExecutor  # noqa: E402
from autoresearch_magics.core.executors.ray_gate import shutdown_ray  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402
from autoresearch_magics.core.proposers import RerunProposer  # noqa: E402

from test_parallel_support import (Recorder, ValuesProposer, alive, in_thread, pids_of,  # noqa: E402
                                   rows_by_experiment, script_campaign, script_with, wait_for)


@ray.remote(num_cpus=1, num_gpus=1, max_calls=0)
def _warm():
    import autoresearch_magics.core.executors.worker  # noqa: F401
    time.sleep(0.3)
    return os.getpid()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster whose processes keep away from the real home directory."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                            "AUTORESEARCH_CACHE_DIR": str(home / ".cache" / "autoresearch"),
                            "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}.items():
            patch.setenv(name, value)
        ray.init(address="local", num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        # four GPU workers that have imported the task's module: runs then start together, as on a
        # cluster that has been up for a while (here a cold worker takes seconds to start, two at a time)
        workers: set[int] = set()
        for _ in range(20):
            workers |= set(ray.get([_warm.remote() for _ in range(4)]))
            if len(workers) >= 4:
                break
        try:
            yield
        finally:
            shutdown_ray()


def test_parallel_runs_get_distinct_gpus_and_stream_their_output(cluster, tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=RayExecutor(gpus_per_experiment=1))  # the baseline alone
    recorder = Recorder()
    proposer = ValuesProposer(*[{"VALUE": v, "SLEEP_S": 1.5} for v in (0.9, 0.8, 0.7, 0.95)])
    results = run_loop(campaign, proposer, 4, executor=RayExecutor(gpus_per_experiment=1), parallel=4,
                                listener=recorder)

    batch = [r for r in results if r.experiment > 1]
    assert sorted(r.summary["devices"] for r in batch) == ["'0'", "'1'", "'2'", "'3'"]
    assert max(r.summary["t_start"] for r in batch) < min(r.summary["t_end"] for r in batch)
    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in range(1, 6)] == ["keep", "discard", "discard", "keep", "discard"]
    assert campaign.ledger.tip() == campaign.ledger.experiment_refs("t")[4]
    job_ids = {rows[n][0]["job_id"] for n in range(1, 6)}
    assert len(job_ids) == 5 and all(len(j) >= 16 for j in job_ids)  # Ray task ids
    assert all(rows[n][0]["launcher"] == "ray" and rows[n][0]["node"] == socket.gethostname() for n in rows)
    # output arrived while the runs went on: updates with their lines came before any result
    first_result = min(t for t, r in recorder.finished if r.experiment > 1)
    streamed = {s["experiment"] for t, s in recorder.updates if t < first_result and any("devices=" in l for l in s["tail"])}
    assert {2, 3, 4, 5} <= streamed
    log = (campaign.paths.logs / "0004.log").read_text()
    assert "devices=" in log and "val_bpb:          0.700000" in log


def test_experiment_without_gpus_gets_an_empty_cuda_visible_devices(cluster, tmp_path):
    campaign = script_campaign(tmp_path)
    results = run_loop(campaign, RerunProposer(), 1, executor=RayExecutor(), parallel=2)
    assert [r.summary["devices"] for r in results] == ["''", "''"]
    data = [l for l in (campaign.paths.logs / "0002.log").read_text().splitlines() if l.startswith("data=")]
    assert data == [f"data={campaign.paths.data}"]                # same machine: the campaign's data folder


def test_timeout_kills_the_whole_process_group(cluster, tmp_path):
    campaign = script_campaign(tmp_path, timeout_s=2)  # the baseline itself runs too long
    path = campaign.paths.root / "train.py"
    path.write_text(script_with(path.read_text(), SLEEP_S=60, SPAWN=True))
    campaign.ledger.commit_files(["train.py"], "slow")
    results = run_loop(campaign, ValuesProposer(), None, executor=RayExecutor(), parallel=1)
    assert results[0].status == "crash" and results[0].crash_reason == "timeout: killed after 2s"
    assert "t_end" not in results[0].summary                        # killed, not finished on its own
    assert all(not alive(pid) for pid in pids_of(campaign, 1))


def test_stop_cancels_the_ray_tasks_and_kills_their_groups(cluster, tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=RayExecutor())
    stop = threading.Event()
    proposer = ValuesProposer(*[{"VALUE": 0.5, "SLEEP_S": 60, "SPAWN": True}] * 2)
    thread, box = in_thread(run_loop, campaign, proposer, None, executor=RayExecutor(), parallel=2,
                            stop_event=stop)
    pids = [wait_for(lambda n=n: pids_of(campaign, n)) for n in (2, 3)]
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and "error" not in box
    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["crash_reason"] for n in (2, 3)] == ["stopped by user", "stopped by user"]
    wait_for(lambda: all(not alive(pid) for group in pids for pid in group), 10)


def test_lost_worker_is_a_crash_with_its_reason_and_loses_no_other_result(cluster, tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=RayExecutor())
    proposer = ValuesProposer({"VALUE": 0.9, "SLEEP_S": 2.0}, {"VALUE": 0.5, "SLEEP_S": 60, "SPAWN": True},
                              {"VALUE": 0.8, "SLEEP_S": 2.0})
    # no retry here: the lost run itself is what this test looks at (test_cluster_ray.py covers the retry)
    thread, box = in_thread(run_loop, campaign, proposer, 3, executor=RayExecutor(lost_retries=0), parallel=3)
    victim = wait_for(lambda: pids_of(campaign, 3))
    worker = next(p for p in psutil.Process(victim[0]).parents() if p.name().startswith("ray::"))
    worker.send_signal(signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive() and "error" not in box
    rows = rows_by_experiment(campaign)
    assert rows[3][0]["status"] == "crash" and rows[3][0]["crash_reason"].startswith("worker lost")
    assert (rows[2][0]["status"], rows[4][0]["status"]) == ("discard", "keep")
    assert rows[4][0]["val_bpb"] == "0.800000"
    wait_for(lambda: all(not alive(pid) for pid in victim), 10)   # the guard took the run down with it


PROBE = textwrap.dedent('''
    import socket, sys, time
    from autoresearch_magics.core.executors.ray_executor import RayExecutor
    from autoresearch_magics.core.executors.base import ExecutorError
    address, timeout_s = sys.argv[1], float(sys.argv[2])
    start = time.monotonic()
    try:
        RayExecutor(address=address, connect_timeout_s=timeout_s).open()
        print("connected")
    except ExecutorError as exc:
        print(f"{time.monotonic() - start:.1f}s {exc}")
''')


def _probe(address: str, timeout_s: float) -> str:
    env = {**os.environ, "RAY_ADDRESS": ""}
    out = subprocess.run([sys.executable, "-c", PROBE, address, str(timeout_s)], capture_output=True, text=True,
                         timeout=120, env=env)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]


def test_an_address_that_does_not_answer_fails_within_bounded_time():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()                                                 # nothing listens there
    line = _probe(f"127.0.0.1:{port}", 5)
    assert f"no Ray cluster at 127.0.0.1:{port}" in line and "ray start --head" in line

    silent = socket.socket()                                       # accepts, never speaks Ray
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        line = _probe(f"127.0.0.1:{silent.getsockname()[1]}", 4)
    finally:
        silent.close()
    assert ("did not complete the connection within 4s" in line or "cannot connect" in line), line


def test_asking_for_more_gpus_than_the_cluster_has_fails_at_once(cluster):
    from autoresearch_magics.core.executors.base import ExecutorError
    with pytest.raises(ExecutorError, match="asks for 8 GPU.*has 4 in all"):
        RayExecutor(gpus_per_experiment=8).open()
