"""Every process a run starts ends with the run, however it detached: real scripts that double-fork,
start new sessions, close their stdio or ignore SIGTERM, ended by exit, timeout, stop or the
death of the runner. Survivors are looked for by the pids the scripts wrote and by the run's marker."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from autoresearch_magics.core.containment import RUN_ID_ENV, kill_process_tree, kill_run, run_processes
from autoresearch_magics.core.runner import RunListener, RunSpec, run

PY = sys.executable

# Helpers every test script starts with. `note` appends a pid to the pids file; `daemon` double-forks
# a session leader of its own that sleeps for ever; `wait_for_pids` holds the script until its
# detached processes have written theirs, so they exist before the script goes on.
PRELUDE = '''
import os, signal, subprocess, sys, time
PIDS = {pids!r}

def note(pid=None):
    with open(PIDS, "a") as fh:
        fh.write(f"{{pid or os.getpid()}}\\n")

def wait_for_pids(n):
    while len(open(PIDS).read().split()) < n:
        time.sleep(0.01)

def daemon(ignore_term=False, close_stdio=False):
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if close_stdio:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    note()
    while True:
        time.sleep(1)

def detached_sleeper(**popen):
    note(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], **popen).pid)
'''

RUNNER = '''
import sys
from autoresearch_magics.core.runner import RunListener, RunSpec, run
command, cwd, log, run_id, note = sys.argv[1:]

class Note(RunListener):
    def started(self, pid):
        with open(note, "w") as fh:
            fh.write(str(pid))

run(RunSpec(command=command, cwd=cwd, log_path=log, run_id=run_id, timeout_s=600), Note())
'''


class Script:
    """A test script in `folder` and the pids its processes write."""

    def __init__(self, folder, body: str) -> None:
        self.folder = folder
        self.pids_file = folder / "pids.txt"
        self.pids_file.write_text("")
        self.path = folder / "script.py"
        self.path.write_text(PRELUDE.format(pids=str(self.pids_file)) + textwrap.dedent(body))
        self.command = f"{PY} {self.path}"

    def pids(self) -> list[int]:
        return [int(p) for p in self.pids_file.read_text().split()]

    def spec(self, **kw) -> RunSpec:
        return RunSpec(command=self.command, cwd=str(self.folder), log_path=str(self.folder / "run.log"), **kw)


def left_over(pids: list[int], since: float) -> list[int]:
    """Returns the pids still present, alive or zombie, as the same processes the script started."""
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).create_time() <= since:
                found.append(pid)
        except psutil.Error:
            pass
    return found


def eventually(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def assert_nothing_left(script: Script, run_id: str, expected: int) -> None:
    pids = script.pids()
    assert len(pids) == expected, pids
    assert not left_over(pids, time.time()), "processes of the run are still alive or unreaped"
    assert not run_processes(run_id)


@pytest.mark.timeout(60)
def test_double_forked_daemon_ends_when_the_script_exits_0(tmp_path):
    script = Script(tmp_path, """
        daemon()
        wait_for_pids(1)
        print('---')
        print('val_bpb: 1.25')
    """)
    outcome = run(script.spec(timeout_s=30))
    assert (outcome.returncode, outcome.timed_out, outcome.stopped) == (0, False, False)
    assert outcome.summary == {"val_bpb": 1.25}
    assert_nothing_left(script, outcome.run_id, 1)


@pytest.mark.timeout(60)
def test_new_session_child_ends_with_its_parent_and_the_exit_code_is_the_scripts(tmp_path):
    script = Script(tmp_path, """
        detached_sleeper(start_new_session=True)
        print('FAIL')
        sys.exit(3)
    """)
    outcome = run(script.spec(timeout_s=30))
    assert outcome.returncode == 3 and outcome.saw_fail and not outcome.timed_out
    assert_nothing_left(script, outcome.run_id, 1)


@pytest.mark.timeout(60)
def test_setsid_child_of_a_hanging_script_ends_at_the_timeout_even_if_it_ignores_term(tmp_path):
    script = Script(tmp_path, """
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            note()
            time.sleep(600)
            os._exit(0)
        daemon(ignore_term=True)
        wait_for_pids(2)
        print('hanging', flush=True)
        time.sleep(600)
    """)
    outcome = run(script.spec(timeout_s=1.5))
    assert outcome.timed_out and outcome.returncode == -signal.SIGTERM
    assert_nothing_left(script, outcome.run_id, 2)


@pytest.mark.timeout(60)
def test_stop_ends_the_script_and_its_detached_grandchild(tmp_path):
    script = Script(tmp_path, """
        detached_sleeper(start_new_session=True)
        daemon()
        note()
        time.sleep(600)
    """)
    outcome = run(script.spec(timeout_s=60), should_stop=lambda: len(script.pids()) >= 3)
    assert outcome.stopped and not outcome.timed_out
    assert_nothing_left(script, outcome.run_id, 3)


@pytest.mark.timeout(60)
def test_daemon_that_closes_its_stdio_does_not_outlive_the_run(tmp_path):
    script = Script(tmp_path, """
        daemon(close_stdio=True)
        wait_for_pids(1)
        print('---')
        print('val_bpb: 2.0')
    """)
    outcome = run(script.spec(timeout_s=30))
    assert outcome.returncode == 0 and outcome.summary == {"val_bpb": 2.0}
    assert_nothing_left(script, outcome.run_id, 1)


@pytest.mark.timeout(60)
def test_every_process_of_the_run_carries_its_marker(tmp_path):
    script = Script(tmp_path, f"""
        daemon()
        wait_for_pids(1)
        daemon_pid = int(open(PIDS).read().split()[0])
        marker = open(f'/proc/{{daemon_pid}}/environ', 'rb').read().split(b'\\0')
        print('---')
        print('own_marker:', os.environ[{RUN_ID_ENV!r}])
        print('daemon_marked:', int(b'{RUN_ID_ENV}=' + os.environ[{RUN_ID_ENV!r}].encode() in marker))
    """)
    outcome = run(script.spec(timeout_s=30, run_id="feedc0de"))
    assert outcome.run_id == "feedc0de"
    assert outcome.summary == {"own_marker": "feedc0de", "daemon_marked": 1.0}


@pytest.mark.timeout(60)
def test_peak_memory_counts_a_daemon_that_left_the_tree(tmp_path):
    script = Script(tmp_path, """
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                hog = bytearray(300 << 20)
                note()
                time.sleep(600)
            os._exit(0)
        wait_for_pids(1)
        time.sleep(1.5)
    """)
    outcome = run(script.spec(timeout_s=30))
    assert outcome.returncode == 0
    assert outcome.peak_rss_mb > 250
    assert_nothing_left(script, outcome.run_id, 1)


@pytest.mark.timeout(90)
def test_runner_killed_with_sigkill_takes_its_run_down(tmp_path):
    script = Script(tmp_path, """
        daemon(ignore_term=True)
        detached_sleeper(start_new_session=True)
        note()
        time.sleep(600)
    """)
    runner = subprocess.Popen([PY, "-c", RUNNER, script.command, str(tmp_path), str(tmp_path / "run.log"),
                               "run-of-a-killed-runner", str(tmp_path / "shepherd.pid")])
    assert eventually(lambda: len(script.pids()) == 3)
    runner.kill()
    runner.wait()
    assert eventually(lambda: not left_over(script.pids(), time.time()))
    assert not run_processes("run-of-a-killed-runner")


@pytest.mark.timeout(90)
def test_killing_the_tree_of_a_live_shepherd_from_outside_ends_its_detached_processes(tmp_path):
    # what recovery does with the recorded pid when the runner hangs rather than dies
    script = Script(tmp_path, """
        daemon(ignore_term=True)
        detached_sleeper(start_new_session=True)
        note()
        time.sleep(600)
    """)
    runner = subprocess.Popen([PY, "-c", RUNNER, script.command, str(tmp_path), str(tmp_path / "run.log"),
                               "run-of-a-hung-runner", str(tmp_path / "shepherd.pid")])
    try:
        assert eventually(lambda: len(script.pids()) == 3)
        runner.send_signal(signal.SIGSTOP)
        kill_process_tree(int((tmp_path / "shepherd.pid").read_text()), grace_s=10)
        assert not left_over(script.pids(), time.time())
        assert not run_processes("run-of-a-hung-runner")
    finally:
        runner.kill()
        runner.wait()


@pytest.mark.timeout(90)
def test_survivors_of_a_killed_shepherd_are_ended_by_their_marker(tmp_path):
    script = Script(tmp_path, """
        daemon()
        detached_sleeper(start_new_session=True)
        note()
        time.sleep(600)
    """)
    runner = subprocess.Popen([PY, "-c", RUNNER, script.command, str(tmp_path), str(tmp_path / "run.log"),
                               "run-without-its-shepherd", str(tmp_path / "shepherd.pid")])
    assert eventually(lambda: len(script.pids()) == 3)
    shepherd = int((tmp_path / "shepherd.pid").read_text())
    runner.send_signal(signal.SIGSTOP)   # neither the runner nor the shepherd gets to clean up
    os.kill(shepherd, signal.SIGKILL)
    runner.kill()
    runner.wait()
    time.sleep(0.5)
    survivors = {p.pid for p in run_processes("run-without-its-shepherd")}
    assert set(script.pids()) <= survivors   # the case recovery is for: they escaped
    assert kill_run("run-without-its-shepherd", grace_s=2.0) == len(survivors)
    assert not run_processes("run-without-its-shepherd")
    assert eventually(lambda: not [p for p in script.pids() if psutil.pid_exists(p)
                                   and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], 5)


@pytest.mark.timeout(60)
def test_runner_ends_the_run_itself_when_its_shepherd_is_killed(tmp_path):
    script = Script(tmp_path, """
        daemon()
        note()
        print('started', flush=True)
        time.sleep(600)
    """)
    shepherd = []

    class KillShepherd(RunListener):
        def started(self, pid):
            shepherd.append(pid)

        def lines(self, lines):
            if "started" in lines:
                os.kill(shepherd[0], signal.SIGKILL)

    outcome = run(script.spec(timeout_s=60), KillShepherd())
    assert outcome.returncode == -signal.SIGKILL and not outcome.timed_out
    assert not run_processes(outcome.run_id)
    assert eventually(lambda: not [p for p in script.pids() if psutil.pid_exists(p)
                                   and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], 5)


def test_command_killed_by_a_signal_reports_it_as_a_plain_shell_would(tmp_path):
    script = Script(tmp_path, "os.kill(os.getpid(), signal.SIGUSR1)\n")
    plain = subprocess.run(["/bin/sh", "-c", script.command]).returncode
    assert run(script.spec(timeout_s=30)).returncode == plain


def test_kill_run_ends_only_the_processes_with_that_marker(tmp_path):
    sleep = [PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                       "time.sleep(600)"]

    def start(run_id):
        proc = subprocess.Popen(sleep, env={**os.environ, RUN_ID_ENV: run_id}, start_new_session=True,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"   # SIGTERM is ignored from here on
        return proc

    ours = [start("ours"), start("ours")]
    other = start("another-run")
    try:
        assert kill_run("ours", grace_s=0.5) == 2
        for proc in ours:
            assert proc.wait(10) == -signal.SIGKILL
        assert other.poll() is None and [p.pid for p in run_processes("another-run")] == [other.pid]
    finally:
        other.kill()
        other.wait()
        for proc in (*ours, other):
            proc.stdout.close()
