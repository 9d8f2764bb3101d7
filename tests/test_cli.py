"""The `autoresearch` command as a user runs it: a real process per verb."""
import json
import re
import subprocess
import sys

import pytest


def cli(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_init_run_status_results_show_in_a_terminal(tmp_path):
    folder = tmp_path / "camp"
    out = cli("init", str(folder), "--tag", "nov22", "--template", "toy", "--budget", "0.3",
              "--max-experiments", "24", "--deadline", "8h").stdout
    assert re.search(r"stop condition not yet met: 0/24 attempted, (7h59m|8h00m) remaining", out)
    run = cli("run", "-m", "baseline", cwd=folder)
    assert "experiment 1" in run.stdout and "KEEP" in run.stdout
    status = json.loads(cli("status", "--json", cwd=folder).stdout)
    assert status["workdir"] == str(folder) and status["branch"] == "autoresearch/nov22"
    assert status["best"]["experiment"] == 1 and status["stop"]["max_experiments"] == 24
    text = cli("status", cwd=folder).stdout
    assert "objective: minimise val_bpb" in text and "1/24 attempted" in text
    assert "baseline" in cli("results", cwd=folder).stdout
    records = json.loads(cli("results", "--json", "-C", str(folder)).stdout)
    assert records[0]["status"] == "keep"
    assert "log tail" in cli("show", "1", cwd=folder).stdout


def test_loop_runs_until_max(tmp_path):
    folder = tmp_path / "camp"
    cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.2")
    cli("loop", "--max", "2", cwd=folder)
    assert len(json.loads(cli("results", "--json", cwd=folder).stdout)) == 3  # baseline + 2


def test_user_errors_exit_2_with_a_message_naming_the_fix(tmp_path):
    proc = cli("status", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "autoresearch init" in proc.stderr
    proc = cli("init", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "--tag" in proc.stderr
    proc = cli("init", str(tmp_path / "y"), "--tag", "t", "--template", "nope", check=False)
    assert proc.returncode == 2 and "toy" in proc.stderr
    proc = cli("frobnicate", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.timeout(120)
def test_hardware_reports_the_cpu_as_json():
    info = json.loads(cli("hardware").stdout)
    assert info["device"] in ("cpu", "cuda", "mps") and info["cpu_count"] >= 1
    if info["device"] == "cpu":
        assert isinstance(info["bf16_fast"], bool) and info["fp32_gflops"] > 0
