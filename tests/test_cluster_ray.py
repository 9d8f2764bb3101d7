"""The Ray executor against a real two-node Ray cluster on this machine (scripts/ray_up.sh starts
it): a batch at --parallel 2, a node whose raylet dies mid-run, a dead address, a runner killed
mid-batch."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

ray = pytest.importorskip("ray")

from autoresearch_magics.core.executors import ExecutorError, make_executor  # noqa: E402
from autoresearch_magics.core.executors.ray_executor import RayExecutor, connect  # noqa: E402
from autoresearch_magics.core.executors.ray_gate import shutdown_ray  # noqa: E402
from autoresearch_magics.core.loop import run_loop  # noqa: E402

from test_parallel_support import (Recorder, ValuesProposer, alive, in_thread, pids_of,  # noqa: E402
                                   rows_by_experiment, script_campaign, wait_for)

ROOT = Path(__file__).resolve().parents[1]
RAY_CLI = Path(sys.executable).with_name("ray")


@pytest.fixture(scope="module")
def address():
    """The address of the two-node cluster (started if need be), this process connected to it."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not RAY_CLI.exists() and shutil.which("ray") is None:
        pytest.skip("the 'ray' command is not installed")
    env = {**os.environ, "PATH": f"{RAY_CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "ray_up.sh")], capture_output=True, text=True,
                          timeout=300, env=env)
    if done.returncode != 0:
        pytest.fail(f"scripts/ray_up.sh failed: {done.stderr.strip()}")
    address = done.stdout.strip().splitlines()[-1]
    if ray.is_initialized():
        shutdown_ray()
    connect(address)
    try:
        yield address
    finally:
        shutdown_ray()


def test_a_batch_runs_on_the_two_node_cluster_two_at_once(address, tmp_path):
    campaign = script_campaign(tmp_path)
    proposer = ValuesProposer({"VALUE": 0.9, "SLEEP_S": 6.0}, {"VALUE": 0.8, "SLEEP_S": 6.0})
    executor = make_executor("ray", address=address)
    run_loop(campaign, ValuesProposer(), None, executor=executor)          # the baseline, alone
    results = run_loop(campaign, proposer, 2, executor=executor, parallel=2)

    rows = rows_by_experiment(campaign)
    assert [rows[n][0]["status"] for n in (1, 2, 3)] == ["keep", "discard", "keep"]
    assert all(rows[n][0]["launcher"] == "ray" and rows[n][0]["job_id"] for n in (1, 2, 3))
    batch = [r for r in results if r.experiment > 1]
    assert max(r.summary["t_start"] for r in batch) < min(r.summary["t_end"] for r in batch)  # ran together
    assert "val_bpb:          0.800000" in (campaign.paths.logs / "0003.log").read_text()


class FirstOnVictim(RayExecutor):
    """Places a run's first attempt on the node with the `victim` resource, later ones on the head."""

    def placement(self, spec, attempt):
        return {"resources": {"victim": 1} if attempt == 1 else {"head": 1}}


def _start_victim(address: str) -> subprocess.Popen | None:
    """Starts a node with the `victim` resource; returns its `ray start --block` process once the
    node is alive, or None when the start failed (on a busy machine the raylet can miss Ray's
    fixed 30 s registration window)."""
    node = subprocess.Popen([str(RAY_CLI), "start", "--block", f"--address={address}", "--num-cpus=1",
                             "--num-gpus=0", "--node-ip-address=127.0.0.1", "--resources", '{"victim": 1}',
                             "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    up = wait_for(lambda: node.poll() is not None
                  or any(n["Alive"] and n["Resources"].get("victim") for n in ray.nodes()), 120, 1.0)
    if up and node.poll() is None:
        return node
    _stop(node)
    return None


def _stop(node: subprocess.Popen) -> None:
    try:
        os.killpg(node.pid, signal.SIGKILL)  # its own session: the node's processes and nothing else
    except ProcessLookupError:
        pass
    node.wait(30)


@pytest.fixture
def victim_node(address):
    """A third node that only this test uses, started with `ray start --block` so that its raylet
    is a child of a process the test owns; yields that process."""
    for _ in range(3):
        node = _start_victim(address)
        if node is not None:
            break
    else:
        pytest.fail("a third Ray node did not start in three tries")
    try:
        yield node
    finally:
        _stop(node)


def raylet_of(node: subprocess.Popen) -> psutil.Process:
    return next(p for p in psutil.Process(node.pid).children(recursive=True) if p.name() == "raylet")


def test_a_run_whose_node_dies_runs_again_on_the_head(victim_node, tmp_path):
    campaign = script_campaign(tmp_path)
    executor = FirstOnVictim(ray.get_runtime_context().gcs_address)
    run_loop(campaign, ValuesProposer(), None, executor=executor)   # the baseline, moved on by its retry
    proposer = ValuesProposer({"VALUE": 0.5, "SLEEP_S": 30, "SPAWN": True})
    (campaign.pid_dir / "2.pid").unlink(missing_ok=True)
    victim = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("victim")}
    assert victim
    thread, box = in_thread(run_loop, campaign, proposer, 1, executor=executor, parallel=1)
    first_pids = wait_for(lambda: pids_of(campaign, 2), 120)
    (campaign.pid_dir / "2.pid").unlink()
    raylet_of(victim_node).kill()
    thread.join(180)
    assert not thread.is_alive() and "error" not in box

    row = rows_by_experiment(campaign)[2]
    assert len(row) == 1 and row[0]["status"] == "keep", row        # a verdict from the completed re-run
    log = (campaign.paths.root / row[0]["log"]).read_text()
    assert "node lost" in log and "submitting the run again (retry 1 of 2)" in log
    assert log.count("devices=") == 2 and "val_bpb:" in log
    assert not any(n["Alive"] for n in ray.nodes() if n["NodeID"] in victim)
    wait_for(lambda: all(not alive(pid) for pid in first_pids), 30)   # nothing of the lost attempt runs on


