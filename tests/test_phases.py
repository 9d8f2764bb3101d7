"""Where a run's time goes: one-time preparation at init, the timeout counted from the first progress
line, phase timings in rows and live.json, a script's own budget, a crashed baseline run again."""
import json

import pytest
from helpers import write_script

from autoresearch_magics import Campaign
from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.live import LiveState
from autoresearch_magics.core.paths import CampaignPaths

COUNTING_PREPARE = '''
import os, pathlib, sys
data = pathlib.Path(os.environ["AUTORESEARCH_DATA_DIR"])
count = data / "prepared-count"
count.write_text(str(int(count.read_text()) + 1 if count.exists() else 1))
print("building the corpus in", data)
if os.environ.get("PREPARE_FAILS") == "1":
    print("RuntimeError: no corpus")
    sys.exit(3)
'''

# A script that prints progress lines: start-up, training, evaluation, each `PHASE_S` long.
PHASED = '''
import os, time
STARTUP_S, TRAIN_S, EVAL_S, HANG = {startup}, {train}, {evaluation}, {hang}
OWN_BUDGET = {own_budget}
time.sleep(STARTUP_S)
start = time.time()
step = 0
while True:
    done = time.time() - start
    if done >= TRAIN_S and not HANG:
        break
    fraction = min(done / TRAIN_S, 1.0) * (TRAIN_S / OWN_BUDGET if OWN_BUDGET else 1.0)
    remaining = (OWN_BUDGET or TRAIN_S) * (1 - fraction)
    print(f"step {{step:05d}} ({{100 * fraction:.1f}}%) | loss: {{3 - fraction:.4f}} | remaining: {{remaining:.0f}}s",
          flush=True)
    step += 1
    time.sleep(0.1)
time.sleep(EVAL_S)
print("---")
print("val_bpb:          1.000000")
print(f"training_seconds: {{TRAIN_S}}")
'''


def phased(startup=0.0, train=1.0, evaluation=0.0, hang=False, own_budget=0):
    return PHASED.format(startup=startup, train=train, evaluation=evaluation, hang=hang, own_budget=own_budget)


class Collect(CampaignListener):
    def __init__(self):
        self.messages, self.phases = [], []

    def message(self, text):
        self.messages.append(text)

    def updated(self, snap):
        if not self.phases or self.phases[-1] != snap.get("phase"):
            self.phases.append(snap.get("phase"))


def _attached(folder, body, **settings):
    folder.mkdir()
    write_script(folder, body)
    return Campaign.init(folder, tag="t", **settings)


@pytest.mark.timeout(60)
def test_init_prepares_once_in_the_data_folder_with_output_to_the_listener(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, "print('---'); print('val_bpb: 1.0')")
    write_script(folder, COUNTING_PREPARE, "prepare.py")
    heard = Collect()
    campaign = Campaign.init(folder, tag="t", prepare_command="python prepare.py", listener=heard)
    count = campaign.paths.data / "prepared-count"
    assert count.read_text() == "1"
    assert any("building the corpus in" in m and str(campaign.paths.data) in m for m in heard.messages)
    Campaign.init(folder, listener=heard)             # a second init: prepared already
    assert count.read_text() == "1"
    result = Campaign.open(folder).run("baseline")[-1]  # an experiment does not prepare again
    assert result.status == "keep" and count.read_text() == "1"


@pytest.mark.timeout(60)
def test_a_failed_preparation_names_command_and_log_and_runs_again_at_the_next_init(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, "print('---'); print('val_bpb: 1.0')")
    write_script(folder, COUNTING_PREPARE, "prepare.py")
    monkeypatch.setenv("PREPARE_FAILS", "1")
    with pytest.raises(CampaignError) as failure:
        Campaign.init(folder, tag="t", prepare_command="python prepare.py")
    text = str(failure.value)
    assert "python prepare.py" in text and "prepare.log" in text and "exit" in text and "no corpus" in text
    monkeypatch.setenv("PREPARE_FAILS", "0")
    campaign = Campaign.init(folder)    # resumes: the preparation never completed, so it runs again
    assert (campaign.paths.data / "prepared-count").read_text() == "2"
    assert not campaign.rows()


def test_the_tinylm_template_declares_its_preparation_and_toy_none(tmp_path):
    from autoresearch_magics.core import templates
    assert templates.prepare_command_of("toy") == ""
    if (templates.path_of("tinylm") / "prepare.py").is_file():
        assert templates.prepare_command_of("tinylm") == "python prepare.py"
    toy = Campaign.init(tmp_path / "toy", tag="t", template="toy", budget_s=0.3)
    assert toy.config.prepare_command == "" and not (toy.paths.state / "prepared.json").exists()


@pytest.mark.timeout(90)
def test_timeout_counts_from_the_first_progress_line(tmp_path):
    # 3 s before the first progress line, 1 s of training: within a 2 s timeout, as start-up is apart
    campaign = _attached(tmp_path / "c", phased(startup=3.0, train=1.0), budget_s=1, timeout_s=2.5,
                         startup_timeout_s=20)
    result = campaign.run("slow start")[-1]
    assert result.status == "keep", result.crash_reason
    hangs = _attached(tmp_path / "h", phased(startup=0.5, hang=True), budget_s=1, timeout_s=1.5,
                      startup_timeout_s=20)
    crashed = hangs.run("hangs while training")[-1]
    assert crashed.status == "crash" and "1.5s after its first progress line" in crashed.crash_reason
    silent = _attached(tmp_path / "s", "import time; time.sleep(30)", budget_s=1, timeout_s=1, startup_timeout_s=1.5)
    crashed = silent.run("never starts")[-1]
    assert "no progress line within the start-up limit of 1.5s" in crashed.crash_reason


