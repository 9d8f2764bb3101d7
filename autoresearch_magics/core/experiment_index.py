"""Results grouped by experiment, kept up to date incrementally as rows are appended.

Every experiment asks for the next number, the best kept result and the count of attempts;
recomputing those over the whole file would make experiment 2,000 slower than experiment 20.
"""
from __future__ import annotations


class ExperimentIndex:
    """Groups of rows per experiment, the next experiment number and the best kept experiment."""

    def __init__(self, metric: str, better) -> None:
        self.metric = metric
        self.better = better          # better(a, b): True when value a beats b
        self._reset()

    def _reset(self) -> None:
        self.groups: dict[str, list[dict]] = {}
        self.next_number = 1
        self._seen = 0
        self._last = None
        self._best_key: str | None = None
        self._best_value: float | None = None

    def update(self, rows: list[dict]) -> "ExperimentIndex":
        """Takes in rows appended since the last call (starts over if the file was replaced)."""
        if len(rows) < self._seen or (self._seen and rows[self._seen - 1] is not self._last):
            self._reset()
        touched = set()
        for i in range(self._seen, len(rows)):
            row = rows[i]
            number = row.get("experiment", "")
            key = number or f"row{i}"
            self.groups.setdefault(key, []).append(row)
            touched.add(key)
            self.next_number = max(self.next_number, (int(number) if number.isdigit() else i + 1) + 1)
        if rows:
            self._seen, self._last = len(rows), rows[-1]
        if touched:
            if self._best_key in touched:  # the best's own mean moved: look at everything again
                self._best_key = self._best_value = None
                touched = self.groups.keys()
            for key in touched:
                value = self.kept_mean(key)
                if value is not None and (self._best_value is None or self.better(value, self._best_value)):
                    self._best_key, self._best_value = key, value
        return self

    def kept_mean(self, key: str) -> float | None:
        """Returns the mean metric over an experiment's kept runs, or None."""
        values = [float(r[self.metric]) for r in self.groups[key] if r["status"] == "keep"]
        return sum(values) / len(values) if values else None

    def best(self) -> dict | None:
        """Returns the best kept experiment's last row plus value, values and key, or None."""
        if self._best_key is None:
            return None
        rows = self.groups[self._best_key]
        values = [float(r[self.metric]) for r in rows if r["status"] == "keep"]
        return {**rows[-1], "value": self._best_value, "values": values, "key": self._best_key}
