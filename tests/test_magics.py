"""The magics through an in-process IPython shell: parsing, background runs, queueing, panels."""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ipywidgets
import psutil
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from autoresearch_magics.core.background import EXIT_GRACE_S
from autoresearch_magics.core.live import read_json, read_live
from autoresearch_magics.magics import AutoresearchMagics
from autoresearch_magics.magics.parsing import ALL_VERBS

TOY_BUDGET = "0.3"


class RaisingShell(InteractiveShell):
    """A shell whose run_cell re-raises what the cell raised, so tests can assert on it."""

    def run_cell(self, raw_cell, *args, **kwargs):
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """Returns a fresh shell with fresh autoresearch magics (widgets on), working in a temporary folder;
    afterwards its runs, the dashboard poller and the shell itself are gone."""
    monkeypatch.chdir(tmp_path)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"   # nothing of the shell outlives the test
    ip = RaisingShell.instance(config=config)
    magics = AutoresearchMagics(ip)
    ip.register_magics(magics)
    magics.widgets = "on"
    yield ip
    magics.shutdown(grace_s=EXIT_GRACE_S)      # stops the runs and the dashboard poller
    RaisingShell.clear_instance()


def magics_of(ip) -> AutoresearchMagics:
    return ip.magics_manager.registry["AutoresearchMagics"]


def ar(ip, line):
    return ip.run_line_magic("autoresearch", line)


def init_toy(ip, budget=TOY_BUDGET, folder="camp"):
    ar(ip, f"init {folder} --tag t --template toy --budget {budget}")
    return Path(folder).resolve()


def toy_source(root: Path, **constants) -> str:
    text = (root / "train.py").read_text()
    for name, value in constants.items():
        lines = [f"{name} = {value}" + line[line.index("#") - 1:] if line.startswith(f"{name} =") and "#" in line
                 else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    return text


def panels(ip):
    return [panel for _, panel in magics_of(ip).active.jobs]


def running_child(paths):
    """Returns the training process of the run in flight (from the runner's journal), or None."""
    runs = (read_json(paths.current) or {}).get("runs") or [{}]
    return runs[0].get("child_pid")


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# -- parsing ---------------------------------------------------------------------------------------
def test_help_is_generated_from_the_declarations(shell):
    doc = shell.magics_manager.magics["line"]["autoresearch"].__doc__
    for verb in ("init", "run", "loop", "status", "results", "show", "stop", "hardware", "edit", "wait", "plot",
                 "panel"):
        assert f"%autoresearch {verb}" in doc
    assert "--budget BUDGET_S" in doc and "--max-experiments" in doc
    cell_doc = shell.magics_manager.magics["cell"]["experiment"].__doc__
    assert "--patch" in cell_doc and "-m MESSAGE" in cell_doc


def test_unknown_sub_command_names_the_valid_ones(shell):
    with pytest.raises(UsageError) as err:
        ar(shell, "frobnicate")
    assert str(err.value) == (f"unknown sub-command 'frobnicate': use one of {', '.join(ALL_VERBS)} "
                              f"(`%autoresearch?` shows each one's options)")
    assert {"init", "run", "loop", "status", "edit", "wait", "plot", "panel"} <= set(ALL_VERBS)


def test_bad_option_shows_the_verb_usage(shell):
    with pytest.raises(UsageError) as err:
        ar(shell, "run --bogus")
    text = " ".join(str(err.value).split())
    assert text.startswith("%autoresearch run: unrecognized arguments: --bogus usage: %autoresearch run [-h] "
                           "[-m MESSAGE] [--seed SEED] [--prune | --no-prune] [--wait]")


def test_help_option_prints_help_and_keeps_the_kernel(shell, capsys):
    assert ar(shell, "run --help") is None
    assert "one-line hypothesis" in capsys.readouterr().out


def test_unbalanced_quote_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="Quote the message"):
        ar(shell, "run -m don't")


def test_without_a_campaign_the_error_names_init(shell):
    with pytest.raises(UsageError, match=r"start one with `%autoresearch init --tag TAG`"):
        ar(shell, "status")


def test_experiment_without_message_is_refused(shell):
    init_toy(shell)
    with pytest.raises(UsageError, match="describe the hypothesis"):
        shell.run_cell("%%experiment\nprint(1)\n")


