from autoresearch_magics.core.summary import parse_progress, parse_summary

REFERENCE = """step 00001 (50.0%) | loss: 3.0\rstep 00002 (100.0%) | loss: 2.5
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""


def test_reference_summary_block_is_parsed_in_order_with_numbers():
    summary = parse_summary(REFERENCE)
    assert list(summary)[:3] == ["val_bpb", "training_seconds", "total_seconds"]
    assert summary["val_bpb"] == 0.9979 and summary["num_steps"] == 953.0 and summary["depth"] == 8.0


def test_last_block_wins_and_unknown_keys_are_kept():
    text = "---\nval_bpb: 2.0\n\nsome log\n---\nval_bpb: 1.5\ncustom_key: hello\n"
    assert parse_summary(text) == {"val_bpb": 1.5, "custom_key": "hello"}


def test_no_block_gives_empty_summary_and_nan_is_a_float():
    assert parse_summary("just a log\nno summary\n") == {}
    value = parse_summary("---\nval_bpb: nan\n")["val_bpb"]
    assert value != value


def test_progress_line_fields():
    line = ("step 00042 (13.9%) | loss: 3.141593 | lrm: 1.00 | dt: 512ms | tok/sec: 1,024,000 | "
            "mfu: 39.8% | epoch: 1 | remaining: 258s")
    p = parse_progress(line)
    assert (p.step, p.percent, p.loss, p.tok_per_s, p.mfu, p.remaining_s) == (42, 13.9, 3.141593, 1024000.0, 39.8, 258.0)
    assert parse_progress("val_bpb: 1.0") is None


def test_progress_line_without_percent_or_with_iter_is_read():
    p = parse_progress("iter 12: loss: 2.5 | remaining: 1.5min")
    assert (p.step, p.percent, p.loss, p.remaining_s) == (12, None, 2.5, 90.0)