@pytest.mark.timeout(60)
def test_phases_are_recorded_in_the_row_and_followed_in_live_state(tmp_path):
    campaign = _attached(tmp_path / "c", phased(startup=1.5, train=1.5, evaluation=1.5), budget_s=1.5)
    heard = Collect()
    result = campaign.run("phased", listener=heard)[-1]
    assert result.status == "keep", result.crash_reason
    row = campaign.rows()[-1]
    startup, train, evaluation = (float(row[c]) for c in ("startup_s", "train_wall_s", "eval_s"))
    assert startup >= 1.4 and train >= 1.2 and evaluation >= 1.4
    assert float(row["overhead_s"]) >= 0 and startup + train + evaluation <= float(row["elapsed_min"]) * 60 + 0.2
    assert heard.phases[0] == "start-up" and "training" in heard.phases and heard.phases[-1] == "evaluation"


def test_live_state_phase_moves_through_training_to_evaluation(tmp_path):
    paths = CampaignPaths.of(tmp_path)
    paths.state.mkdir(parents=True)
    live = LiveState(paths, 1, "x", "abcdef0", 60.0)
    assert live.snapshot()["phase"] == "start-up"
    live.on_lines(["loading data", "step 00001 (25.0%) | loss: 3.0 | remaining: 45s"])
    snap = live.snapshot()
    assert snap["phase"] == "training" and snap["training_seconds"] == 15.0
    live.on_lines(["step 00009 (100.0%) | loss: 2.0 | remaining: 0s"])
    assert live.snapshot()["phase"] == "evaluation"
    live.flush(force=True)
    assert json.loads(paths.live.read_text())["phase"] == "evaluation"


@pytest.mark.timeout(60)
def test_a_script_with_its_own_budget_is_named_once_and_its_timeout_says_where_it_was(tmp_path):
    # the script works to its own 300 s budget; the campaign's is 2 s, and the run is killed meanwhile
    campaign = _attached(tmp_path / "c", phased(train=60.0, own_budget=300, hang=True), budget_s=2, timeout_s=2)
    heard = Collect()
    result = campaign.run("own budget", listener=heard)[-1]
    told = [m for m in heard.messages if "own budget" in m]
    assert len(told) == 1 and "about 300s" in told[0] and "AUTORESEARCH_BUDGET_S" in told[0] \
        and "--budget 300" in told[0]
    assert result.status == "crash"
    assert "% of the script's own 300 s budget; the campaign's budget is 2 s" in result.crash_reason


@pytest.mark.timeout(60)
def test_status_shows_the_training_share_and_runs_per_hour(tmp_path):
    from autoresearch_magics.presentation.text import format_status
    campaign = _attached(tmp_path / "c", phased(startup=1.0, train=1.5), budget_s=1.5)
    assert campaign.status()["time_use"] is None
    campaign.run("baseline")
    use = campaign.status()["time_use"]
    row = campaign.rows()[-1]
    wall = float(row["elapsed_min"]) * 60 + float(row["overhead_s"])
    assert use["runs"] == 1 and use["training_share"] == pytest.approx(float(row["train_wall_s"]) / wall, abs=0.01)
    assert 0.2 < use["training_share"] < 0.8
    assert use["experiments_per_hour"] == pytest.approx(3600 / wall, rel=0.02)
    assert "of the wall clock is training" in format_status(campaign.status())


def test_init_on_a_checkout_with_its_own_budget_constant_says_so_with_the_fix(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, "from prepare import TIME_BUDGET\nprint('---'); print('val_bpb: 1.0')")
    write_script(folder, "TIME_BUDGET = 300        # training time budget in seconds\n", "prepare.py")
    heard = Collect()
    Campaign.init(folder, tag="t", budget_s=60, listener=heard)
    told = [m for m in heard.messages if "TIME_BUDGET = 300" in m]
    assert len(told) == 1 and "prepare.py" in told[0] and "AUTORESEARCH_BUDGET_S" in told[0] \
        and "--budget 300" in told[0]
    (folder / "prepare.py").write_text('import os\nTIME_BUDGET = float(os.environ.get("AUTORESEARCH_BUDGET_S", 300))\n')
    heard = Collect()
    Campaign.init(folder, listener=heard)
    assert not any("own time budget" in m for m in heard.messages)


@pytest.mark.timeout(90)
def test_a_crashed_baseline_is_run_again_as_the_baseline_by_the_next_loop(tmp_path):
    from autoresearch_magics.core.loop import run_loop
    from autoresearch_magics.core.proposers import RerunProposer
    folder = tmp_path / "c"
    flag = tmp_path / "broken"
    flag.write_text("1")
    body = (f"import os, sys\nif os.path.exists({str(flag)!r}):\n    sys.exit('RuntimeError: data missing')\n"
            "print('---'); print('val_bpb: 1.0')\n")
    campaign = _attached(folder, body, budget_s=1)
    first = campaign.run("baseline")[-1]
    assert first.status == "crash" and first.description == "baseline"
    flag.unlink()   # the fix: outside the script (data, environment, a setting)
    results = run_loop(campaign, RerunProposer("again"), max_proposals=1)
    rows = campaign.rows()
    assert [r["description"] for r in rows][:2] == ["baseline", "baseline"]   # append-only: the crash row stays
    assert rows[0]["status"] == "crash" and rows[1]["status"] == "keep"
    assert campaign.best()["key"] == rows[1]["experiment"]
    assert results[0].description == "baseline"
