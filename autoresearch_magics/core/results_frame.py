"""results.tsv as a typed pandas DataFrame (numbers, categorical status, datetimes)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .results import STATUSES, ResultsFile

_NUMERIC = ("memory_gb", "elapsed_min", "training_seconds", "peak_rss_gb", "seed")
_INTEGER = ("experiment", "run")


def results_frame(results: ResultsFile) -> pd.DataFrame:
    """Returns every row typed: metric as float with crashes as NaN, status categorical, times as datetimes."""
    rows = results.rows()
    frame = pd.DataFrame(rows, columns=results.header())
    metric = results.metric
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame.loc[frame["status"] == "crash", metric] = np.nan
    for col in _NUMERIC:
        if col in frame:
            frame[col] = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")
    if "experiment" not in frame:  # a reference-format file: one row per experiment
        frame.insert(5, "experiment", range(1, len(frame) + 1))
    for col in _INTEGER:
        if col in frame:
            frame[col] = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce").astype("Int64")
    if "started_at" in frame:
        frame["started_at"] = pd.to_datetime(frame["started_at"].replace("", None), utc=True, errors="coerce")
    frame["status"] = pd.Categorical(frame["status"], categories=list(STATUSES))
    return frame
