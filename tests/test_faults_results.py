"""results.tsv under hostile descriptions, torn writes and damaged rows: every documented reader
sees one row per run, a cut-short line never counts, and the file is only ever appended to."""
import csv
import json
import logging

import pandas as pd
import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.errors import MalformedResults
from autoresearch_magics.core.results import ResultRow, ResultsFile, full_columns, reference_columns

HOSTILE = [
    '"quoted" at the start',
    'a "quote" inside',
    '"',
    '""',
    'unbalanced " quote',
    '"never closed',
    "tab\there",
    "new\nline",
    "carriage\rreturn and\r\nwindows",
    "=HYPERLINK(\"http://x\")",
    "=1+2",
    "unicode: é ü 漢字 🚀",
    "form\x0cfeed, vertical\x0btab, nul\x00, sep\u2028ara\u2029tors, next\x85line",
    "lone \udc80 surrogate",
    "x" * 10_000,
    '"' + "y\"" * 3000 + "\t\n",
    "",
    "   leading and trailing spaces   ",
]


def _row(description, status="keep", metric=1.0, experiment=1):
    return ResultRow("abcdef1234", metric, 1.0, status, description,
                     extra={"experiment": experiment, "crash_reason": description if status == "crash" else "",
                            "evidence": description, "command": description})


def _expected(description: str) -> str:
    """What a reader gets back: the description with breaks and control characters as one space."""
    import re
    text = description.encode("utf-8", "replace").decode("utf-8")
    return re.sub("[\x00-\x1f\x7f\x85\u2028\u2029]+", " ", text)


@pytest.mark.parametrize("columns", ["full", "reference"])
def test_every_description_reads_back_as_one_row_with_pandas_csv_and_the_tool(tmp_path, columns):
    path = tmp_path / "results.tsv"
    if columns == "reference":
        path.write_text("\t".join(reference_columns("val_bpb")) + "\n")
    results = ResultsFile(path, "val_bpb", tmp_path / "runs.jsonl")
    for i, text in enumerate(HOSTILE):
        results.append(_row(text, "crash" if i % 3 == 0 else "keep", None if i % 3 == 0 else 1.0 + i, i + 1))
    width = 5 if columns == "reference" else len(full_columns("val_bpb"))
    wanted = [_expected(t) for t in HOSTILE]

    frame = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    assert frame.shape == (len(HOSTILE), width)
    assert frame["description"].tolist() == wanted
    assert frame["status"].tolist() == ["crash" if i % 3 == 0 else "keep" for i in range(len(HOSTILE))]

    with open(path, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh, delimiter="\t"))
    assert len(table) == len(HOSTILE) + 1 and {len(r) for r in table} == {width}
    assert [r[4] for r in table[1:]] == wanted

    assert [r["description"] for r in ResultsFile(path, "val_bpb").rows()] == wanted
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(HOSTILE) + 1  # line tools agree too
    records = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [r["description"] for r in records][:3] == HOSTILE[:3]  # the full original is kept aside
    if columns == "full":
        assert frame["evidence"].tolist() == wanted and frame["command"].tolist() == wanted


def test_an_enormous_description_is_shortened_in_the_table_but_kept_in_the_record(tmp_path):
    path = tmp_path / "results.tsv"
    results = ResultsFile(path, "val_bpb", tmp_path / "runs.jsonl")
    huge = '"' * 200_000
    results.append(_row(huge))
    with open(path, newline="") as fh:
        table = list(csv.reader(fh, delimiter="\t"))
    assert len(table) == 2 and table[1][4] == '"' * 31_999 + "\u2026"
    assert json.loads((tmp_path / "runs.jsonl").read_text())["description"] == huge
    assert len(pd.read_csv(path, sep="\t")) == 1


GOOD = "abc1234\t0.990000\t1.0\tkeep\tbaseline\n"
HEADER = "\t".join(reference_columns("val_bpb")) + "\n"


