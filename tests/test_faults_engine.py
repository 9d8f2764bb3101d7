"""Faults around the engine, each on a real git repository with real child processes (and a real
kernel for the kernel case): a dead runner and read-only commands, a kernel restart mid-run, why a
loop ended, and the commands the tool suggests."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_magics import Campaign, cli
from autoresearch_magics.core.ledger import experiment_ref

from helpers import SUMMARY_SCRIPT, all_gone, write_script


def hanging_script(pid_file: Path) -> str:
    """Returns a script that starts a grandchild, writes both pids to `pid_file`, then hangs."""
    return ("import os, subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
            f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
            "print('step 00001 (1.0%) | loss: 2.0', flush=True)\n"
            "time.sleep(300)\n")


def wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def started(pid_file: Path) -> list[int] | None:
    text = pid_file.read_text() if pid_file.exists() else ""
    return [int(p) for p in text.split()] if len(text.split()) == 2 else None


def cli_process(*argv: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autoresearch_magics.cli", *argv], **options)


def state_of(campaign) -> tuple:
    """Returns everything a read-only command must leave alone."""
    root = campaign.paths.root
    journal = campaign.paths.current.read_bytes() if campaign.paths.current.exists() else None
    return ((root / "train.py").read_bytes(), campaign.paths.results.read_bytes(), campaign.ledger.tip(),
            campaign.ledger.current_branch(), journal)


def test_read_only_commands_change_nothing_and_recovery_keeps_the_users_edit(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    campaign = Campaign.init(folder, tag="t", budget_s=30)
    campaign.run("baseline")
    pid_file = tmp_path / "pids"
    write_script(folder, hanging_script(pid_file))
    runner = cli_process("run", "-C", str(folder), "-m", "cut off")
    pids = wait_for(lambda: started(pid_file))
    runner.kill()                                   # kill -9 of `autoresearch run`
    runner.wait()
    mine = SUMMARY_SCRIPT + "# my own idea, written after the runner died\n"
    write_script(folder, mine)

    before = state_of(campaign)
    for argv in (["status"], ["status", "--json"], ["results"], ["show", "1"],
                 ["report", "--no-hardware", "--out", str(tmp_path / "report")]):
        assert cli.main([*argv, "-C", str(folder)]) == 0, argv
        assert state_of(campaign) == before, argv
    from autoresearch_magics.server import payloads
    payloads.status(folder, tmp_path)
    assert state_of(campaign) == before
    assert len(Campaign.open(folder).rows()) == 1

    capsys.readouterr()
    assert cli.main(["loop", "-C", str(folder), "--max", "0"]) == 0   # a runner: it takes the lock and recovers
    err = capsys.readouterr().err
    assert "experiment #2 ('cut off') was cut off" in err and "kept your edited train.py" in err
    assert (folder / "train.py").read_text() == mine                  # byte for byte
    row = campaign.rows()[-1]
    assert (row["experiment"], row["status"], row["crash_reason"]) == ("2", "crash", "interrupted")
    assert campaign.ledger.tip() == campaign.ledger.resolve(experiment_ref("t", 1))
    assert wait_for(lambda: all_gone(pids), 10)
    assert campaign.run("my idea")[-1].experiment == 3                 # the campaign goes on
    assert campaign.ledger.read_file(experiment_ref("t", 3), "train.py") == mine


KERNEL = "autoresearch-faults"


@pytest.fixture
def kernel_manager(tmp_path, monkeypatch):
    """Returns a started kernel of this interpreter (in a temporary JUPYTER_PATH), shut down afterwards."""
    from jupyter_client import KernelManager
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "autoresearch faults", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel(cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    yield km, client
    client.stop_channels()
    km.shutdown_kernel(now=True)


def execute(client, code: str) -> None:
    reply = client.execute_interactive(code, timeout=60)
    assert reply["content"]["status"] == "ok"


def test_kernel_restart_mid_run_is_recorded_as_interrupted(tmp_path, kernel_manager):
    km, client = kernel_manager
    execute(client, "%load_ext autoresearch_magics\n%autoresearch init camp --tag k --template toy --budget 0.3")
    execute(client, "%autoresearch run -m baseline --wait")
    pid_file = tmp_path / "pids"
    write_script(tmp_path / "camp", hanging_script(pid_file))
    execute(client, '%autoresearch run -m "cut off by the restart"')
    pids = wait_for(lambda: started(pid_file))
    km.restart_kernel(now=False)                   # what a front end's "restart kernel" does
    campaign = Campaign.open(tmp_path / "camp")
    row = campaign.rows()[-1]
    assert (row["description"], row["status"], row["crash_reason"]) == ("cut off by the restart", "crash",
                                                                        "interrupted")
    assert wait_for(lambda: all_gone(pids), 10)
    rows = len(campaign.rows())
    campaign.recover()                              # whatever the dying kernel left: recorded once
    assert len(campaign.rows()) == rows
    assert campaign.run("after the restart")[-1].experiment == 3


def test_loop_exit_code_says_whether_it_failed(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    Campaign.init(folder, tag="t", budget_s=1)
    # a proposer that fails every time: the loop gives up after three failures, exit code 1
    assert cli.main(["loop", "-C", str(folder), "--proposer", "agent", "--agent-cmd", "exit 3", "--max", "5"]) == 1
    assert "failed 3 times in a row" in capsys.readouterr().err
    # a stop rule ends it: exit code 0
    assert cli.main(["loop", "-C", str(folder), "--max-experiments", "2"]) == 0
    assert "reached the maximum of 2 experiments" in capsys.readouterr().err


def test_the_command_the_busy_message_suggests_is_one_the_cli_accepts(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    other = Campaign.init(folder, tag="t", budget_s=1)
    with other.lock.holding("loop"):
        assert cli.main(["run", "-C", str(folder), "-m", "second runner"]) == 2
    message = capsys.readouterr().err
    suggested = re.findall(r"`(autoresearch [^`]+)`", message)
    assert suggested, message
    for command in suggested:
        words = shlex.split(command)[1:]
        cli.build_parser().parse_args(words)       # argparse exits (SystemExit) on a command it rejects
        assert cli.main(words) == 0


def test_an_edit_made_while_an_experiment_runs_survives_its_discard(tmp_path):
    import threading
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    campaign = Campaign.init(folder, tag="t", budget_s=30)
    campaign.run("baseline")
    go = tmp_path / "go"
    write_script(folder, f"import os, time\nopen({str(tmp_path / 'pids')!r}, 'w').write('{{}} 0'.format(os.getpid()))\n"
                         f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\n"
                         "print('---')\nprint('val_bpb: 2.0')\n")          # worse than the baseline: discarded
    messages = []
    from autoresearch_magics.core.events import CampaignListener
    listener = CampaignListener()
    listener.message = messages.append
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", campaign.run("worse", listener=listener)))
    worker.start()
    wait_for(lambda: (tmp_path / "pids").exists())
    mine = SUMMARY_SCRIPT + "# written while the experiment ran\n"
    write_script(folder, mine)
    go.touch()
    worker.join(30)
    assert box["r"][-1].status == "discard"
    assert (folder / "train.py").read_text() == mine                  # not reverted over
    assert any("kept your edit of train.py" in m for m in messages)
    assert campaign.ledger.tip() == campaign.ledger.resolve(experiment_ref("t", 1))


def test_recovery_ends_what_survived_both_the_runner_and_its_shepherd(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    campaign = Campaign.init(folder, tag="t", budget_s=30)
    campaign.run("baseline")
    pid_file = tmp_path / "pids"
    # the grandchild leaves the script's session, as a daemon would
    write_script(folder, hanging_script(pid_file).replace("'import time; time.sleep(300)'])",
                                                          "'import time; time.sleep(300)'], start_new_session=True)"))
    runner = cli_process("run", "-C", str(folder), "-m", "cut off")
    pids = wait_for(lambda: started(pid_file))
    shepherd = psutil.Process(pids[0]).parent()
    while shepherd.parent() is not None and shepherd.parent().pid != runner.pid:
        shepherd = shepherd.parent()
    shepherd.kill()                                 # the shepherd dies first, then its runner: nothing is told
    runner.kill()
    runner.wait()
    time.sleep(0.5)
    assert not all_gone(pids)                       # orphans of the run, out of reach of any parent
    assert cli.main(["loop", "-C", str(folder), "--max", "0"]) == 0   # a runner recovers: found by their marker
    assert wait_for(lambda: all_gone(pids), 15)
    assert campaign.rows()[-1]["crash_reason"] == "interrupted"
