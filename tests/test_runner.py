"""The runner against real child processes: exit codes, hard timeouts, grandchildren, floods."""
import os
import sys
import time

import psutil
import pytest

from autoresearch_magics.core.runner import RunListener, RunSpec, run

PY = sys.executable


def _spec(tmp_path, code, timeout_s=20.0, **kw):
    script = tmp_path / "script.py"
    script.write_text(code)
    return RunSpec(command=f"{PY} {script}", cwd=str(tmp_path), log_path=str(tmp_path / "logs" / "run.log"),
                   timeout_s=timeout_s, **kw)


def test_output_is_split_on_carriage_returns_and_summary_parsed(tmp_path):
    code = ("import sys\nfor i in range(3): sys.stdout.write(f'\\rstep {i:05d} (10.0%) | loss: 1.0')\n"
            "print()\nprint('---')\nprint('val_bpb: 1.5')\n")
    seen = []

    class Collect(RunListener):
        def lines(self, lines):
            seen.extend(lines)

    outcome = run(_spec(tmp_path, code), Collect())
    assert outcome.returncode == 0 and outcome.summary == {"val_bpb": 1.5}
    assert [l for l in seen if l.startswith("step")] == [f"step {i:05d} (10.0%) | loss: 1.0" for i in range(3)]
    assert "val_bpb: 1.5" in (tmp_path / "logs" / "run.log").read_text()


def test_environment_is_handed_to_the_script(tmp_path):
    code = "import os\nprint('---')\nprint('budget:', os.environ['AUTORESEARCH_BUDGET_S'])\n"
    outcome = run(_spec(tmp_path, code, env={"AUTORESEARCH_BUDGET_S": "7"}))
    assert outcome.summary == {"budget": 7.0}


@pytest.mark.timeout(60)
def test_hang_past_timeout_kills_the_whole_group_including_grandchildren(tmp_path):
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)'])\n"
            "print('started', flush=True)\ntime.sleep(600)\n")
    pids = []

    class Track(RunListener):
        def started(self, pid):
            pids.append(pid)

        def lines(self, lines):
            if "started" in lines and len(pids) == 1:
                pids.extend(p.pid for p in psutil.Process(pids[0]).children(recursive=True))

    start = time.monotonic()
    outcome = run(_spec(tmp_path, code, timeout_s=1.5), Track())
    assert outcome.timed_out and time.monotonic() - start < 15
    assert len(pids) >= 4  # sh, python, two grandchildren
    time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(60)
def test_grandchild_holding_the_pipe_does_not_hang_a_finished_run(tmp_path):
    code = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print('---')\nprint('val_bpb: 1.0')\n")
    start = time.monotonic()
    outcome = run(_spec(tmp_path, code, timeout_s=30))
    assert outcome.returncode == 0 and not outcome.timed_out and outcome.summary["val_bpb"] == 1.0
    assert time.monotonic() - start < 10


@pytest.mark.timeout(120)
def test_log_flood_is_capped_and_runner_memory_stays_flat(tmp_path):
    # 300 MB of output, then a summary: the log keeps a bounded head and the tail.
    code = ("import sys\nline = 'x' * 1023 + '\\n'\nblock = line * 1024\n"
            "for _ in range(300): sys.stdout.write(block)\n"
            "print('---')\nprint('val_bpb: 1.25')\n")
    before = psutil.Process().memory_info().rss
    outcome = run(_spec(tmp_path, code, timeout_s=100, log_cap_bytes=4 << 20))
    grown_mb = (psutil.Process().memory_info().rss - before) / 2**20
    assert outcome.summary["val_bpb"] == 1.25
    assert outcome.log_bytes > 300 * 2**20
    size = os.path.getsize(tmp_path / "logs" / "run.log")
    assert size < 6 * 2**20
    assert "bytes of output omitted" in (tmp_path / "logs" / "run.log").read_text()[-(1 << 19):]
    assert grown_mb < 50, f"runner grew by {grown_mb:.0f} MB"


def test_should_stop_ends_the_run_early(tmp_path):
    start = time.monotonic()
    outcome = run(_spec(tmp_path, "import time\ntime.sleep(60)\n"), should_stop=lambda: time.monotonic() - start > 0.5)
    assert outcome.stopped and time.monotonic() - start < 10
