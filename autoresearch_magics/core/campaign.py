"""A campaign: create or attach, resume, and report. Running lives in experiment.py and loop.py.

Opening and reading a campaign never changes anything: recovering from a runner that died
happens only under the runner lock (`recover`, and every runner before it starts).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, fields
from pathlib import Path

from . import templates, validation
from .config import CampaignConfig, deadline_from_duration, now_utc
from .errors import CampaignBusy, CampaignError, NotACampaign
from .experiment_index import ExperimentIndex
from .ledger import Ledger, experiment_ref
from .live import read_json, read_live
from .lock import RunnerLock
from .notes import latest_notes, skipped_proposals
from .paths import CampaignPaths, find_campaign_root
from .phases import budget_constant_warning, time_use
from .results import ResultsFile
from .stop_rules import stop_state

# Reference-layout files committed on attach when the folder was not yet under git.
REFERENCE_FILES = ("train.py", "prepare.py", "program.md", "pyproject.toml", "README.md")
SHOW_TAIL_LINES = 40  # log lines `show` returns by default
STATUS_NOTES = 3      # latest steering notes `status` shows
# Settings that define what results mean; changing them needs a new campaign.
FIXED_SETTINGS = ("metric", "direction", "budget_s", "command")


class Campaign:
    """One campaign folder: config, ledger, results and the runner lock."""

    def __init__(self, paths: CampaignPaths, config: CampaignConfig) -> None:
        self.paths = paths
        self.config = config
        self.ledger = Ledger(paths.root)
        self.results = ResultsFile(paths.results, config.metric, paths.records)
        self.lock = RunnerLock(paths)

    # -- create, attach, resume --------------------------------------------------------------
    @classmethod
    def init(cls, folder=".", tag: str | None = None, template: str | None = None, deadline: str | None = None,
             listener=None, **settings) -> "Campaign":
        """Returns a new campaign in `folder`, or the existing one resumed (stop rules may be updated).

        An empty folder (no train.py) gets the tinylm template; a folder with train.py is attached
        as it is; a folder that is not a git repository becomes one. The campaign's one-time
        preparation (a template's data, `prepare_command`) runs before this returns, once
        (preparation.py); its output goes to `listener` as messages.
        """
        campaign = cls._create_or_resume(folder, tag, template, deadline, settings)
        warning = budget_constant_warning(campaign.paths.root, campaign.config.budget_s)
        if warning and listener is not None:
            listener.message(warning)
        from .preparation import prepare
        prepare(campaign, listener)
        return campaign

    @classmethod
    def _create_or_resume(cls, folder, tag, template, deadline, settings) -> "Campaign":
        paths = CampaignPaths.of(folder)
        validation.check_init_folder(paths.root)
        settings = {k: v for k, v in settings.items() if v is not None}
        if deadline is not None:
            settings["deadline"] = deadline_from_duration(deadline)
        if paths.config.is_file():
            return cls._resume_with(paths, tag, template, settings)
        if not tag:
            raise CampaignError("a new campaign needs a tag: add --tag, e.g. --tag nov22")
        known = {f.name for f in fields(CampaignConfig)}
        unknown = set(settings) - known
        if unknown:
            raise CampaignError(f"unknown settings {sorted(unknown)}: use one of {sorted(known)}")
        config = CampaignConfig(tag=tag, created_at=now_utc().isoformat(), **settings).validate()
        paths.root.mkdir(parents=True, exist_ok=True)
        added = _place_template(paths.root, template, config)
        # A campaign made from a template gets a repository of its own: its branch switches and
        # commits must never land in a project checkout that merely contains the folder.
        ledger = Ledger.init_repo(paths.root, own=bool(added))
        validation.check_enclosing_repository(paths.root, ledger.repo.working_tree_dir)
        ledger.exclude_campaign_files()
        candidates = dict.fromkeys([*config.editable, *REFERENCE_FILES])
        to_commit = added or ledger.untracked([f for f in candidates if (paths.root / f).exists()])
        if to_commit:
            ledger.commit_files(to_commit, f"autoresearch: {'template ' + config.template if added else 'attach'} "
                                           f"for campaign {tag}")
        if not ledger.has_commits():
            raise CampaignError(f"{paths.root} has no {config.editable[0]} to experiment on: add it, or init "
                                f"in an empty folder to get the {templates.DEFAULT} template")
        ledger.ensure_on_branch(config.branch)
        ResultsFile(paths.results, config.metric).rows()  # an existing file must be readable
        config.save(paths)
        paths.logs.mkdir(exist_ok=True)
        return cls(paths, config)

    @classmethod
    def _resume_with(cls, paths, tag, template, settings) -> "Campaign":
        campaign = cls.open(paths.root)
        config = campaign.config
        if tag and tag != config.tag:
            raise CampaignError(
                f"{paths.root} already runs campaign {config.tag!r}. Resume it with --tag {config.tag}, "
                f"or start {tag!r} in another folder.")
        if template and template != config.template:
            raise CampaignError(f"{paths.root} already holds a campaign; --template applies only to a new one")
        for key in FIXED_SETTINGS:
            if key in settings and settings[key] != getattr(config, key):
                raise CampaignError(
                    f"campaign {config.tag} was started with {key}={getattr(config, key)!r}; results under "
                    f"{key}={settings[key]!r} would not compare. Start a new campaign in another folder.")
        changed = {k: v for k, v in settings.items() if getattr(config, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(config, key, value)
            config.validate().save(paths)
        campaign.ledger.ensure_on_branch(config.branch)
        return campaign

    @classmethod
    def open(cls, folder=".") -> "Campaign":
        """Returns the campaign at or above `folder`; changes nothing (see `recover`)."""
        root = find_campaign_root(folder)
        if root is None:
            raise NotACampaign(f"no campaign at or above {Path(folder).resolve()}: "
                               f"run `autoresearch init --tag TAG` there first")
        paths = CampaignPaths.of(root)
        return cls(paths, CampaignConfig.load(paths))

    def recover(self):
        """Takes the runner lock and records what a runner that died left (core/recovery.py); returns
        the RecoveryReport, or None when nothing was left or another process runs the campaign."""
        from .recovery import recover
        if not self.paths.current.exists():
            return None
        try:
            with self.lock.holding("recover"):
                return recover(self)
        except CampaignBusy:
            return None

    def update_stop_rules(self, max_experiments=None, deadline=None, target=None, keep_rule=None,
                          prune=None) -> None:
        """Changes stop rules (a deadline given as a duration from now), the keep rule or early stopping
        (`prune`); saves the config."""
        if prune is not None:
            self.config.prune = bool(prune)
        if keep_rule is not None:
            self.config.keep_rule = keep_rule
        if max_experiments is not None:
            self.config.max_experiments = max_experiments
        if deadline is not None:
            self.config.deadline = deadline_from_duration(deadline)
        if target is not None:
            self.config.target = target
        self.config.validate().save(self.paths)

    def run(self, description: str, files: dict[str, str] | None = None, **options):
        """Runs one experiment (the baseline first when there is none); returns the ExperimentResults."""
        from .experiment import run_experiment
        validation.check_runnable(self, files)
        return run_experiment(self, description, files, **options)

    # -- reading -----------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """Returns the folder in which train.py is edited (the campaign folder itself)."""
        return self.paths.root

    def frame(self):
        """Returns results.tsv as a typed DataFrame."""
        from .results_frame import results_frame  # pandas is slow to import; only readers pay for it
        return results_frame(self.results)

    def curves(self, experiments=None):
        """Returns the learning curves of the campaign's runs (all, or those of `experiments`) as one
        long DataFrame: experiment, run, step, training_seconds, progress, wall_s, loss, other fields."""
        from .curves import campaign_curves
        return campaign_curves(self, experiments)

    def rows(self) -> list[dict]:
        """Returns results.tsv rows as text dicts."""
        return self.results.rows()

    def _index(self) -> ExperimentIndex:
        """Returns the experiment index, brought up to date with results.tsv."""
        if "_experiment_index" not in self.__dict__:
            self._experiment_index = ExperimentIndex(self.config.metric, self.config.better)
        return self._experiment_index.update(self.rows())

    def next_experiment(self) -> int:
        """Returns the number the next experiment gets."""
        return self._index().next_number

    def experiments(self) -> dict[str, list[dict]]:
        """Returns rows grouped by experiment number, in order (a reference-format row is its own)."""
        return self._index().groups

    def best(self) -> dict | None:
        """Returns the best kept experiment: its last row plus `value` (mean metric over its runs)
        and `values`, or None before the first keep."""
        return self._index().best()

    def noise(self, extra: list[float] | None = None) -> tuple[float | None, int]:
        """Returns (pooled within-experiment standard deviation, degrees of freedom) over every
        experiment run more than once (plus `extra`, a candidate's values), or (None, 0)."""
        from .results import measured
        # grouped by commit: a re-run of the best's unchanged code (another experiment number, the
        # same commit) is one more measurement of it
        by_commit: dict[str, list[dict]] = {}
        for rows in self.experiments().values():
            for row in rows:
                by_commit.setdefault(row["commit"][:7], []).append(row)
        groups = [measured(rows, self.config.metric) for rows in by_commit.values()]
        if extra:
            groups.append(list(extra))
        squares, df = 0.0, 0
        for values in groups:
            if len(values) > 1:
                mean = sum(values) / len(values)
                squares += sum((v - mean) ** 2 for v in values)
                df += len(values) - 1
        return ((squares / df) ** 0.5, df) if df else (None, 0)

    def attempted(self) -> int:
        """Returns the number of experiments attempted (repeat runs of one experiment count once)."""
        return len(self.experiments())

    def status(self) -> dict:
        """Returns the objective, stop-rule progress, branch, best, latest and live run as plain data."""
        rows = self.rows()
        best = self.best()
        state = stop_state(self.config, self.attempted(), best["value"] if best else None)
        metric = self.config.metric
        groups = self.experiments()
        summaries = [self._summarise(group) for group in groups.values()]
        baseline = self._baseline(groups)
        counts = {s: sum(e["status"] == s for e in summaries) for s in ("keep", "discard", "crash")}
        best_brief = self._summarise(groups[best["key"]]) if best else None
        return {
            "root": str(self.paths.root), "workdir": str(self.workdir), "tag": self.config.tag,
            "branch": self.config.branch, "current_branch": self.ledger.current_branch(),
            "objective": f"{'minimise' if self.config.direction == 'min' else 'maximise'} {metric}",
            "metric": metric, "direction": self.config.direction, "budget_s": self.config.budget_s,
            "timeout_s": self.config.effective_timeout_s, "keep_rule": self.config.keep_rule,
            "command": self.config.command,
            "stop": {"reached": state.reached, "reason": state.reason, "progress": state.progress,
                     "max_experiments": self.config.max_experiments, "deadline": self.config.deadline,
                     "target": self.config.target},
            "attempted": self.attempted(), "runs": len(rows), "counts": counts,
            "baseline": baseline, "best": best_brief, "latest": summaries[-1] if summaries else None,
            "running": read_live(self.paths),
            "results_path": str(self.paths.results),
            "notes": [{"text": n.text, "at": n.at} for n in latest_notes(self.paths, STATUS_NOTES)],
            "skipped": len(skipped_proposals(self.paths)),
            "time_use": time_use(rows),
            "noise": self.noise_floor(),
        }

    def _baseline(self, groups: dict[str, list[dict]]) -> dict | None:
        """Returns the baseline's summary: the first measured experiment that ran the campaign's starting code
        unchanged (candidate.baseline_keys; its description does not matter), else the first measured one (a
        campaign whose baseline never produced a value, or a reference-format file); None before any value.
        Its `unchanged` field says which."""
        from .candidate import baseline_keys
        for key in baseline_keys(groups):
            summary = self._summarise(groups[key])
            if summary["value"] is not None:
                return {**summary, "unchanged": True}
        first = next((s for s in map(self._summarise, groups.values()) if s["value"] is not None), None)
        return None if first is None else {**first, "unchanged": False}

    def noise_floor(self) -> dict | None:
        """Returns the measured run-to-run noise (pooled sd over repeated experiments, its degrees of
        freedom) and the smallest gain the active keep rule can tell from it, or None before any
        experiment was run twice."""
        from .keep_rules import keep_rule_for
        sigma, df = self.noise()
        if sigma is None:
            return None
        best = self.best()
        n_best = len(best["values"]) if best else 1
        rule = keep_rule_for(self.config)
        return {"sd": sigma, "df": df, "keep_rule": rule.name,
                "smallest_gain": rule.smallest_gain(self.config, sigma, df, n_best)}

    def _summarise(self, rows: list[dict]) -> dict:
        """Returns one experiment's outcome: mean metric over its usable runs, final status, reason."""
        from .results import measured
        values = measured(rows, self.config.metric)
        last = rows[-1]
        return {"experiment": _number(last), "commit": last["commit"], "runs": len(rows),
                "value": sum(values) / len(values) if values else None,
                "status": "crash" if not values else last["status"] if last["status"] != "crash" else "discard",
                "description": last["description"], "crash_reason": last.get("crash_reason", ""),
                "evidence": last.get("evidence", "")}

    def show(self, number: int, tail_lines: int = SHOW_TAIL_LINES) -> dict:
        """Returns experiment `number`'s row, its diff against its parent and the tail of its log."""
        sha = self.ledger.resolve(experiment_ref(self.config.tag, number))
        rows = [r for r in self.rows() if r.get("experiment") == str(number)]
        skipped = [asdict(s) for s in skipped_proposals(self.paths) if s.experiment == number]
        if sha is None and not rows and skipped:   # proposals numbered `number` that were not run
            return {"experiment": number, "commit": None, "parent": None, "row": None, "rows": [], "diff": "",
                    "log_path": "", "log_tail": [], "skipped": skipped}
        if sha is None and not rows:
            raise CampaignError(f"no experiment {number} in campaign {self.config.tag}: "
                                f"`autoresearch results` lists them (1..{self.next_experiment() - 1})")
        row = rows[-1] if rows else None
        parent_short = (row or {}).get("parent") or ""
        parent = self.ledger.resolve(parent_short) if parent_short else (self.ledger.parent(sha) if sha else None)
        if sha and parent and parent != sha:
            diff = self.ledger.diff(parent, sha, self.config.editable)
        elif sha:
            diff = ""  # a re-run of an unchanged commit
        else:
            diff = ""
        log_path = Path((row or {}).get("log") or self.paths.log_for(number))
        if not log_path.is_absolute():
            log_path = self.paths.root / log_path
        return {"experiment": number, "commit": sha, "parent": parent, "row": row, "rows": rows,
                "diff": diff, "log_path": str(log_path), "log_tail": _tail(log_path, tail_lines), "skipped": skipped}

    def request_stop(self) -> bool:
        """Asks the campaign's runner (in whatever process) to stop its running experiment."""
        if read_live(self.paths) is None and not self.paths.current.exists():
            return False
        self.paths.stop_request.touch()
        return True

    def stop_requested(self) -> bool:
        """Returns True while a stop asked for by `request_stop` (from any process) is pending."""
        return self.paths.stop_request.exists()

    def clear_stop_request(self) -> None:
        """Forgets a pending stop request (it was honoured, or it was for a runner that is gone)."""
        self.paths.stop_request.unlink(missing_ok=True)

    def current(self) -> dict | None:
        """Returns the in-flight experiment record, or None."""
        return read_json(self.paths.current)


def _number(row: dict) -> int | None:
    """Returns a row's experiment number, or None for a reference-format row."""
    text = row.get("experiment", "")
    return int(text) if text.isdigit() else None


def _place_template(root: Path, template: str | None, config: CampaignConfig) -> list[str]:
    """Copies a template into `root` when it has no train.py; returns the files added."""
    has_train = (root / config.editable[0]).exists()
    if has_train:
        if template:
            raise CampaignError(f"{root} already has {config.editable[0]}; --template is only for a folder "
                                f"without one (it would overwrite your script)")
        return []
    name = template or templates.DEFAULT
    source = templates.path_of(name)
    added = []
    for item in sorted(source.iterdir()):
        if item.name.startswith((".", "__")) or item.name == "data":
            continue
        target = root / item.name
        if target.exists():
            raise CampaignError(f"{target} exists: move it aside or init the template in an empty folder")
        shutil.copy2(item, target)
        added.append(item.name)
    config.template = name
    if not config.prepare_command:
        config.prepare_command = templates.prepare_command_of(name)
    return added


def _tail(path: Path, lines: int) -> list[str]:
    """Returns the last `lines` lines of a text file (progress rewrites split), or [] if missing."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    from .summary import LINE_BREAKS
    return [line for line in LINE_BREAKS.split(text) if line.strip()][-lines:]
