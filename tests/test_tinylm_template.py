"""The tinylm template: end-to-end run, exact bits-per-byte metric, budget, data preparation."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from autoresearch_magics.core.summary import parse_summary

TEMPLATE = Path(__file__).resolve().parent.parent / "autoresearch_magics" / "templates" / "tinylm"
REFERENCE_KEYS = ["val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                  "total_tokens_M", "num_steps", "num_params_M", "depth"]
PROGRESS = re.compile(r"^step \d{5} \(\d+\.\d%\) \| loss: \d+\.\d{6} \| lrm: \d\.\d\d \| dt: (\d+)ms \| "
                      r"tok/sec: [\d,]+ \| mfu: \d+\.\d% \| epoch: \d+ \| remaining: \d+s\s*$")
TINY = {"DEPTH": "1", "MODEL_DIM": "32", "N_HEAD": "2", "BATCH_SIZE": "4", "UNTIMED_STEPS": "2"}
BUDGET_S = 3.0


def tiny_campaign(folder: Path, replace: dict[str, str] | None = None) -> Path:
    """Copies the template into `folder` with a tiny model, plus any text replacements."""
    folder.mkdir(parents=True)
    for name in ("prepare.py", "train.py", "program.md"):
        shutil.copy(TEMPLATE / name, folder / name)
    source = (folder / "train.py").read_text()
    for key, value in TINY.items():
        source, n = re.subn(rf"^{key} = \S+", f"{key} = {value}", source, flags=re.M)
        assert n == 1, f"{key} not found in train.py"
    for old, new in (replace or {}).items():
        assert old in source
        source = source.replace(old, new)
    (folder / "train.py").write_text(source)
    return folder


def run(folder: Path, shared: dict, script: str = "train.py", budget_s: float = BUDGET_S, timeout=240,
        seed: int = 7, max_steps: int = 0):
    """Runs a template script in `folder` with the shared data and cache folders."""
    env = dict(os.environ, AUTORESEARCH_BUDGET_S=str(budget_s), AUTORESEARCH_SEED=str(seed),
               AUTORESEARCH_MAX_STEPS=str(max_steps), AUTORESEARCH_DATA_DIR=str(shared["data"]),
               AUTORESEARCH_CACHE_DIR=str(shared["cache"]), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, script], cwd=folder, env=env, capture_output=True,
                            timeout=timeout)
    # Decoded by hand: text mode would turn the progress line's \r into \n.
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def load_prepare():
    """Imports the template's prepare.py as a fresh module."""
    spec = importlib.util.spec_from_file_location("tinylm_prepare_under_test", TEMPLATE / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep the template folder clean
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Data and cache folders shared by this module's runs (the corpus is built only once)."""
    root = tmp_path_factory.mktemp("tinylm")
    return {"root": root, "data": root / "data", "cache": root / "cache"}


@pytest.fixture(scope="module")
def first_run(shared):
    """One end-to-end run of a tiny copy in a fresh folder: it must prepare the data itself."""
    folder = tiny_campaign(shared["root"] / "campaign")
    started = time.time()
    result = run(folder, shared)
    return result, time.time() - started


@pytest.mark.timeout(300)
def test_first_run_prepares_data_and_prints_parseable_summary(first_run, shared):
    result, _ = first_run
    assert result.returncode == 0, result.stderr[-3000:]
    summary = parse_summary(result.stdout)
    assert list(summary)[:len(REFERENCE_KEYS)] == REFERENCE_KEYS
    for key in ("peak_rss_mb", "data_hash", "device", "dtype", "seed"):
        assert key in summary
    assert 0 < summary["val_bpb"] < 8.0
    assert summary["peak_vram_mb"] == 0.0 or summary["device"] != "cpu"
    assert summary["peak_rss_mb"] > 0 and summary["num_steps"] > int(TINY["UNTIMED_STEPS"])
    assert summary["seed"] == 7 and summary["depth"] == 1
    assert summary["dtype"] in ("fp32", "bf16")
    assert re.search(r"^val_bpb:\s+\d+\.\d{6}$", result.stdout, flags=re.M)
    meta_files = list(shared["data"].glob("*/meta.json"))
    assert len(meta_files) == 1
    assert json.loads(meta_files[0].read_text())["data_hash"] == summary["data_hash"]
    assert (shared["cache"] / "matmul_peak.json").is_file()
    assert len(list((shared["cache"] / "tinylm").glob("*/meta.json"))) == 1  # the per-machine copy


@pytest.mark.timeout(300)
def test_default_model_beats_the_unigram_baseline_within_20_seconds(first_run, shared, tmp_path):
    folder = tmp_path / "default"
    folder.mkdir()
    for name in ("prepare.py", "train.py"):
        shutil.copy(TEMPLATE / name, folder / name)
    result = run(folder, shared, budget_s=20.0)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = parse_summary(result.stdout)
    assert summary["training_seconds"] < 21.0  # the budget plus at most one step
    _, unigram = load_prepare().baselines(shared["data"])
    assert summary["val_bpb"] < unigram - 0.5, (summary["val_bpb"], unigram)


@pytest.mark.timeout(300)
def test_same_seed_and_fixed_steps_give_identical_val_bpb(first_run, shared, tmp_path):
    folder = tiny_campaign(tmp_path / "fixed")
    first, again, other = (run(folder, shared, budget_s=1000, seed=seed, max_steps=25) for seed in (3, 3, 4))
    for result in (first, again, other):
        assert result.returncode == 0, result.stderr[-3000:]
    first, again, other = (parse_summary(r.stdout) for r in (first, again, other))
    assert first["num_steps"] == again["num_steps"] == other["num_steps"] == 25  # the budget never ends a run
    assert first["val_bpb"] == again["val_bpb"]
    assert first["val_bpb"] != other["val_bpb"]  # the seed still moves everything random


@pytest.mark.timeout(300)
def test_progress_line_has_reference_form_and_budget_is_respected(first_run):
    result, _ = first_run
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in re.split(r"[\r\n]", result.stdout) if line.startswith("step ")]
    assert progress and all(PROGRESS.match(line) for line in progress), progress[:3]
    assert "\r" in result.stdout
    slowest_step_s = max(int(PROGRESS.match(line).group(1)) for line in progress) / 1000
    training_s = parse_summary(result.stdout)["training_seconds"]
    assert BUDGET_S <= training_s <= BUDGET_S + slowest_step_s + 0.1


