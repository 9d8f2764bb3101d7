"""The ratchet plot: colours, labels, the running best, crashes and the focused y-range."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from autoresearch_magics.presentation.plot import BEST, CRASH, DISCARD, KEEP, figure_png, focus_range, plot_progress


def frame_of(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["experiment", "val_bpb", "status", "description"])
    frame["experiment"] = frame["experiment"].astype("Int64")
    frame["status"] = pd.Categorical(frame["status"], categories=["keep", "discard", "crash"])
    return frame


@pytest.fixture
def campaign_frame():
    return frame_of([
        (1, 1.050, "keep", "baseline"),
        (2, 1.052, "discard", "dropout 0.1"),
        (3, 1.041, "keep", "wider MLP"),
        (4, np.nan, "crash", "fp16 everywhere"),
        (5, 2.900, "discard", "lr 1.0 (diverged)"),
        (6, 1.036, "keep", "rotary embeddings"),
        (7, 1.038, "discard", "tie embeddings"),
    ])


def scatter(ax, label):
    return next(c for c in ax.collections if c.get_label() == label)


def test_kept_are_green_and_labelled_discarded_grey(campaign_frame):
    ax = plot_progress(campaign_frame, "val_bpb").axes[0]
    kept = scatter(ax, "kept")
    assert to_hex(kept.get_facecolor()[0]) == KEEP
    assert [tuple(p) for p in kept.get_offsets()] == [(1, 1.050), (3, 1.041), (6, 1.036)]
    assert to_hex(scatter(ax, "discarded").get_facecolor()[0]) == DISCARD
    labels = {t.get_text() for t in ax.texts}
    assert {"baseline", "wider MLP", "rotary embeddings"} <= labels
    assert "tie embeddings" not in labels


def test_running_best_is_a_step_line_to_the_last_experiment(campaign_frame):
    ax = plot_progress(campaign_frame, "val_bpb").axes[0]
    line = next(l for l in ax.lines if l.get_label() == "running best")
    assert to_hex(line.get_color()) == BEST
    assert line.get_drawstyle() == "steps-post"
    assert list(line.get_xdata()) == [1, 3, 6, 7]
    assert list(line.get_ydata()) == [1.050, 1.041, 1.036, 1.036]


def test_crashes_are_marked_apart_and_off_scale_runs_pinned_to_the_edge(campaign_frame):
    ax = plot_progress(campaign_frame, "val_bpb").axes[0]
    crashes = scatter(ax, "crash (1)")
    assert to_hex(crashes.get_facecolor()[0]) == CRASH
    assert [p[0] for p in crashes.get_offsets()] == [4]
    low, high = ax.get_ylim()
    assert low < 1.036 and 1.052 < high < 1.06   # the diverged 2.9 does not squash the range
    assert [p[0] for p in scatter(ax, "off scale").get_offsets()] == [5]


def test_range_without_improvement_frames_what_was_tried():
    low, high = focus_range(np.array([1.05, 1.055, 1.052]), 1.05, 1.05)
    assert low < 1.05 and high > 1.055


def test_maximising_campaign_keeps_the_highest(campaign_frame):
    frame = frame_of([(1, 0.50, "keep", "baseline"), (2, 0.60, "keep", "better"), (3, 0.55, "discard", "worse")])
    fig = plot_progress(frame, "val_bpb", direction="max")
    line = next(l for l in fig.axes[0].lines if l.get_label() == "running best")
    assert list(line.get_ydata()) == [0.50, 0.60, 0.60]
    assert "higher is better" in fig.axes[0].get_ylabel()


def test_empty_campaign_draws_a_note():
    fig = plot_progress(frame_of([]), "val_bpb")
    assert fig.axes[0].texts[0].get_text() == "no experiments yet"
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_repeated_runs_plot_the_experiment_at_their_mean():
    frame = frame_of([(1, 1.050, "keep", "baseline"), (2, 1.040, "keep", "wider"), (2, 1.042, "keep", "wider"),
                      (2, 1.044, "keep", "wider"), (3, 1.047, "discard", "deeper"), (3, np.nan, "crash", "deeper")])
    ax = plot_progress(frame, "val_bpb").axes[0]
    assert [tuple(p) for p in scatter(ax, "kept").get_offsets()] == [(1, 1.050), (2, pytest.approx(1.042))]
    assert len(scatter(ax, "single runs").get_offsets()) == 6
    assert [tuple(p) for p in scatter(ax, "discarded").get_offsets()] == [(3, 1.047)]
