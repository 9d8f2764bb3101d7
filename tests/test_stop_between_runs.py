"""A stop asked for between two batches of one runner (the sidebar's Stop, `autoresearch stop`) is
honoured, not erased by the next batch; a stop left over from an earlier runner stops nothing."""
import pytest
from helpers import SUMMARY_SCRIPT, write_script

from autoresearch_magics import Campaign
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.proposers import Proposal, Proposer


class StopAfter(CampaignListener):
    """Asks the campaign to stop, as another process would, once experiment `number` is recorded."""

    def __init__(self, campaign, number):
        self.campaign, self.number, self.messages = campaign, number, []

    def experiment_finished(self, result):
        if result.experiment == self.number:
            self.campaign.paths.stop_request.touch()

    def message(self, text):
        self.messages.append(text)


class Comments(Proposer):
    """Each proposal adds a comment line: a new commit every time."""

    name = "comments"

    def __init__(self):
        self.count = 0

    def propose(self, campaign):
        self.count += 1
        text = (campaign.paths.root / "train.py").read_text()
        return Proposal(f"comment {self.count}", {"train.py": text + f"# {self.count}\n"})


def _campaign(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    return Campaign.init(folder, tag="t", budget_s=1)


@pytest.mark.timeout(90)
def test_a_stop_made_as_the_baseline_ends_keeps_the_experiment_from_starting(tmp_path):
    campaign = _campaign(tmp_path)
    text = (campaign.paths.root / "train.py").read_text()
    results = campaign.run("changed", {"train.py": text + "# changed\n"}, listener=StopAfter(campaign, 1))
    assert [r.description for r in results] == ["baseline"]
    assert [r["description"] for r in campaign.rows()] == ["baseline"]
    assert not campaign.paths.stop_request.exists()   # the runner that honoured it removed it


@pytest.mark.timeout(90)
def test_a_stop_made_between_two_batches_of_a_loop_ends_the_loop(tmp_path):
    campaign = _campaign(tmp_path)
    heard = StopAfter(campaign, 2)
    results = run_loop(campaign, Comments(), 5, listener=heard)
    assert [r.experiment for r in results] == [1, 2]
    assert results.ended_by == "stop requested"
    assert any("stopped on request" in m for m in heard.messages)
    assert not campaign.paths.stop_request.exists()


@pytest.mark.timeout(90)
def test_a_stop_left_by_an_earlier_runner_stops_nothing(tmp_path):
    campaign = _campaign(tmp_path)
    campaign.paths.stop_request.parent.mkdir(parents=True, exist_ok=True)
    campaign.paths.stop_request.touch()   # asked for as the last runner ended
    results = campaign.run("baseline")
    assert [r.status for r in results] == ["keep"]