@pytest.mark.parametrize("torn", [
    "abc1234\t0.5",                               # cut in the metric
    "abc1234\t0.100000\t1.0\tkeep\tlooks compl",  # all five fields: still not a result
    'abc1234\t0.100000\t1.0\tkeep\t"quoted desc', # cut inside a quoted cell
    "abc1234\t0.100000\t1.0\tkeep\tcut in a multibyte char \xe6\xbc".encode("latin-1").decode("latin-1"),
])
def test_a_torn_last_line_never_counts_and_the_next_row_starts_on_a_new_line(tmp_path, torn, caplog):
    path = tmp_path / "results.tsv"
    raw = (HEADER + GOOD).encode() + torn.encode("utf-8", "surrogateescape")
    if "multibyte" in torn:
        raw = (HEADER + GOOD).encode() + "abc1234\t0.100000\t1.0\tkeep\tcut in a multibyte char ".encode() + \
              "漢".encode()[:2]
    path.write_bytes(raw)
    results = ResultsFile(path, "val_bpb")
    with caplog.at_level(logging.WARNING):
        rows = results.rows()
    assert [r["description"] for r in rows] == ["baseline"]
    assert results.torn_lines == [3] and "line 3 is incomplete" in caplog.text

    results.append(_row("after the tear", metric=0.9))
    after = path.read_bytes()
    assert after.startswith(raw)                                   # appended to, never rewritten
    fresh = ResultsFile(path, "val_bpb")
    assert [r["description"] for r in fresh.rows()] == ["baseline", "after the tear"]
    assert fresh.torn_lines == [3]
    frame = pd.read_csv(path, sep="\t")
    assert frame["description"].tolist()[-1] == "after the tear"   # not swallowed by an open quote
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        assert list(csv.reader(fh, delimiter="\t"))[-1][4] == "after the tear"
    fresh.append(_row("and another", metric=0.8))
    assert [r["description"] for r in ResultsFile(path, "val_bpb").rows()] == \
        ["baseline", "after the tear", "and another"]


def test_a_torn_row_cannot_become_the_best_of_a_campaign(tmp_path):
    c = Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)
    c.run("baseline")
    best = c.best()["value"]
    with open(c.paths.results, "a") as fh:  # a forged row whose write was cut short
        fh.write("abcdef0\t0.000001\t1.0\tkeep\tforged")
    reopened = Campaign.open(c.paths.root)
    assert reopened.best()["value"] == best and len(reopened.rows()) == 1
    reopened.run("next")
    assert len(Campaign.open(c.paths.root).rows()) == 2
    assert Campaign.open(c.paths.root).best()["value"] != 0.000001


@pytest.mark.parametrize("bad, line", [
    ("abc1234\t0.99\t1.0\tkeep\n", 3),                          # a field missing
    ("abc1234\t0.99\t1.0\tkeep\tx\textra\n", 3),                # one too many
    ('abc1234\t0.99\t1.0\tkeep\t"open quote\n', 3),             # an unterminated quoted cell
])
def test_a_row_with_the_wrong_number_of_fields_anywhere_names_its_line(tmp_path, bad, line):
    path = tmp_path / "results.tsv"
    text = HEADER + GOOD + bad + GOOD
    path.write_text(text)
    with pytest.raises(MalformedResults, match=f"line {line}: .*(fields, expected 5|never closed)"):
        ResultsFile(path, "val_bpb").rows()
    with pytest.raises(MalformedResults, match=f"line {line}"):
        ResultsFile(path, "val_bpb").append(_row("x"))
    assert path.read_text() == text


def test_a_middle_row_of_a_full_file_with_too_few_columns_is_an_error(tmp_path):
    path = tmp_path / "results.tsv"
    results = ResultsFile(path, "val_bpb")
    results.append(_row("one"))
    with open(path, "a") as fh:
        fh.write("abc1234\t0.99\t1.0\tkeep\tfive fields only\n")
    with pytest.raises(MalformedResults, match=f"line 3: 5 fields, expected {len(full_columns('val_bpb'))}"):
        ResultsFile(path, "val_bpb").rows()


def test_an_incomplete_header_is_refused_not_appended_under(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_b")
    with pytest.raises(MalformedResults, match="line 1: the header line is incomplete"):
        ResultsFile(path, "val_bpb").append(_row("x"))
    assert path.read_text() == "commit\tval_b"