def test_a_dead_address_fails_within_seconds():
    with socket_nobody_listens_on() as port:
        started = time.monotonic()
        with pytest.raises(ExecutorError, match="no Ray cluster at 127.0.0.1"):
            connect(f"127.0.0.1:{port}", timeout_s=30)
        assert time.monotonic() - started < 10


class socket_nobody_listens_on:
    """A local port that was free a moment ago (bound, then closed)."""

    def __enter__(self) -> int:
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc):
        return False


def _start_head(port: int) -> subprocess.Popen | None:
    """Starts a one-node cluster of this test's own at 127.0.0.1:`port`; returns its `ray start
    --block` process once the port answers, or None when it did not start."""
    head = subprocess.Popen([str(RAY_CLI), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--num-gpus=0", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             f"--ray-client-server-port={port + 1}", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    answers = wait_for(lambda: head.poll() is not None or _answers(port), 120, 1.0)
    if answers and head.poll() is None:
        time.sleep(3.0)  # `ray start` fails if its raylet does not register within 30 s: let it settle
        if head.poll() is None:
            return head
    _stop(head)
    return None


def _answers(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _head(port: int) -> subprocess.Popen:
    for _ in range(3):
        head = _start_head(port)
        if head is not None:
            return head
    pytest.fail(f"a Ray head did not start at port {port} in three tries")


def test_a_head_that_restarts_mid_run_is_reconnected_and_the_run_goes_on(address, tmp_path):
    with socket_nobody_listens_on() as port:
        pass
    heads = [_head(port)]
    shutdown_ray()  # this test's loop connects to its own head
    try:
        campaign = script_campaign(tmp_path)
        executor = RayExecutor(f"127.0.0.1:{port}", reconnect_wait_s=240)
        run_loop(campaign, ValuesProposer(), None, executor=executor)
        proposer = ValuesProposer({"VALUE": 0.5, "SLEEP_S": 20, "SPAWN": True})
        thread, box = in_thread(run_loop, campaign, proposer, 1, executor=executor, parallel=1)
        first_pids = wait_for(lambda: pids_of(campaign, 2), 120)
        (campaign.pid_dir / "2.pid").unlink()
        _stop(heads[0])                        # the head goes away mid-run...
        heads.append(_head(port))              # ...and comes back (a new cluster at the same address)
        thread.join(400)
        assert not thread.is_alive() and "error" not in box, box

        row = rows_by_experiment(campaign)[2]
        log = (campaign.paths.root / row[0]["log"]).read_text()
        assert len(row) == 1 and row[0]["status"] == "keep", (row[0]["crash_reason"], log[-2000:])
        assert "ray cluster lost" in log and "submitting the run again (retry 1 of 2)" in log
        assert log.count("devices=") == 2
        wait_for(lambda: all(not alive(pid) for pid in first_pids), 30)
    finally:
        for head in heads:
            _stop(head)
        shutdown_ray()
        connect(address)                       # the module's connection, for any later test


def test_runs_of_a_killed_runner_end_with_it_and_the_next_runner_records_them_interrupted(address, tmp_path):
    campaign = script_campaign(tmp_path)
    run_loop(campaign, ValuesProposer(), None, executor=make_executor("ray", address=address))
    settings = [{"VALUE": 0.9, "SLEEP_S": 120, "SPAWN": True}, {"VALUE": 0.8, "SLEEP_S": 120, "SPAWN": True}]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from autoresearch_magics import Campaign
        from autoresearch_magics.core.executors import make_executor
        from autoresearch_magics.core.loop import run_loop
        from test_parallel_support import ValuesProposer
        campaign = Campaign.open({str(campaign.paths.root)!r})
        run_loop(campaign, ValuesProposer(*{settings!r}), 2, executor=make_executor("ray", address={address!r}),
                 parallel=2)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    runner = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        pids = wait_for(lambda: (pids_of(campaign, 2) or []) + (pids_of(campaign, 3) or [])
                        if pids_of(campaign, 2) and pids_of(campaign, 3) else None, 120)
    finally:
        runner.send_signal(signal.SIGKILL)   # a Ray task dies with the driver that owns it
        runner.wait(30)
    # no runner has started yet: Ray ended the tasks and the watchdog the run's processes
    wait_for(lambda: all(not alive(pid) for pid in pids), 60, 0.5)

    recorder = Recorder()
    run_loop(campaign, ValuesProposer(), None, executor=make_executor("ray", address=address), listener=recorder)
    rows = rows_by_experiment(campaign)
    assert sorted(rows) == [1, 2, 3]
    assert all((rows[n][0]["status"], rows[n][0]["crash_reason"]) == ("crash", "interrupted") for n in (2, 3))
    assert all(rows[n][0]["launcher"] == "ray" for n in (2, 3))
    assert "was cut off" in " ".join(recorder.messages)
    assert campaign.ledger.tip() == campaign.ledger.experiment_refs("t")[1]   # the branch stays at the best
    assert not campaign.paths.current.exists()
