"""Clumsy input gets one line naming the fix (exit code 2 in the CLI), never a traceback or damage:
home and root folders, enclosing repositories, infinite or negative numbers, bad tags, a corrupt
campaign.json, a read-only folder, a missing train.py."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.validation import check_tag


def cli(*args, env=None, cwd=None, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "autoresearch_magics.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=cwd)


def one_line_refusal(proc, *words):
    """Checks a CLI refusal: exit code 2, one line on stderr, no traceback, and the words in it."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@x", *args], cwd=cwd, capture_output=True,
                          text=True, check=True).stdout


def test_init_refuses_the_home_directory_and_leaves_it_untouched(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "train.py").write_text("print('mine')\n")
    proc = cli("init", str(home), "--tag", "t", env={"HOME": str(home)})
    one_line_refusal(proc, "home directory", "autoresearch init ~/campaigns/")
    assert sorted(os.listdir(home)) == ["train.py"]  # no .git, no .autoresearch


def test_init_refuses_the_filesystem_root():
    with pytest.raises(CampaignError, match="filesystem root"):
        Campaign.init("/", tag="t")
    assert not os.path.exists("/.autoresearch")


def test_a_home_repository_is_never_committed_to_from_a_sub_folder(tmp_path):
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    (home / ".bashrc").write_text("dotfiles\n")
    _git(home, "init", "-q", "-b", "main")
    _git(home, "add", ".bashrc")
    _git(home, "commit", "-qm", "dotfiles")
    (home / "proj" / "train.py").write_text("print('x')\n")
    log_before = _git(home, "log", "--all", "--oneline")
    proc = cli("init", str(home / "proj"), "--tag", "t", env={"HOME": str(home)})
    one_line_refusal(proc, f"inside the git repository at {home}", f"git init {home / 'proj'}")
    assert _git(home, "log", "--all", "--oneline") == log_before
    assert _git(home, "branch", "--show-current").strip() == "main"


def test_attaching_inside_an_enclosing_repository_says_which_one(tmp_path):
    project = tmp_path / "project"
    (project / "exp").mkdir(parents=True)
    (project / "README").write_text("a project\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "README")
    _git(project, "commit", "-qm", "project")
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "autoresearch_magics", "templates", "toy", "train.py"),
                project / "exp" / "train.py")
    proc = cli("init", str(project / "exp"), "--tag", "t", "--budget", "0.05")
    assert proc.returncode == 0, proc.stderr
    assert f"inside the git repository at {project}" in proc.stderr and "git init" in proc.stderr


@pytest.mark.parametrize("option, value", [
    ("--budget", "inf"), ("--budget", "nan"), ("--budget", "0"), ("--budget", "-5"), ("--budget", "-inf"),
    ("--timeout", "inf"), ("--timeout", "0"), ("--timeout", "nan"),
    ("--deadline", "inf"), ("--deadline", "nan"), ("--deadline", "-5"), ("--deadline", "1e30"),
    ("--max-experiments", "0"), ("--max-experiments", "-3"), ("--target", "inf"), ("--target", "nan"),
    ("--keep-margin", "-1"), ("--keep-margin", "inf"),
])
def test_numbers_must_be_finite_and_positive_and_nothing_is_saved_otherwise(tmp_path, option, value):
    folder = tmp_path / "c"
    proc = cli("init", str(folder), "--tag", "t", "--template", "toy", f"{option}={value}")
    one_line_refusal(proc, value if option != "--deadline" else "duration")
    assert not (folder / ".autoresearch" / "campaign.json").exists()


def test_bad_numbers_for_a_running_campaign_are_refused_before_anything_runs(tmp_path):
    folder = tmp_path / "c"
    assert cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    saved = (folder / ".autoresearch" / "campaign.json").read_text()
    one_line_refusal(cli("loop", "-C", str(folder), "--max-experiments", "0"), "--max-experiments")
    one_line_refusal(cli("loop", "-C", str(folder), "--deadline", "inf"), "duration")
    one_line_refusal(cli("loop", "-C", str(folder), "--proposer", "agent", "--agent-cmd", "true",
                         "--agent-timeout", "inf"), "--agent-timeout")
    assert (folder / ".autoresearch" / "campaign.json").read_text() == saved
    assert not (folder / "results.tsv").exists()


