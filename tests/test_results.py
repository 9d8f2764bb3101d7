import os

import pandas as pd
import pytest

from autoresearch_magics.core.errors import MalformedResults
from autoresearch_magics.core.results import ResultRow, ResultsFile, reference_columns
from autoresearch_magics.core.results_frame import results_frame


def _row(status="keep", metric=1.234567, **extra):
    return ResultRow("abcdef1234", metric, 12.34, status, "a\tdescription\nwith breaks",
                     extra={"experiment": extra.get("experiment", 1), "crash_reason": extra.get("reason", "")})


def test_new_file_has_reference_columns_first_and_reads_with_plain_pandas(tmp_path):
    results = ResultsFile(tmp_path / "results.tsv", "val_bpb")
    results.append(_row())
    results.append(_row("crash", None, experiment=2, reason="exit code 1"))
    frame = pd.read_csv(tmp_path / "results.tsv", sep="\t")
    assert list(frame.columns[:5]) == reference_columns("val_bpb")
    assert frame["commit"].tolist() == ["abcdef1", "abcdef1"]
    lines = (tmp_path / "results.tsv").read_text().splitlines()
    assert lines[1].split("\t")[:5] == ["abcdef1", "1.234567", "12.3", "keep", "a description with breaks"]
    assert lines[2].split("\t")[:4] == ["abcdef1", "0.000000", "0.0", "crash"]


def test_typed_frame_has_nan_for_crashes_categorical_status_and_integers(tmp_path):
    results = ResultsFile(tmp_path / "results.tsv", "val_bpb")
    results.append(_row())
    results.append(_row("crash", None, experiment=2, reason="timeout"))
    frame = results_frame(results)
    assert frame["val_bpb"].dtype == float and pd.isna(frame["val_bpb"][1])
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert str(frame["experiment"].dtype) == "Int64"


def test_reference_format_file_is_appended_in_its_own_five_columns(tmp_path):
    path = tmp_path / "results.tsv"
    original = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    path.write_text(original)
    results = ResultsFile(path, "val_bpb", tmp_path / "runs.jsonl")
    results.append(_row(experiment=2))
    text = path.read_text()
    assert text.startswith(original)
    assert text.splitlines()[-1].count("\t") == 4
    assert "experiment" in (tmp_path / "runs.jsonl").read_text()  # the full record is kept aside
    assert results_frame(results)["experiment"].tolist() == [1, 2]


def test_malformed_file_error_names_the_line(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    "a1b2c3d\t0.99\t1.0\tkeep\tok\n"
                    "a1b2c3d\tnot-a-number\t1.0\tkeep\tbad\n")
    with pytest.raises(MalformedResults, match="line 3.*not a number"):
        ResultsFile(path, "val_bpb").rows()
    path.write_text("commit\tloss\tmemory_gb\tstatus\tdescription\n")
    with pytest.raises(MalformedResults, match="line 1: header"):
        ResultsFile(path, "val_bpb").rows()


def test_append_to_malformed_file_refuses_and_changes_nothing(tmp_path):
    path = tmp_path / "results.tsv"
    bad = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na\t1\t1\tmaybe\tx\n"
    path.write_text(bad)
    with pytest.raises(MalformedResults, match="line 2.*status"):
        ResultsFile(path, "val_bpb").append(_row())
    assert path.read_text() == bad


def test_complete_header_without_final_newline_is_used_for_the_first_row(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription")
    results = ResultsFile(path, "val_bpb")
    assert results.rows() == []
    results.append(_row(experiment=1))
    assert path.read_text().splitlines()[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    assert [r["status"] for r in ResultsFile(path, "val_bpb").rows()] == ["keep"]


def test_incremental_reads_see_rows_appended_by_another_writer(tmp_path):
    path = tmp_path / "results.tsv"
    reader = ResultsFile(path, "val_bpb")
    writer = ResultsFile(path, "val_bpb")
    assert reader.rows() == []
    for i in range(3):
        writer.append(_row(experiment=i + 1))
        assert len(reader.rows()) == i + 1
    os.remove(path)
    assert reader.rows() == []
