"""Dropping the connection to Ray while runs are followed: no thread is inside Ray when it shuts
down (a thread waiting there can crash the process, ray-project/ray#31145), and every follower
ends with a result."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from autoresearch_magics.core.executors.ray_gate import RayGate

ROOT = Path(__file__).resolve().parents[1]


def test_exclusive_waits_for_the_calls_inside_and_holds_new_ones_back():
    gate = RayGate()
    order: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def caller():
        with gate.call():
            inside.set()
            release.wait(5)
            order.append("call ends")

    def closer():
        with gate.exclusive():
            order.append("exclusive")
            with gate.call():            # the holder's own calls go through
                order.append("holder's call")
            time.sleep(0.2)
        order.append("exclusive ends")

    first = threading.Thread(target=caller)
    first.start()
    inside.wait(5)
    second = threading.Thread(target=closer)
    second.start()
    time.sleep(0.2)
    assert order == []                   # the shutdown waits for the call inside
    release.set()
    time.sleep(0.05)
    def late_caller():
        with gate.call():
            order.append("late call")

    late = threading.Thread(target=late_caller)
    late.start()
    for thread in (first, second, late):
        thread.join(5)
    assert order == ["call ends", "exclusive", "holder's call", "exclusive ends", "late call"]
    assert gate.try_call() and (gate.leave() or True)


def test_try_call_does_not_enter_a_gate_held_by_another_thread():
    gate = RayGate()
    held, done = threading.Event(), threading.Event()

    def hold():
        with gate.exclusive():
            held.set()
            done.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    assert gate.try_call() is False
    done.set()
    thread.join(5)
    assert gate.try_call() is True
    gate.leave()


SCRIPT = textwrap.dedent("""
    import sys, tempfile, threading, time
    import ray
    from autoresearch_magics.core.executors.base import TaskSink, TaskSpec
    from autoresearch_magics.core.executors.ray_executor import RayExecutor
    from autoresearch_magics.core.executors.ray_gate import shutdown_ray

    class Sink(TaskSink):
        def __init__(self):
            self.running, self.ended, self.result = threading.Event(), threading.Event(), None
        def started(self, job_id, node, pid=None):
            self.running.set()
        def finished(self, result):
            self.result = result
            self.ended.set()

    RUNS = int(sys.argv[2])
    for round in range(int(sys.argv[1])):
        ray.init(address="local", num_cpus=RUNS, include_dashboard=False, log_to_driver=False, configure_logging=False)
        executor = RayExecutor(reconnect_wait_s=1).open()
        sinks = [Sink() for _ in range(RUNS)]
        for run, sink in enumerate(sinks, 1):
            spec = TaskSpec(experiment=1, run=run, tag="t", command="sleep 60", files={"x": b""}, executable=[],
                            env={}, timeout_s=120, log_cap_bytes=1 << 20)
            executor.submit(spec, tempfile.mktemp(), sink)
        assert all(sink.running.wait(60) for sink in sinks), "a run did not start"
        time.sleep(1.0)                  # both followers are waiting for output inside Ray
        shutdown_ray()
        assert all(sink.ended.wait(60) for sink in sinks), f"round {round}: a follower never ended"
        print(round, [sink.result.error[:60] for sink in sinks], flush=True)
    print("survived")
""")


def test_shutting_ray_down_under_waiting_followers_neither_crashes_nor_hangs(tmp_path):
    pytest.importorskip("ray")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HOME": str(tmp_path)}
    # without the gate this crashed the process (SIGABRT/SIGSEGV) or left a follower waiting for
    # ever within a few rounds
    done = subprocess.run([sys.executable, "-c", SCRIPT, "4", "6"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=500)
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stdout[-2000:],
                                                                done.stderr[-3000:])
