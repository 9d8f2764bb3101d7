"""Recovery of runs whose cluster job outlives its runner, without a cluster: a job whose traces
are gone is recorded as interrupted, and a run's log is completed from its job's own log."""
from __future__ import annotations

from autoresearch_magics.core.journal import write_journal
from autoresearch_magics.core.recovery import _complete_log
from autoresearch_magics.core.curves import curve_path_for

from test_parallel_support import rows_by_experiment, script_campaign


def slurm_note(campaign, stream, number: int = 1) -> dict:
    tip = campaign.ledger.tip()
    return {"experiment": number, "run": 1, "commit": tip, "parent": tip, "description": "baseline",
            "started_at": "", "seed": None, "log": f"logs/{number:04d}.log", "launcher": "slurm",
            "job_id": "987654", "node": "", "child_pid": None, "child_started": None, "run_id": "",
            "task": {"kind": "slurm", "job_id": "987654", "jobs": str(stream.parent / "jobs"), "stream": str(stream)}}


def test_a_slurm_run_whose_stream_folder_is_gone_is_recorded_as_interrupted(tmp_path):
    campaign = script_campaign(tmp_path)
    write_journal(campaign, "slurm", [slurm_note(campaign, tmp_path / "gone")], None)
    report = campaign.recover()
    assert report.recorded == [1] and not report.from_logs
    assert "slurm job 987654" in report.left_jobs[1] and "slurm job 987654" in report.text()
    row = rows_by_experiment(campaign)[1][0]
    assert (row["status"], row["crash_reason"], row["launcher"]) == ("crash", "interrupted", "slurm")
    assert not campaign.paths.current.exists()


def test_a_note_without_task_from_an_earlier_runner_still_reads(tmp_path):
    campaign = script_campaign(tmp_path)
    note = slurm_note(campaign, tmp_path / "gone")
    del note["task"]
    write_journal(campaign, "slurm", [note], None)
    assert campaign.recover().recorded == [1]


def test_a_log_gets_only_the_lines_its_runner_did_not_copy(tmp_path):
    log = tmp_path / "0002.log"
    log.write_text("[autoresearch: requeued by the scheduler]\nbegin\nstep 1\n")
    curve_path_for(log).write_text('{"step": 1}\n')
    _complete_log(log, ["begin", "step 1", "step 2", "---", "val_bpb: 0.5"])
    lines = log.read_text().splitlines()
    assert lines[:3] == ["[autoresearch: requeued by the scheduler]", "begin", "step 1"]
    assert lines[3].startswith("[autoresearch: the rest of the run's output")
    assert lines[4:] == ["step 2", "---", "val_bpb: 0.5"]
    assert not curve_path_for(log).exists()          # the short curve goes; readers use the whole log
    _complete_log(log, ["begin", "step 1", "step 2", "---", "val_bpb: 0.5"])
    assert log.read_text().splitlines() == lines     # complete already: nothing added


def test_a_log_its_runner_never_wrote_gets_the_whole_output(tmp_path):
    log = tmp_path / "logs" / "0003.log"
    _complete_log(log, ["begin", "---", "val_bpb: 0.7"])
    assert log.read_text().splitlines()[1:] == ["begin", "---", "val_bpb: 0.7"]


def test_a_requeued_job_log_is_completed_from_its_last_start(tmp_path):
    log = tmp_path / "0004.log"
    log.write_text("begin\nstep 1\n[autoresearch: requeued by the scheduler: slurm job 5 restart 1]\nbegin\n")
    _complete_log(log, ["begin", "step 1", "---", "val_bpb: 0.6"])
    lines = log.read_text().splitlines()
    assert lines[:4] == ["begin", "step 1", "[autoresearch: requeued by the scheduler: slurm job 5 restart 1]", "begin"]
    assert lines[5:] == ["step 1", "---", "val_bpb: 0.6"]
