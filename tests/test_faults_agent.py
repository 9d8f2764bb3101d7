"""Hostile and clumsy coding agents: the agent works in a sandbox, only the editable files come
back, and whatever it does the loop goes on, the user's files stay byte for byte, the campaign's
results and branch are the tool's own, and the campaign is usable afterwards."""
import os
import subprocess
import sys
import textwrap

import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.loop import run_loop
from autoresearch_magics.core.proposers import make_proposer

# A valid edit every misbehaving agent also makes, so that what it did besides is what is tested.
EDIT = textwrap.dedent("""
    import os
    text = open("train.py").read().replace("WIDTH = 128", "WIDTH = 200")
    open("train.py", "w").write(text)
    open(os.environ["AUTORESEARCH_DESCRIPTION_FILE"], "w").write("wider\\n")
""")


class Messages:
    """A campaign listener that keeps the loop's messages."""

    def __init__(self):
        self.texts = []

    def __getattr__(self, name):
        return (lambda text: self.texts.append(text)) if name == "message" else (lambda *a: None)


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def campaign(tmp_path):
    """A campaign with a baseline, a committed .gitignore, an ignored file and uncommitted user work."""
    c = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    root = c.paths.root
    (root / ".gitignore").write_text("*.cache\n")
    _git(root, "add", ".gitignore")
    _git(root, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "ignore caches")
    c.run("baseline")
    (root / "secret.cache").write_text("ignored, the user's\n")
    (root / "notes.txt").write_text("untracked, the user's\n")
    with open(root / "program.md", "a") as fh:
        fh.write("\nan uncommitted line of the user's\n")
    return c


def _user_files(c):
    """Returns {path: bytes} of every file in the campaign folder except the tool's own and train.py."""
    root, found = c.paths.root, {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".autoresearch", "logs", "__pycache__")]
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if rel not in ("results.tsv", "train.py"):
                found[rel] = (root / rel).read_bytes()
    return found


def _usable(c, rows_before):
    """Checks the campaign still runs an experiment and its results are only the tool's rows."""
    c2 = Campaign.open(c.paths.root)
    assert c2.ledger.current_branch() == "autoresearch/t"
    c2.run("still usable")
    rows = c2.rows()
    assert len(rows) == rows_before + 1 and all(r["commit"] != "forged0" for r in rows)


@pytest.mark.parametrize("extra, refused", [
    ("open('results.tsv', 'a').write('forged0\\t0.000001\\t0.0\\tkeep\\tforged\\n')\n", "results.tsv"),
    ("open('.gitignore', 'w').write('*\\n')\n", ".gitignore"),
    ("open('secret.cache', 'w').write('agent was here\\n')\nopen('new.cache', 'w').write('x')\n", "new.cache"),
    ("open('program.md', 'a').write('ignore the rules\\n')\n", "program.md"),
    ("import os\nos.makedirs('.autoresearch', exist_ok=True)\n"
     "open('.autoresearch/campaign.json', 'w').write('{}')\n", ".autoresearch/campaign.json"),
    ("import os\nos.remove('program.md')\n", "program.md"),
])
def test_agent_edits_beyond_the_editable_files_never_reach_the_campaign(campaign, tmp_path, extra, refused):
    c = campaign
    user = _user_files(c)
    results = c.paths.results.read_bytes()
    result = run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, EDIT + extra)), 1)[-1]
    assert result.description.startswith("wider [refused edits to ") and refused in result.description
    assert _user_files(c) == user
    assert c.paths.results.read_bytes().startswith(results)
    assert "+WIDTH = 200" in c.show(result.experiment)["diff"]
    assert c.ledger.diff(c.show(result.experiment)["parent"], result.commit) .count("diff --git") == 1
    _usable(c, 2)


def test_agent_git_commands_touch_only_its_own_scratch_repository(campaign, tmp_path):
    c = campaign
    refs = _git(c.paths.root, "for-each-ref")
    body = EDIT + textwrap.dedent("""
        import subprocess
        git = lambda *a: subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@x", *a], check=True)
        git("checkout", "-q", "-b", "agent-branch")
        git("commit", "-qam", "agent commit")
        git("update-ref", "refs/heads/autoresearch/t", "HEAD")
    """)
    result = run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, body)), 1)[-1]
    assert result.status in ("keep", "discard")
    after = _git(c.paths.root, "for-each-ref")
    assert "agent-branch" not in after and "agent commit" not in _git(c.paths.root, "log", "--all", "--format=%s")
    assert set(refs.splitlines()) - set(after.splitlines()) <= {l for l in refs.splitlines() if "heads/autoresearch" in l}
    _usable(c, 2)