# -- running ---------------------------------------------------------------------------------------
def test_experiment_cell_returns_at_once_and_keeps_quotes_and_dollars(shell, capsys):
    root = init_toy(shell, budget="0.5")
    shell.user_ns["x"] = "EXPANDED"
    ar(shell, "run -m baseline")
    shell.run_cell(f'%%experiment -m "wider MLP, $x stays"\n{toy_source(root, WIDTH=256)}')
    job, _ = magics_of(shell).active.jobs[-1]
    assert not job.finished                      # the cell returned while its experiment waits or runs
    ar(shell, "wait")
    out = capsys.readouterr().out
    assert "experiment 2 " in out and "'wider MLP, $x stays': KEEP" in out
    frame = ar(shell, "results")
    assert list(frame["description"]) == ["baseline", "wider MLP, $x stays"]
    assert "WIDTH = 256" in (root / "train.py").read_text()


def test_second_experiment_is_queued_and_its_panel_says_so(shell):
    root = init_toy(shell)
    magics_of(shell).max_queued = 1
    ar(shell, "run -m baseline")
    shell.run_cell(f'%%experiment -m "wider"\n{toy_source(root, WIDTH=256)}')
    queued_panel = panels(shell)[1]
    assert "QUEUED" in queued_panel.header.value and "1 ahead" in queued_panel.header.value
    with pytest.raises(UsageError, match="1 experiments already wait behind the running one"):
        shell.run_cell(f'%%experiment -m "narrow"\n{toy_source(root, WIDTH=64)}')
    ar(shell, "wait")
    assert "KEEP" in queued_panel.outcome.value and "#2" in queued_panel.header.value


def test_patch_is_applied_to_the_best_when_the_run_starts(shell):
    root = init_toy(shell)
    ar(shell, "run -m baseline --wait")
    patch = ("--- a/train.py\n+++ b/train.py\n@@ -14,2 +14,2 @@\n"
             "-LEARNING_RATE = 0.003   # step size (dimensionless); optimum 0.01\n"
             "+LEARNING_RATE = 0.01    # step size (dimensionless); optimum 0.01\n"
             " WIDTH = 128             # hidden units; optimum 256\n")
    shell.run_cell(f'%%experiment --patch -m "lr 0.01"\n{patch}')
    panel = panels(shell)[-1]
    assert "+LEARNING_RATE = 0.01" in panel.diff.value
    ar(shell, "wait")
    assert "LEARNING_RATE = 0.01 " in (root / "train.py").read_text()
    assert "KEEP" in panel.outcome.value
    # the run's start event brought the core's diff against the commit it was made from
    parent = magics_of(shell).active.reader.rows()[0]["commit"]
    assert f"diff against the best ({parent})" in panel.diff.value and "+LEARNING_RATE = 0.01" in panel.diff.value


def test_patch_that_does_not_fit_is_refused_in_the_cell(shell):
    init_toy(shell)
    patch = "@@ -1,1 +1,1 @@\n-NOT_THERE = 1\n+NOT_THERE = 2\n"
    with pytest.raises(UsageError, match=r"hunk @@ -1,1 \+1,1 @@ does not apply"):
        shell.run_cell(f'%%experiment --patch -m "nope"\n{patch}')


def test_crash_panel_shows_the_reason_and_the_last_log_lines(shell):
    init_toy(shell)
    ar(shell, "run -m baseline --wait")
    shell.run_cell('%%experiment -m "broken" --wait\nraise ValueError("shapes do not match")\n')
    panel = panels(shell)[-1]
    assert "CRASH" in panel.outcome.value and "ValueError: shapes do not match" in panel.outcome.value
    assert "Traceback" in panel.tail.outputs[0]["text"]
    assert panel.progress.bar_style == "danger"


def test_stop_ends_the_run_and_cancels_the_queue(shell, capsys):
    root = init_toy(shell, budget="30")
    ar(shell, "run -m long")
    ar(shell, "run -m queued")
    assert wait_for(lambda: (read_live(magics_of(shell).active.reader.paths) or {}).get("child_pid"))
    child = read_live(magics_of(shell).active.reader.paths)["child_pid"]
    ar(shell, "stop")
    assert magics_of(shell).active.jobs[0][0].finished   # stop returns once the run is recorded
    out = capsys.readouterr().out
    assert "cancelled 1 queued: 'queued'" in out
    frame = ar(shell, "results")
    assert list(frame["crash_reason"]) == ["stopped by user"]
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert "CANCELLED" in panels(shell)[1].header.value