@pytest.mark.timeout(300)
def test_prepare_runs_standalone_and_prints_hash_and_baselines(first_run, shared):
    result = run(TEMPLATE, shared, script="prepare.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"data_hash:\s+[0-9a-f]{16}", result.stdout)
    assert "baseline uniform: 8.000000 bpb" in result.stdout
    unigram = float(re.search(r"baseline unigram: (\d+\.\d+) bpb", result.stdout).group(1))
    assert 4.0 < unigram < 5.5
    assert not (TEMPLATE / "data").exists()


@pytest.mark.timeout(300)
def test_nan_loss_prints_fail_and_exits_1(first_run, shared, tmp_path):
    folder = tiny_campaign(tmp_path / "nan", {"loss_f = loss.item()": 'loss_f = float("nan")'})
    result = run(folder, shared)
    assert result.returncode == 1
    assert "FAIL" in result.stdout.splitlines()


@pytest.mark.timeout(300)
def test_peak_cached_on_a_busy_machine_is_measured_again(first_run, shared, tmp_path):
    cache = shared["cache"] / "matmul_peak.json"
    entries = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: {k: v / 1e6 for k, v in peaks.items()} for key, peaks in entries.items()}))
    result = run(tiny_campaign(tmp_path / "busy"), shared, budget_s=1.0)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "measuring again" in result.stdout
    assert 0 < parse_summary(result.stdout)["mfu_percent"] <= 100
    remeasured = json.loads(cache.read_text())
    assert all(remeasured[key]["fp32"] > peaks["fp32"] / 1e6 for key, peaks in entries.items())


# --- the metric, by hand ---------------------------------------------------------------------

DOCS = [  # names starting with "val" go to validation below; non-ASCII exercises byte accounting
    ("train/a.py", "Return the number of bytes in the buffer, or raise an error when it is closed."),
    ("train/b.py", "The buffer holds bytes; café, naïve and 你好 are text with multi-byte characters."),
    ("train/c.py", "Return a copy of the string with leading and trailing whitespace removed. " * 3),
    ("val/d.py", "Return the buffer's bytes — naïve readers count 你好 as two characters, not six bytes."),
    ("val/e.py", "Raise an error when the stream is closed; return the number of bytes written. " * 5),
]


class Bigram(torch.nn.Module):
    """Logits depend only on the previous token, so a sequential hand loop gives the same answer."""

    def __init__(self, vocab):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)))

    def forward(self, idx):
        return self.table[idx]


