"""The tool's own time per run (overhead_s) is counted once: a run repeated in one batch does not carry the
wall time of the runs after it."""
import pytest
from helpers import write_script

from autoresearch_magics import Campaign

SLEEPY = '''
import time
time.sleep(2.0)
print("step 00001 (100.0%) | loss: 1.0 | remaining: 0s", flush=True)
print("---")
print("val_bpb:          1.000000")
'''


@pytest.mark.timeout(60)
def test_an_earlier_run_of_a_batch_does_not_count_the_later_runs_as_its_overhead(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SLEEPY)
    campaign = Campaign.init(folder, tag="t", budget_s=1, keep_rule="repeats", noise_runs=3)
    results = campaign.run("baseline")          # the repeats rule runs the baseline 3 times, in turn
    assert [r.run for r in results] == [1, 2, 3]
    rows = campaign.rows()
    later_run_wall = results[1].wall_s
    assert later_run_wall >= 1.9
    # before, an earlier run's overhead held the whole of every run after it (run 1: about 4 s)
    assert all(float(row["overhead_s"]) < later_run_wall for row in rows)
