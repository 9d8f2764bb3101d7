"""The baseline is the run of the campaign's starting code, known by its commit (it ran its parent unchanged),
not by its description; a crashed one is run again first by every path that runs one experiment."""
import pytest
from helpers import write_script

from autoresearch_magics import Campaign
from autoresearch_magics.core.candidate import baseline_keys, needs_baseline
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.results import full_columns


class Messages(CampaignListener):
    def __init__(self):
        self.messages = []

    def message(self, text):
        self.messages.append(text)


def _breakable(tmp_path, flag):
    """Returns a campaign whose script crashes while `flag` exists (a missing data set, say)."""
    folder = tmp_path / "c"
    folder.mkdir()
    body = (f"import os, sys\nif os.path.exists({str(flag)!r}):\n    sys.exit('RuntimeError: data missing')\n"
            "print('---'); print(f\"val_bpb: {float(os.environ.get('VALUE', '1.0')):.6f}\")\n")
    write_script(folder, body)
    flag.write_text("1")
    return Campaign.init(folder, tag="t", budget_s=1)


def _changed(campaign, comment="# wider"):
    return {"train.py": (campaign.paths.root / "train.py").read_text() + comment + "\n"}


@pytest.mark.timeout(90)
def test_a_single_experiment_after_a_crashed_baseline_runs_the_baseline_again_first(tmp_path):
    flag = tmp_path / "broken"
    campaign = _breakable(tmp_path, flag)
    assert campaign.run("baseline")[-1].status == "crash"
    flag.unlink()   # the fix: outside the script
    heard = Messages()
    results = campaign.run("wider", _changed(campaign), listener=heard)
    assert [r.description for r in results] == ["baseline", "wider"]
    rows = campaign.rows()
    assert [r["status"] for r in rows] == ["crash", "keep", "discard"]   # the crash row stays; the change ties
    assert rows[1]["commit"] == rows[1]["parent"] and rows[1]["val_bpb"] == "1.000000"
    assert campaign.status()["baseline"]["experiment"] == 2 and campaign.status()["baseline"]["unchanged"]
    assert any("the baseline crashed (#1): running it again first" in m for m in heard.messages)


@pytest.mark.timeout(90)
def test_after_its_last_try_a_crashed_baseline_is_not_run_again_and_the_run_says_why(tmp_path):
    flag = tmp_path / "broken"
    campaign = _breakable(tmp_path, flag)
    campaign.run("baseline")
    campaign.run("baseline again")       # the tip unchanged: a second try, whatever its description
    assert not needs_baseline(campaign)
    flag.unlink()
    heard = Messages()
    results = campaign.run("fixed", _changed(campaign), listener=heard)
    assert [r.description for r in results] == ["fixed"] and results[0].status == "keep"
    told = [m for m in heard.messages if "the baseline crashed 2 time(s) (#1, #2" in m]
    assert len(told) == 1 and "runs without one" in told[0] and "autoresearch show 2" in told[0]
    assert campaign.status()["baseline"]["experiment"] == 3 and not campaign.status()["baseline"]["unchanged"]


@pytest.mark.timeout(90)
def test_a_change_described_as_baseline_is_not_taken_for_the_baseline(tmp_path):
    flag = tmp_path / "broken"
    campaign = _breakable(tmp_path, flag)
    assert campaign.run("first try")[-1].status == "crash"    # the tip unchanged, not called "baseline"
    assert needs_baseline(campaign)                            # it was the baseline's first try all the same
    flag.unlink()
    heard = Messages()
    campaign.run("baseline", _changed(campaign), listener=heard)   # a change its author calls "baseline"
    rows = campaign.rows()
    assert [r["description"] for r in rows] == ["first try", "baseline", "baseline"]
    assert rows[1]["commit"] == rows[1]["parent"] and rows[2]["commit"] != rows[2]["parent"]
    assert baseline_keys(campaign.experiments()) == ["1", "2"]
    assert campaign.status()["baseline"]["experiment"] == 2


def _write(path, header, rows):
    path.write_text("\n".join("\t".join(cells) for cells in [header, *rows]) + "\n")


def test_old_results_files_still_read_and_name_their_baseline(tmp_path):
    campaign = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.3)
    # the reference format: five columns, no parent; only the description can say which run was the baseline
    _write(campaign.paths.results, ["commit", "val_bpb", "memory_gb", "status", "description"],
           [["a1b2c3d", "0.000000", "0.0", "crash", "baseline"], ["b2c3d4e", "1.100000", "0.5", "keep", "lr 0.01"]])
    status = Campaign.open(campaign.paths.root).status()
    assert status["baseline"]["commit"] == "b2c3d4e" and not status["baseline"]["unchanged"]
    # a file written before the phase columns existed (its header stops at other_cpu_s)
    header = [c for c in full_columns("val_bpb") if c not in ("startup_s", "train_wall_s", "eval_s", "overhead_s")]
    base = dict.fromkeys(header, "")
    first = {**base, "commit": "a1b2c3d", "val_bpb": "1.200000", "memory_gb": "0.5", "status": "keep",
             "description": "start", "experiment": "1", "run": "1", "parent": "a1b2c3d"}
    second = {**base, "commit": "c3d4e5f", "val_bpb": "1.100000", "memory_gb": "0.5", "status": "keep",
              "description": "baseline", "experiment": "2", "run": "1", "parent": "a1b2c3d"}
    _write(campaign.paths.results, header, [[first[c] for c in header], [second[c] for c in header]])
    status = Campaign.open(campaign.paths.root).status()
    assert status["baseline"]["experiment"] == 1 and status["baseline"]["unchanged"]
    assert status["best"]["experiment"] == 2 and status["time_use"] is None
