"""The campaign engine end to end on real git repositories and real child processes."""
import subprocess
import time

import git
import pandas as pd
import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.errors import CampaignBusy, CampaignError, MalformedResults, WrongBranch
from autoresearch_magics.core.ledger import experiment_ref

from helpers import SUMMARY_SCRIPT, all_gone, write_script


def _set_lr(campaign, value):
    path = campaign.paths.root / "train.py"
    lines = [f"LEARNING_RATE = {value}   # step size" if l.startswith("LEARNING_RATE =") else l
             for l in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")


def test_init_in_empty_folder_makes_a_repo_on_the_campaign_branch(tmp_path):
    campaign = Campaign.init(tmp_path / "c", tag="nov22", template="toy", budget_s=1)
    repo = git.Repo(tmp_path / "c")
    assert repo.active_branch.name == "autoresearch/nov22"
    assert set(repo.git.ls_files().split()) == {"train.py", "program.md"}
    assert campaign.config.effective_timeout_s == 62
    # the config is saved: another process resumes it
    again = Campaign.open(tmp_path / "c")
    assert again.config.tag == "nov22" and again.config.budget_s == 1


def test_commits_work_without_any_git_identity(tmp_path):
    campaign = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.2)
    campaign.run("baseline")
    author = git.Repo(tmp_path / "c").head.commit.author
    assert author.email == "autoresearch@localhost"


def test_ratchet_keeps_improvements_and_reverts_regressions_with_refs_kept(toy_campaign):
    c = toy_campaign
    base = c.run("baseline")[-1]
    assert base.status == "keep" and base.commit == c.ledger.tip()
    _set_lr(c, 0.01)
    better = c.run("lr 0.01")[-1]
    assert better.status == "keep" and better.delta < 0 and c.ledger.tip() == better.commit
    _set_lr(c, 0.5)
    worse = c.run("lr 0.5")[-1]
    assert worse.status == "discard"
    assert c.ledger.tip() == better.commit                       # branch reverted
    assert "LEARNING_RATE = 0.01" in (c.paths.root / "train.py").read_text()
    assert c.ledger.resolve(experiment_ref("test", 3)) == worse.commit  # still reachable
    frame = c.frame()
    assert frame["status"].tolist() == ["keep", "keep", "discard"]
    assert frame["commit"].tolist() == [r.commit[:7] for r in (base, better, worse)]
    assert c.status()["best"]["experiment"] == 2