@pytest.mark.timeout(120)
def test_val_bpb_equals_hand_computation_each_byte_once(tmp_path, monkeypatch):
    P = load_prepare()
    monkeypatch.setattr(P, "is_validation", lambda name: name.startswith("val/"))
    monkeypatch.setattr(P, "MAX_SEQ_LEN", 16)  # many windows, the last one partial
    meta = P.ensure_data(tmp_path, collect=lambda: list(DOCS))
    tokenizer = P.load_tokenizer(tmp_path)
    val_docs = [text for name, text in DOCS if name.startswith("val/")]
    val_bytes = sum(len(text.encode("utf-8")) for text in val_docs)
    assert meta["val_bytes"] == val_bytes

    stream = []
    for text in val_docs:
        stream += [P.BOS] + tokenizer.encode(text)
    tokens = P.load_tokens("val", tmp_path).tolist()
    assert tokens == stream and (len(tokens) - 1) % 16 != 0
    assert sum(len(tokenizer.token_bytes[t]) for t in tokens) == val_bytes
    assert any(len(tokenizer.token_bytes[t]) == 1 and tokenizer.token_bytes[t][0] >= 0x80 for t in tokens)

    model = Bigram(P.VOCAB_SIZE)
    logp = torch.log_softmax(model.table.detach().double(), dim=-1)
    nats = sum(-logp[prev, nxt].item() for prev, nxt in zip(tokens, tokens[1:]) if nxt != P.BOS)
    expected = nats / val_bytes / math.log(2)
    for batch in (1, 3, 64):  # the evaluation's own batch size does not change the value
        monkeypatch.setattr(P, "EVAL_BATCH", batch)
        assert P.evaluate_bpb(model, tmp_path) == pytest.approx(expected, rel=1e-6)


@pytest.mark.timeout(120)
def test_evaluation_predicts_exactly_the_first_eval_tokens_and_repeats_exactly(tmp_path, monkeypatch):
    P = load_prepare()
    monkeypatch.setattr(P, "is_validation", lambda name: name.startswith("val/"))
    monkeypatch.setattr(P, "MAX_SEQ_LEN", 16)
    monkeypatch.setattr(P, "EVAL_TOKENS", 40)  # three windows: 16 + 16 + 8 targets
    P.ensure_data(tmp_path, collect=lambda: list(DOCS))
    tokenizer = P.load_tokenizer(tmp_path)
    tokens = P.load_tokens("val", tmp_path).tolist()
    assert len(tokens) > 41
    model = Bigram(P.VOCAB_SIZE)
    logp = torch.log_softmax(model.table.detach().double(), dim=-1)
    pairs = list(zip(tokens[:40], tokens[1:41]))
    nats = sum(-logp[prev, nxt].item() for prev, nxt in pairs if nxt != P.BOS)
    predicted_bytes = sum(len(tokenizer.token_bytes[nxt]) for _, nxt in pairs)
    value = P.evaluate_bpb(model, tmp_path)
    assert value == pytest.approx(nats / predicted_bytes / math.log(2), rel=1e-6)
    assert P.evaluate_bpb(model, tmp_path) == value  # a fixed model always gets the same number


@pytest.mark.timeout(300)
def test_a_second_campaign_copies_the_machine_cache_instead_of_building(first_run, shared, tmp_path, monkeypatch):
    P = load_prepare()
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(shared["cache"]))

    def no_build(*args):
        raise AssertionError("the corpus was built again although this machine has it cached")

    monkeypatch.setattr(P, "_build", no_build)
    meta = P.ensure_data(tmp_path / "second")
    built = json.loads(next(shared["data"].glob("*/meta.json")).read_text())
    assert meta == built
    for name in ("train.bin", "val.bin"):
        assert (P.data_path(tmp_path / "second") / name).read_bytes() == \
            (P.data_path(shared["data"]) / name).read_bytes()


@pytest.mark.timeout(120)
def test_concurrent_preparations_leave_one_complete_folder(tmp_path):
    P = load_prepare()

    def slow_collect():
        time.sleep(0.3)  # both builders overlap
        return list(DOCS)

    results = []
    threads = [threading.Thread(target=lambda: results.append(P.ensure_data(tmp_path, collect=slow_collect)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert [p.name for p in tmp_path.iterdir()] == [P.data_path(tmp_path).name]
    assert P.load_tokens("train", tmp_path).numel() == results[0]["train_tokens"]