def test_loop_runs_in_the_background_until_its_maximum(shell, capsys):
    init_toy(shell)
    ar(shell, 'loop --max 2 -m "noise check"')
    assert panels(shell)[0].kind == "loop"
    ar(shell, "wait")
    frame = ar(shell, "results")
    assert list(frame["description"]) == ["baseline", "noise check", "noise check"]
    assert "DONE" in panels(shell)[0].header.value


def test_results_are_a_typed_frame(shell):
    init_toy(shell)
    ar(shell, "run -m baseline --wait")
    frame = ar(shell, "results")
    assert str(frame["val_bpb"].dtype) == "float64"
    assert str(frame["status"].dtype) == "category"
    assert str(frame["experiment"].dtype) == "Int64"
    assert str(frame["started_at"].dtype).startswith("datetime64")
    assert ar(shell, "results --json")[0]["status"] == "keep"


def test_status_json_and_dashboard(shell):
    init_toy(shell)
    ar(shell, "run -m baseline --wait")
    status = ar(shell, "status --json")
    assert status["best"]["description"] == "baseline"
    ar(shell, "status")
    from autoresearch_magics.presentation.dashboard import POLLER
    board = POLLER._dashboards[str(magics_of(shell).active.root)]
    assert "best val_bpb" in board.summary.value and "baseline" in board.table.value
    assert board.plot.value[:4] == b"\x89PNG"


def test_plot_is_saved_as_progress_png(shell):
    root = init_toy(shell)
    ar(shell, "run -m baseline --wait")
    ar(shell, "plot --save")
    assert (root / "progress.png").read_bytes()[:4] == b"\x89PNG"


# -- edit --------------------------------------------------------------------------------------------
def test_edit_prefills_the_next_cell(shell):
    init_toy(shell)
    ar(shell, 'edit -m "wider MLP"')
    assert shell.rl_next_input.startswith('%%experiment -m "wider MLP"\n')
    assert "WIDTH = 128" in shell.rl_next_input


def test_edit_in_vs_code_shows_the_cell_to_copy(shell, capsys):
    init_toy(shell)
    magics_of(shell).widgets = "off"
    shell.user_ns["__vsc_ipynb_file__"] = "/somewhere/campaign.ipynb"
    ar(shell, "edit")
    assert getattr(shell, "rl_next_input", None) is None   # nothing pre-filled
    out = capsys.readouterr().out
    assert "VS Code cannot pre-fill the next cell" in out and '%%experiment -m ""\n' in out


# -- traffic and restarts ----------------------------------------------------------------------------
def test_panel_sends_at_most_ten_messages_a_second(shell, monkeypatch):
    sent = collections.defaultdict(list)
    original = ipywidgets.Widget._send

    def counting(self, msg, buffers=None):
        sent[self.model_id].append(time.monotonic())
        return original(self, msg, buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", counting)
    init_toy(shell, budget="2.5")
    sent.clear()
    ar(shell, "run -m baseline --wait")   # the only widgets alive: this run's panel
    times = sorted(t for stamps in sent.values() for t in stamps)
    assert times, "the panel sent nothing"
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10, f"{busiest} messages in one second"


def test_init_again_records_a_run_whose_kernel_died(shell, tmp_path, capsys):
    root = init_toy(shell, budget="60")
    script = ("import sys; from autoresearch_magics import Campaign; "
              "Campaign.open(sys.argv[1]).run('cut short')")
    runner = subprocess.Popen([sys.executable, "-c", script, str(root)])
    paths = magics_of(shell).active.reader.paths
    assert wait_for(lambda: running_child(paths))
    child = running_child(paths)
    runner.send_signal(signal.SIGKILL)   # the kernel dies
    runner.wait()
    capsys.readouterr()
    ar(shell, "init camp")
    out = capsys.readouterr().out
    assert "was cut off (kernel restart?): recorded as a crash, 'interrupted'" in out
    frame = ar(shell, "results")
    assert list(frame["crash_reason"]) == ["interrupted"]
    assert wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE)


def test_report_writes_the_shareable_summary(shell, capsys):
    root = init_toy(shell)
    ar(shell, "run -m baseline --wait")
    ar(shell, "report --no-hardware")
    assert "wrote" in capsys.readouterr().out
    assert (root / "autoresearch-summary.md").exists() and (root / "progress.png").exists()


def test_loop_proposer_without_its_option_is_a_usage_error(shell):
    init_toy(shell)
    with pytest.raises(UsageError, match="needs --space"):
        ar(shell, "loop --proposer sweep")
