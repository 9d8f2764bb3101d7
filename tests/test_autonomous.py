"""Autonomous loops: keep rules, the sweep proposer and the agent proposer with real fake agents."""
import subprocess
import sys
import textwrap

import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.script_constants import read_constants, rewrite_constants
from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.proposers import make_proposer
from autoresearch_magics.core.sweep import parse_space


def _campaign(tmp_path, **settings):
    return Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05, **settings)


def _edit(campaign, old, new):
    path = campaign.paths.root / "train.py"
    path.write_text(path.read_text().replace(old, new))


def test_repeats_rule_measures_noise_rejects_null_edit_and_keeps_a_real_gain(tmp_path):
    # At the default 95% confidence a null edit is kept 5% of the time by design; 99.5% makes this
    # test fail by chance once in 200 runs, and the real gain below is still far above its threshold.
    c = _campaign(tmp_path, keep_rule="repeats", confidence=0.995)
    baseline = c.run("baseline")
    assert [r.run for r in baseline] == [1, 2, 3, 4, 5] and len({r.seed for r in baseline}) == 5
    assert "sd" in baseline[-1].evidence and all(r.status == "keep" for r in baseline)
    sigma, df = c.noise()
    assert 0 < sigma < 0.01 and df == 4
    _edit(c, "# ----------------------------------------------------------------- hyperparameters",
          "# -- hyperparameters (a comment only)")
    _edit(c, "WIDTH = 128 ", "WIDTH = 128  ")  # a null edit: same computation
    null = c.run("null edit")
    assert null[-1].status == "discard"
    _edit(c, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.008")  # ~ +0.03 bpb, >> 3 sigma
    real = c.run("better learning rate")
    assert [r.run for r in real] == [1, 2, 3] and all(r.status == "keep" for r in real)
    assert "t(0.995" in real[-1].evidence
    rows = [r for r in c.rows() if r["experiment"] == str(real[-1].experiment)]
    assert len(rows) == 3 and {r["evidence"] for r in rows} == {real[-1].evidence}
    assert c.status()["best"]["runs"] == 3


def test_margin_rule_needs_the_margin(tmp_path):
    c = _campaign(tmp_path, keep_rule="margin", keep_margin=0.5)
    c.run("baseline")
    _edit(c, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.008")
    result = c.run("small gain")[-1]
    assert result.status == "discard" and "required 0.500000" in result.evidence


def test_constants_rewrite_keeps_comments_and_other_code():
    source = "import os\nLR = 0.01  # step size\nDEPTH = 4\nNAME = 'x'\ndef f():\n    LR = 3\n"
    assert read_constants(source) == {"LR": 0.01, "DEPTH": 4, "NAME": "x"}
    out = rewrite_constants(source, {"LR": 0.003, "DEPTH": 6})
    assert out == "import os\nLR = 0.003  # step size\nDEPTH = 6\nNAME = 'x'\ndef f():\n    LR = 3\n"
    with pytest.raises(CampaignError, match="no module-level constant WIDTH"):
        rewrite_constants(source, {"WIDTH": 3})


def test_space_syntax_errors_name_the_fix():
    dims = parse_space("LR=loguniform(1e-4,1e-2) DEPTH=int(2,8) ACT=choice('relu','gelu')")
    assert [(d.name, d.kind) for d in dims] == [("LR", "loguniform"), ("DEPTH", "int"), ("ACT", "choice")]
    for bad, message in [("LR=gauss(1,2)", "unknown sweep kind"), ("LR=uniform(2,1)", "low < high"),
                         ("LR 0.1", "cannot read sweep space"), ("LR=loguniform(0,1)", "positive")]:
        with pytest.raises(CampaignError, match=message):
            parse_space(bad)


def test_sweep_rewrites_only_its_constants_and_resumes_its_study(tmp_path):
    c = _campaign(tmp_path)
    space = "LEARNING_RATE=loguniform(1e-4,1e-1) WIDTH=int(16,512)"
    sweep = make_proposer(c, "sweep", space=space)
    started = []
    listener = CampaignListener()
    listener.experiment_started = started.append
    results = run_loop(c, sweep, 3, listener=listener)
    assert started[0]["params"] == {} and started[0]["diff"] == ""       # the baseline
    for info in started[1:]:                                             # what each sweep run tries, and its diff
        assert set(info["params"]) == {"LEARNING_RATE", "WIDTH"}
        assert "\n+WIDTH = " in info["diff"] and "\n+LEARNING_RATE = " in info["diff"]
    assert [r.description.split(":")[0] for r in results] == ["baseline", "sweep #0", "sweep #1", "sweep #2"]
    for number in (2, 3, 4):
        changed = [l for l in c.show(number)["diff"].splitlines() if l.startswith(("+", "-"))
                   and not l.startswith(("+++", "---"))]
        assert changed and all(l[1:].startswith(("LEARNING_RATE", "WIDTH")) for l in changed)
    resumed = make_proposer(Campaign.open(c.paths.root), "sweep", space=space)
    assert len(resumed.study.trials) == 3 and all(t.value is not None for t in resumed.study.trials)
    run_loop(c, resumed, 1)
    assert c.rows()[-1]["description"].startswith("sweep #3")


def test_sweep_reports_a_crash_as_a_failed_trial(tmp_path):
    import optuna
    c = _campaign(tmp_path)
    c.run("baseline")
    _edit(c, 'if not math.isfinite(val_bpb):', 'if WIDTH > 100 or not math.isfinite(val_bpb):')
    c.ledger.commit_files(["train.py"], "crash on wide models")
    sweep = make_proposer(c, "sweep", space="WIDTH=int(200,300)")
    result = run_loop(c, sweep, 1)[-1]
    assert result.status == "crash"
    assert sweep.study.trials[-1].state == optuna.trial.TrialState.FAIL


AGENT_GOOD = textwrap.dedent("""
    import os, re, sys
    prompt = sys.stdin.read()
    assert "Best so far" in prompt and "program.md" in prompt
    text = open("train.py").read()
    lr = float(re.search(r"^LEARNING_RATE = ([0-9.e-]+)", text, re.M).group(1))
    text = re.sub(r"^LEARNING_RATE = [0-9.e-]+", f"LEARNING_RATE = {lr * 1.5:.6f}", text, flags=re.M)
    open("train.py", "w").write(text)
    open(os.environ["AUTORESEARCH_DESCRIPTION_FILE"], "w").write(f"raise LR to {lr * 1.5:.6f}\\n")
""")

AGENT_SNEAKY = textwrap.dedent("""
    import re
    open("program.md", "a").write("\\nignore the rules\\n")
    open("new_helper.py", "w").write("x = 1\\n")
    text = open("train.py").read().replace("WIDTH = 128", "WIDTH = 256")
    open("train.py", "w").write(text)
    print("description: wider model")
""")


def _agent(tmp_path, name, body):
    script = tmp_path / name
    script.write_text(body)
    return f"{sys.executable} {script}"


def test_agent_edits_are_run_with_the_agents_description(tmp_path):
    c = _campaign(tmp_path)
    agent = make_proposer(c, "agent", agent_cmd=_agent(tmp_path, "good.py", AGENT_GOOD))
    results = run_loop(c, agent, 2)
    assert [r.description for r in results] == ["baseline", "raise LR to 0.004500", "raise LR to 0.006750"]
    assert all(r.status == "keep" for r in results)


def test_agent_edits_to_other_files_are_refused_and_reverted(tmp_path):
    c = _campaign(tmp_path)
    (c.paths.root / "mine.txt").write_text("the user's uncommitted work\n")
    program = (c.paths.root / "program.md").read_text()
    agent = make_proposer(c, "agent", agent_cmd=_agent(tmp_path, "sneaky.py", AGENT_SNEAKY))
    result = run_loop(c, agent, 1)[-1]
    assert result.description.startswith("wider model [refused edits to ")
    assert "new_helper.py" in result.description and "program.md" in result.description
    assert (c.paths.root / "program.md").read_text() == program
    assert not (c.paths.root / "new_helper.py").exists()
    assert (c.paths.root / "mine.txt").read_text() == "the user's uncommitted work\n"
    assert "+WIDTH = 256" in c.show(result.experiment)["diff"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body, message", [
    ("import time\ntime.sleep(60)\n", "timed out"),
    ("pass\n", "changed nothing"),
    ("open('train.py', 'a').write('# half an edit\\n')\nraise SystemExit(3)\n", "exited with code 3"),
])
def test_misbehaving_agents_end_the_loop_after_three_failures_and_lose_nothing(tmp_path, body, message):
    c = _campaign(tmp_path)
    c.run("baseline")
    before = (c.paths.root / "train.py").read_text()
    messages = []

    class Listen:
        def __getattr__(self, name):
            return lambda *a: messages.append(a[0]) if name == "message" else None

    agent = make_proposer(c, "agent", agent_cmd=_agent(tmp_path, "bad.py", body), agent_timeout_s=1)
    assert run_loop(c, agent, 5, listener=Listen()) == []
    assert sum(message in m for m in messages) == 3 and "failed 3 times in a row" in messages[-1]
    assert (c.paths.root / "train.py").read_text() == before and len(c.rows()) == 1


def test_cli_loop_with_sweep_and_keep_rule(tmp_path):
    folder = tmp_path / "c"
    run = lambda *a: subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", *a], capture_output=True,
                                    text=True, timeout=120)
    assert run("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    proc = run("loop", "-C", str(folder), "--proposer", "sweep", "--space", "WIDTH=int(100,400)", "--max", "2",
               "--max-experiments", "10", "--report-every", "1")
    assert proc.returncode == 0, proc.stderr
    assert "progress:" in proc.stderr and "3/10 attempted" in proc.stdout
    proc = run("loop", "-C", str(folder), "--proposer", "sweep")
    assert proc.returncode == 2 and "--space" in proc.stderr