@pytest.mark.parametrize("field, value", [
    ("budget_s", float("inf")), ("budget_s", float("nan")), ("budget_s", "300"), ("budget_s", -1),
    ("timeout_s", 0), ("max_experiments", 2.5), ("max_experiments", True), ("deadline", "tomorrow"),
    ("deadline", "2030-01-01T00:00:00"), ("keep_rule", "best"), ("direction", "down"), ("tag", "a..b"),
    ("editable", "train.py"), ("editable", ["../outside.py"]), ("editable", ["results.tsv"]),
    ("editable", [".autoresearch/campaign.json"]), ("repeats", 0), ("confidence", 2), ("metric", "val bpb"),
    ("command", ""), ("log_cap_mb", float("inf")),
])
def test_a_bad_saved_field_is_one_line_naming_the_field_the_file_and_the_fix(tmp_path, field, value):
    folder = tmp_path / "c"
    assert cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    config_file = folder / ".autoresearch" / "campaign.json"
    config = json.loads(config_file.read_text())
    config[field] = value
    config_file.write_text(json.dumps(config))
    for verb in ("status", "run", "results"):
        one_line_refusal(cli(verb, "-C", str(folder)), field, str(config_file), "Fix that field")
    one_line_refusal(cli("init", str(folder)), field)


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"), ("[1, 2]", "no campaign settings"), ('{"budget_s": 5}', "no campaign settings"),
    ("\xff\xfe", "not valid JSON"),
])
def test_a_corrupt_campaign_json_is_one_line(tmp_path, text, words):
    folder = tmp_path / "c"
    assert cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    (folder / ".autoresearch" / "campaign.json").write_bytes(text.encode("latin-1"))
    one_line_refusal(cli("status", "-C", str(folder)), words)


BAD_TAGS = ["a..b", "foo.lock", ".hidden", "x.", "@", "a@{b", "a b", "a~1", "a^", "a:b", "a?b", "a*b", "a[b",
            "a\\b", "a/b", "a/", "-x", "", "tab\there", "caf\u00e9"]
GOOD_TAGS = ["nov22", "a.b", "run_1", "x-y.z", "2024", "A1.lockx"]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_tags_outside_git_ref_rules_are_refused_with_what_is_allowed(tmp_path, tag):
    with pytest.raises(CampaignError, match="a tag .* uses ASCII letters, digits"):
        check_tag(tag)
    proc = cli("init", str(tmp_path / "c"), f"--tag={tag}", "--template", "toy")
    one_line_refusal(proc, "--tag", "e.g. --tag nov22")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("tag", GOOD_TAGS)
def test_every_accepted_tag_is_a_valid_git_branch_and_ref(tag):
    assert check_tag(tag) == tag
    for ref in (f"refs/heads/autoresearch/{tag}", f"refs/autoresearch/{tag}/12"):
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0


def _read_only(folder):
    """A command prefix that runs the CLI with `folder` mounted read-only (a private mount namespace)."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs unshare --mount (root) to mount a folder read-only")
    return ("unshare", "--mount", "sh", "-c", f'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
            str(folder))


def test_a_read_only_campaign_folder_is_one_line_for_run_loop_and_report(tmp_path):
    folder = tmp_path / "c"
    assert cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    assert cli("run", "-C", str(folder), "-m", "baseline").returncode == 0
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    ro = _read_only(folder)
    one_line_refusal(cli("run", "-C", str(folder), "-m", "x", prefix=ro), "read-only", "chmod u+w")
    one_line_refusal(cli("loop", "-C", str(folder), "--max", "1", prefix=ro), "read-only")
    one_line_refusal(cli("report", "-C", str(folder), "--no-hardware", prefix=ro), "read-only", "--out")
    status = cli("status", "-C", str(folder), prefix=ro)
    assert status.returncode == 0 and "Traceback" not in status.stderr  # reading still works
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_missing_train_py_is_one_line_and_nothing_is_committed(tmp_path):
    folder = tmp_path / "c"
    assert cli("init", str(folder), "--tag", "t", "--template", "toy", "--budget", "0.05").returncode == 0
    assert cli("run", "-C", str(folder), "-m", "baseline").returncode == 0
    head = _git(folder, "rev-parse", "HEAD")
    (folder / "train.py").unlink()
    one_line_refusal(cli("run", "-C", str(folder), "-m", "x"), "train.py is missing",
                     "git checkout autoresearch/t -- train.py")
    assert _git(folder, "rev-parse", "HEAD") == head
    _git(folder, "checkout", "autoresearch/t", "--", "train.py")  # the suggested fix works
    assert cli("run", "-C", str(folder), "-m", "restored").returncode == 0