def test_equal_result_is_not_kept_by_the_strict_rule(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    c = Campaign.init(folder, tag="t", budget_s=1)
    assert c.run("baseline")[-1].status == "keep"
    (folder / "train.py").write_text(SUMMARY_SCRIPT + "# a comment\n")
    assert c.run("same value")[-1].status == "discard"


def test_user_changes_outside_train_py_survive_keep_and_discard(toy_campaign):
    c = toy_campaign
    root = c.paths.root
    (root / "notes.md").write_text("my notes\n")
    c.ledger.commit_files(["notes.md"], "user notes")
    (root / "notes.md").write_text("my notes, edited but not committed\n")
    (root / "staged.txt").write_text("staged by the user\n")
    subprocess.run(["git", "add", "staged.txt"], cwd=root, check=True)
    (root / "scratch.py").write_text("untracked\n")
    c.run("baseline")
    _set_lr(c, 0.5)
    c.run("worse")
    _set_lr(c, 0.01)
    c.run("better")
    assert (root / "notes.md").read_text() == "my notes, edited but not committed\n"
    assert (root / "scratch.py").read_text() == "untracked\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    assert "A  staged.txt" in status and " M notes.md" in status and "?? scratch.py" in status
    committed = subprocess.run(["git", "log", "--name-only", "--format="], cwd=root, capture_output=True, text=True).stdout
    assert "staged.txt" not in committed and "scratch.py" not in committed


def test_first_run_with_edited_script_runs_the_unchanged_baseline_first(toy_campaign):
    c = toy_campaign
    _set_lr(c, 0.01)
    results = c.run("lr 0.01")
    assert [r.description for r in results] == ["baseline", "lr 0.01"]
    assert results[0].commit == results[0].parent                 # the untouched tip
    assert results[1].status == "keep" and results[1].delta < 0
    assert "LEARNING_RATE = 0.01" in (c.paths.root / "train.py").read_text()
    assert not list(c.paths.state.glob("baseline-*"))              # temporary worktree removed


def test_attach_reference_checkout_appends_to_existing_results(tmp_path):
    folder = tmp_path / "ref"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    (folder / "prepare.py").write_text("# data prep\n")
    (folder / "program.md").write_text("# program\n")
    old = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t1.100000\t44.0\tkeep\tbaseline\n"
    (folder / "results.tsv").write_text(old)
    c = Campaign.init(folder, tag="mar5", budget_s=1)
    assert set(c.ledger.repo.git.ls_files().split()) == {"train.py", "prepare.py", "program.md"}
    result = c.run("from a terminal")[-1]
    assert result.status == "keep" and result.best_before == 1.1     # 1.0 beats the old best
    text = (folder / "results.tsv").read_text()
    assert text.startswith(old) and text.count("\n") == 3
    assert pd.read_csv(folder / "results.tsv", sep="\t").shape == (2, 5)


@pytest.mark.parametrize("body, reason", [
    ("def broken(:\n", "exit code 1: SyntaxError"),
    ("raise RuntimeError('no data found')\n", "exit code 1: RuntimeError: no data found"),
    ("import time\nfor i in range(3):\n    print(f'step {i}', flush=True)\n"
     "raise ValueError('shape mismatch at step 3')\n", "ValueError: shape mismatch"),
    ("print('FAIL')\nraise SystemExit(1)\n", "FAIL: training diverged"),
    ("print('---')\nprint('val_bpb: nan')\n", "val_bpb is nan"),
    ("print('training done')\n", "no summary block"),
    ("print('---')\nprint('loss: 1.0')\n", "summary has no val_bpb"),
])
def test_bad_scripts_are_crashes_with_reasons_and_lose_nothing(tmp_path, body, reason):
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    c = Campaign.init(folder, tag="t", budget_s=1, timeout_s=20)
    good = c.run("baseline")[-1]
    write_script(folder, body)
    crash = c.run("bad idea")[-1]
    assert crash.status == "crash" and reason in crash.crash_reason
    assert c.ledger.tip() == good.commit
    assert (folder / "train.py").read_text() == SUMMARY_SCRIPT     # reverted to the best
    assert c.ledger.read_file(experiment_ref("t", 2), "train.py") == body  # the failed diff is kept
    row = c.rows()[-1]
    assert (row["status"], row["val_bpb"], row["memory_gb"]) == ("crash", "0.000000", "0.0")
    assert reason.split(":")[0] in row["crash_reason"]


def spawning_script(pid_file, sleep_s: int = 300) -> str:
    """Returns a script that starts a grandchild, writes both pids to `pid_file`, then hangs."""
    return ("import os, subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({sleep_s})'])\n"
            f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
            "print('step 00001 (1.0%) | loss: 2.0', flush=True)\n"
            f"time.sleep({sleep_s})\n")


def none_alive(pid_file) -> bool:
    """Returns True when no process a run wrote into `pid_file` is still running."""
    return all_gone([int(p) for p in pid_file.read_text().split()])


@pytest.mark.timeout(60)
def test_hang_past_timeout_is_a_crash_and_spawned_children_are_killed(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    pid_file = tmp_path / "pids"
    write_script(folder, spawning_script(pid_file))
    c = Campaign.init(folder, tag="t", budget_s=0.5, timeout_s=1.5)
    result = c.run("hangs")[-1]
    assert result.status == "crash" and result.crash_reason.startswith("timeout")
    assert none_alive(pid_file)


def test_dirty_working_copy_on_another_branch_is_refused_untouched(toy_campaign):
    c = toy_campaign
    c.run("baseline")
    root = c.paths.root
    subprocess.run(["git", "checkout", "-q", "-b", "elsewhere"], cwd=root, check=True)
    (root / "train.py").write_text((root / "train.py").read_text() + "# my edit\n")
    with pytest.raises(WrongBranch, match="git checkout autoresearch/test"):
        c.run("should not run")
    assert (root / "train.py").read_text().endswith("# my edit\n")
    assert len(c.rows()) == 1


def test_second_runner_is_refused_with_the_holder_named(toy_campaign):
    other = Campaign.open(toy_campaign.paths.root)
    with other.lock.holding("run"):
        with pytest.raises(CampaignBusy, match=r"process \d+ on .*autoresearch stop -C"):
            toy_campaign.run("second")
    assert toy_campaign.run("now free")[-1].status == "keep"


def test_malformed_results_stop_the_run_before_anything_changes(toy_campaign):
    c = toy_campaign
    c.run("baseline")
    with open(c.paths.results, "a") as fh:
        fh.write("garbage line without tabs\n")
    _set_lr(c, 0.01)
    tip = c.ledger.tip()
    with pytest.raises(MalformedResults, match="line 3"):
        Campaign.open(c.paths.root).run("edit")
    assert c.ledger.tip() == tip and "0.01" in (c.paths.root / "train.py").read_text()


def test_stop_rules_max_experiments_target_and_deadline(toy_campaign):
    from autoresearch_magics.core.loop import run_loop
    c = toy_campaign
    c.update_stop_rules(max_experiments=3)
    results = run_loop(c, max_proposals=10)
    assert len(results) == 3 and c.status()["stop"]["reached"]
    assert "3/3 attempted" in c.status()["stop"]["progress"]
    c.update_stop_rules(max_experiments=10, target=5.0)   # toy val_bpb is ~1: already reached
    assert run_loop(c, max_proposals=10) == []
    c.config.target = None
    c.update_stop_rules(deadline="0s")
    assert run_loop(c, max_proposals=10) == []
    assert "deadline passed" in c.status()["stop"]["progress"]


def test_loop_starts_with_a_baseline_and_counts_proposals(toy_campaign):
    from autoresearch_magics.core.loop import run_loop
    results = run_loop(toy_campaign, max_proposals=2)
    assert [r.description for r in results] == ["baseline", "re-run current train.py", "re-run current train.py"]


def test_request_stop_from_another_process_ends_the_running_experiment(tmp_path):
    import threading
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, "import time\nprint('step 00001 (1.0%) | loss: 2.0', flush=True)\ntime.sleep(60)\n")
    c = Campaign.init(folder, tag="t", budget_s=30)
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", c.run("long")))
    worker.start()
    other = Campaign.open(folder)
    for _ in range(100):
        running = other.status()["running"]
        if running and running.get("child_pid"):
            break
        time.sleep(0.1)
    assert running["experiment"] == 1
    assert other.request_stop()
    worker.join(20)
    assert box["r"][-1].crash_reason == "stopped by user"


@pytest.mark.timeout(60)
def test_killed_runner_is_recorded_as_interrupted_on_resume(tmp_path):
    import sys
    folder = tmp_path / "c"
    folder.mkdir()
    write_script(folder, SUMMARY_SCRIPT)
    c = Campaign.init(folder, tag="t", budget_s=30)
    c.run("baseline")
    pid_file = tmp_path / "pids"
    write_script(folder, spawning_script(pid_file, 301))
    runner = subprocess.Popen([sys.executable, "-m", "autoresearch_magics.cli", "run", "-C", str(folder),
                               "-m", "will be killed"])
    for _ in range(150):
        if pid_file.exists() and len(pid_file.read_text().split()) == 2:
            break
        time.sleep(0.1)
    runner.kill()
    runner.wait()
    resumed = Campaign.open(folder)
    assert len(resumed.rows()) == 1                     # reading changes nothing
    report = resumed.recover()                           # what a runner does first, under the lock
    assert report.recorded == [2] and report.restored == ["train.py"]
    row = resumed.rows()[-1]
    assert (row["status"], row["crash_reason"], row["experiment"]) == ("crash", "interrupted", "2")
    assert resumed.ledger.tip() == resumed.ledger.resolve(experiment_ref("t", 1))
    assert (folder / "train.py").read_text() == SUMMARY_SCRIPT   # it ran the experiment's own content
    assert none_alive(pid_file)
    assert resumed.run("after resume")[-1].experiment == 3


def test_the_start_event_carries_description_diff_and_params(toy_campaign):
    from autoresearch_magics.core.events import CampaignListener
    c = toy_campaign
    started = []
    listener = CampaignListener()
    listener.experiment_started = started.append
    c.run("baseline", listener=listener)
    _set_lr(c, 0.01)
    c.run("lr 0.01", listener=listener)
    assert [(i["description"], i["params"]) for i in started] == [("baseline", {}), ("lr 0.01", {})]
    assert started[0]["diff"] == ""
    assert "-LEARNING_RATE = 0.003" in started[1]["diff"] and "+LEARNING_RATE = 0.01" in started[1]["diff"]
    assert started[1]["parent"] == started[0]["commit"] and started[1]["experiment"] == 2


def test_show_gives_diff_and_log_tail(toy_campaign):
    c = toy_campaign
    c.run("baseline")
    _set_lr(c, 0.01)
    c.run("lr")
    detail = c.show(2)
    assert "+LEARNING_RATE = 0.01" in detail["diff"] and any("val_bpb" in l for l in detail["log_tail"])
    with pytest.raises(CampaignError, match="no experiment 9"):
        c.show(9)


def test_resume_refuses_changes_that_would_break_comparisons(toy_campaign):
    root = toy_campaign.paths.root
    with pytest.raises(CampaignError, match="budget_s"):
        Campaign.init(root, tag="test", budget_s=99)
    with pytest.raises(CampaignError, match="already runs campaign 'test'"):
        Campaign.init(root, tag="other")
    assert Campaign.init(root, tag="test", max_experiments=5).config.max_experiments == 5


def test_campaign_in_a_subfolder_of_a_bigger_repository(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "README.md").write_text("project\n")
    subprocess.run(["git", "add", "README.md"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "root"], cwd=tmp_path, check=True)
    folder = tmp_path / "exp" / "lm"
    folder.mkdir(parents=True)
    write_script(folder, SUMMARY_SCRIPT)  # an existing script inside the project: attached in place
    c = Campaign.init(folder, tag="sub", budget_s=0.2)
    assert c.run("baseline")[-1].status == "keep"
    assert not (folder / ".git").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert status == ""  # results.tsv, logs and state are excluded, nothing else changed


def test_template_campaign_inside_a_project_gets_its_own_repository(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "--allow-empty", "-m", "root"],
                   cwd=tmp_path, check=True)
    c = Campaign.init(tmp_path / "campaign", tag="own", template="toy", budget_s=0.2)
    assert (tmp_path / "campaign" / ".git").is_dir()
    outer = subprocess.run(["git", "branch", "--show-current"], cwd=tmp_path, capture_output=True, text=True)
    assert outer.stdout.strip() == "main" and c.ledger.current_branch() == "autoresearch/own"


def test_commit_content_builds_a_candidate_without_touching_the_checkout(toy_campaign):
    c = toy_campaign
    tip = c.ledger.tip()
    before = (c.paths.root / "train.py").read_text()
    sha = c.ledger.commit_content(tip, {"train.py": "print('candidate')\n"}, "candidate")
    assert c.ledger.read_file(sha, "train.py") == "print('candidate')\n"
    assert c.ledger.parent(sha) == tip and c.ledger.tip() == tip
    assert (c.paths.root / "train.py").read_text() == before and c.ledger.dirty_paths() == []
