"""Memory of what was tried: identical, cosmetic and same-values proposals against real campaign history."""
import os
import subprocess

import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core import tried
from autoresearch_magics.core.notes import record_skip
from autoresearch_magics.core.tried import TriedMemory, content_digest, file_facts


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A toy campaign: 1 baseline, 2 a too-small learning rate (discarded), 3 a wider model (kept)."""
    with pytest.MonkeyPatch.context() as env:  # module scope: the per-test isolated home is not set up yet
        env.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        env.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        c = Campaign.init(tmp_path_factory.mktemp("tried") / "c", tag="t", template="toy", budget_s=0.05)
        c.run("baseline")
        c.run("smaller learning rate", {"train.py": _set(c, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.0005")})
        c.run("wider model", {"train.py": _set(c, "WIDTH = 128 ", "WIDTH = 256 ")})
        statuses = [r["status"] for r in c.rows()]
        assert statuses == ["keep", "discard", "keep"], statuses
        yield c


def _set(campaign, old, new):
    text = (campaign.paths.root / "train.py").read_text()
    assert old in text
    return text.replace(old, new)


def test_a_proposal_with_the_same_files_as_an_earlier_experiment_is_a_repeat(history):
    baseline = history.ledger.files_at(history.ledger.resolve("refs/autoresearch/t/1"), ["train.py"])
    found = TriedMemory(history).check(baseline)
    assert (found.kind, found.experiment, found.verdict) == ("identical", 1, "keep")
    assert found.is_repeat and found.message.startswith("repeat of experiment 1 (keep, val_bpb ")
    assert found.message.endswith(": baseline")


def test_the_current_best_proposed_again_is_a_repeat_of_the_latest_experiment(history):
    found = TriedMemory(history).check({})
    assert (found.kind, found.experiment, found.verdict) == ("identical", 3, "keep")


def test_whitespace_comments_and_docstrings_only_are_cosmetic(history):
    text = (history.paths.root / "train.py").read_text()
    reworded = ('"""Another docstring."""\n' + text.split('"""', 2)[2]).replace(
        "import math", "import math   # maths", 1).replace("WIDTH = 256 ", "WIDTH   =   256 ")
    found = TriedMemory(history).check({"train.py": reworded + "\n\n# the end\n"})
    assert (found.kind, found.experiment, found.verdict) == ("cosmetic", 3, "keep")
    assert "only in whitespace, comments or docstrings from experiment 3" in found.message


def test_constants_set_to_values_already_tried_are_flagged_with_the_experiment_that_tried_them(history):
    found = TriedMemory(history).check({"train.py": _set(history, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.0005")})
    assert (found.kind, found.experiment, found.verdict) == ("same-values", 2, "discard")
    assert found.message.startswith("LEARNING_RATE=0.0005 already tried in experiment 2 (discard, val_bpb ")
    assert not found.is_repeat


def test_new_values_or_new_code_are_new(history):
    memory = TriedMemory(history)
    assert memory.check({"train.py": _set(history, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.001")}).kind is None
    code = _set(history, "LEARNING_RATE = 0.003", "LEARNING_RATE = 0.0005") + "\nprint('also a new line')\n"
    assert memory.check({"train.py": code}).kind is None
    assert memory.check({"train.py": "def broken(:\n"}).kind is None  # unparsable: compared by bytes only


def test_a_proposal_identical_to_a_skipped_one_says_when_and_why_it_was_skipped(history, tmp_path):
    text = _set(history, "NOISE = 0.002", "NOISE = 0.004")
    memory = TriedMemory(history)
    assert memory.check({"train.py": text}).kind is None
    digest = content_digest(memory.candidate_files({"train.py": text}))
    record_skip(history.paths, "noisier", "noise is not a hyperparameter", experiment=4, digest=digest)
    try:
        found = memory.check({"train.py": text})
        assert (found.kind, found.experiment, found.verdict) == ("identical", 4, "skipped")
        assert "skipped on" in found.message and found.message.endswith(": noise is not a hyperparameter")
    finally:
        history.paths.skipped.unlink()


def test_facts_ignore_formatting_but_not_values():
    a = file_facts({"train.py": "X = 1  # one\ndef f():\n    '''doc'''\n    return X\n"})
    b = file_facts({"train.py": "X=1\n\n\ndef f():\n    return X\n"})
    c = file_facts({"train.py": "X = 2\ndef f():\n    return X\n"})
    assert a.digest != b.digest and a.program == b.program
    assert a.program != c.program and a.skeleton == c.skeleton
    assert c.constants == {("train.py", "X"): 2}
    assert file_facts({"notes.txt": "a  b\n"}).program == file_facts({"notes.txt": "a b"}).program


def test_hundreds_of_experiments_are_read_once_each_then_served_from_the_cache(tmp_path, monkeypatch):
    c = Campaign.init(tmp_path / "c", tag="big", template="toy", budget_s=0.05)
    base = (c.paths.root / "train.py").read_text()
    _fast_import_experiments(c, base, count=300)
    memory = TriedMemory(c)
    calls = []
    real = c.ledger.files_at
    monkeypatch.setattr(c.ledger, "files_at", lambda ref, paths: calls.append(ref) or real(ref, paths))
    proposal = {"train.py": base.replace("WIDTH = 128 ", "WIDTH = 137 ")}
    found = memory.check(proposal)
    assert (found.kind, found.experiment, found.verdict) == ("identical", 10, "not recorded")
    assert len(calls) == 300
    again = TriedMemory(Campaign.open(c.paths.root)).check(proposal)  # a new object: the cache is shared
    assert again == found and len(calls) == 300


def _fast_import_experiments(campaign, base: str, count: int) -> None:
    """Writes `count` experiment commits (WIDTH = 128 + N) with their refs in one git process."""
    tip = campaign.ledger.tip()
    stream = []
    for n in range(1, count + 1):
        data = base.replace("WIDTH = 128 ", f"WIDTH = {127 + n} ").encode()
        stream.append(f"commit refs/autoresearch/big/{n}\ncommitter t <t@t> 0 +0000\ndata 3\nexp\n"
                      f"from {tip}\nM 100644 inline train.py\ndata {len(data)}\n".encode() + data + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(stream), cwd=campaign.paths.root, check=True)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(tried, "_CACHE", tried._FactsCache(tried.CACHE_SIZE))
