"""The campaign journal: dated steering notes and skipped proposals, append-only, never in results.tsv."""
import json
import subprocess
import sys
import textwrap

import pytest

from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.notes import add_note, latest_notes, record_skip, skipped_proposals
from autoresearch_magics.core.paths import CampaignPaths


@pytest.fixture
def paths(tmp_path):
    return CampaignPaths.of(tmp_path)


def test_notes_are_dated_and_the_latest_come_back_oldest_first(paths):
    for i in range(5):
        add_note(paths, f"  note {i}  ")
    notes = latest_notes(paths, 3)
    assert [n.text for n in notes] == ["note 2", "note 3", "note 4"]
    assert all(n.at.endswith("+00:00") and len(n.date) == 16 for n in notes)
    assert len(latest_notes(paths, None)) == 5
    assert latest_notes(paths, 0) == []


def test_an_empty_or_overlong_note_is_refused_with_the_fix(paths):
    with pytest.raises(CampaignError, match="a note needs text"):
        add_note(paths, "   ")
    with pytest.raises(CampaignError, match="program.md"):
        add_note(paths, "x" * 5000)
    assert not paths.notes.exists()


def test_a_torn_line_is_passed_over(paths):
    add_note(paths, "first")
    with open(paths.notes, "a") as fh:
        fh.write('{"text": "half a li')
        fh.write("\n[1, 2]\n")
    add_note(paths, "second")
    assert [n.text for n in latest_notes(paths)] == ["first", "second"]


def test_concurrent_writers_never_interleave_lines(paths, tmp_path):
    writer = tmp_path / "writer.py"
    writer.write_text(textwrap.dedent(f"""
        import sys
        from autoresearch_magics.core.notes import add_note
        from autoresearch_magics.core.paths import CampaignPaths
        paths = CampaignPaths.of({str(paths.root)!r})
        for i in range(200):
            add_note(paths, sys.argv[1] + " " + str(i) + " " + "y" * 300)
    """))
    procs = [subprocess.Popen([sys.executable, str(writer), name]) for name in ("a", "b", "c")]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    lines = paths.notes.read_text().splitlines()
    assert len(lines) == 600 and all(json.loads(line)["text"] for line in lines)


def test_skipped_proposals_keep_reason_digest_and_bounded_diff(paths):
    record_skip(paths, "wider model", "  widths were tried last month ", experiment=7, digest="abc",
                diff="+x\n" * 20_000, proposer="agent")
    record_skip(paths, "same as #3", "identical to experiment 3", experiment=8, source="repeat", repeat_of=3)
    first, second = skipped_proposals(paths)
    assert (first.experiment, first.reason, first.digest, first.source) == (7, "widths were tried last month",
                                                                            "abc", "user")
    assert len(first.diff) == 20_000 and first.proposer == "agent"
    assert (second.source, second.repeat_of) == ("repeat", 3)
    assert [s.experiment for s in skipped_proposals(paths, 1)] == [8]
    assert not paths.results.exists()  # a skip is not a run: no results.tsv row