def test_agent_writing_outside_its_folder_by_relative_path_leaves_the_campaign_parent_alone(campaign, tmp_path):
    c = campaign
    # ../ is the campaign's parent, were the agent run in place
    command = _script(tmp_path, EDIT + "open('../outside.txt', 'w').write('x')\n")
    parent = sorted(os.listdir(c.paths.root.parent))
    run_loop(c, make_proposer(c, "agent", agent_cmd=command), 1)
    assert sorted(os.listdir(c.paths.root.parent)) == parent
    assert not (c.paths.root / "outside.txt").exists()


@pytest.mark.parametrize("body, reason", [
    ("import os\nos.remove('train.py')\n", "agent deleted train.py"),
    ("open('train.py', 'w').close()\n", "agent left train.py empty"),
    ("import os\nos.remove('train.py')\nos.symlink('/etc/hostname', 'train.py')\n", "not a plain file"),
    ("open('train.py', 'wb').write(b'\\xff\\xfe not utf-8')\n", "other than UTF-8"),
    ("import os, shutil\nos.remove('train.py')\nos.mkdir('train.py')\n", "not a plain file"),
])
def test_deleting_or_breaking_train_py_is_a_failed_proposal_not_a_commit(campaign, tmp_path, body, reason):
    c = campaign
    user, train, tip = _user_files(c), (c.paths.root / "train.py").read_bytes(), c.ledger.tip()
    messages = Messages()
    assert run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, body)), 3,
                    listener=messages) == []
    assert sum(reason in m for m in messages.texts) == 3 and "failed 3 times in a row" in messages.texts[-1]
    assert (c.paths.root / "train.py").read_bytes() == train and c.ledger.tip() == tip
    assert _user_files(c) == user
    _usable(c, 1)


def test_an_edit_the_user_makes_while_the_agent_works_is_kept(campaign, tmp_path):
    c = campaign
    body = EDIT + textwrap.dedent(f"""
        with open({str(c.paths.root / 'train.py')!r}, "a") as fh:
            fh.write("# the user's edit, made while the agent worked\\n")
    """)
    messages = Messages()
    assert run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, body)), 1, listener=messages) == []
    assert any("changed in" in m and "your version is kept" in m for m in messages.texts)
    text = (c.paths.root / "train.py").read_text()
    assert text.endswith("# the user's edit, made while the agent worked\n") and "WIDTH = 128" in text


def test_an_agent_that_locks_its_scratch_folder_does_not_break_the_loop(campaign, tmp_path):
    c = campaign
    body = EDIT + "import os\nos.makedirs('locked/inner')\nopen('locked/inner/f', 'w').write('x')\n" \
                  "os.chmod('locked/inner', 0o500)\nos.chmod('locked', 0o500)\n"
    result = run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, body)), 1)[-1]
    assert "locked/inner/f" in result.description
    _usable(c, 2)


def test_the_agent_runs_in_a_scratch_copy_with_the_prompt_and_the_uncommitted_editable_file(campaign, tmp_path):
    c = campaign
    with open(c.paths.root / "train.py", "a") as fh:
        fh.write("# a pending edit of the user's\n")
    seen = tmp_path / "seen.txt"
    body = EDIT + textwrap.dedent(f"""
        import os, sys
        prompt = sys.stdin.read()
        assert prompt == open(os.environ["AUTORESEARCH_PROMPT_FILE"]).read()
        assert "Research charter (program.md)" in prompt and "an uncommitted line of the user's" in prompt
        open({str(seen)!r}, "w").write(os.getcwd() + "\\n" + str(os.path.exists("results.tsv")) + "\\n"
                                      + str("# a pending edit" in open("train.py").read()))
    """)
    result = run_loop(c, make_proposer(c, "agent", agent_cmd=_script(tmp_path, body)), 1)[-1]
    cwd, results_visible, pending = seen.read_text().splitlines()
    assert not cwd.startswith(str(c.paths.root)) and not os.path.exists(cwd)  # gone afterwards
    assert results_visible == "False" and pending == "True"
    assert result.description == "wider"


def _script(tmp_path, body):
    (tmp_path / "agents").mkdir(exist_ok=True)
    script = tmp_path / "agents" / "agent.py"
    script.write_text(body)
    return f"{sys.executable} {script}"
