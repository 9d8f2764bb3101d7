"""Checks of user input and of the campaign folder, each failing with one line that names the fix.

The same rules serve values typed on a command line (the message names the option) and values
read back from `.autoresearch/campaign.json` (the message names the field and the file), so a bad
value is refused where it enters and, if it was saved by hand or by an older version, where it is
read, never as a traceback deep inside a run.
"""
from __future__ import annotations

import logging
import math
import os
import re
from datetime import datetime
from pathlib import Path, PurePosixPath

from .errors import CampaignError
from .paths import LOGS_DIR, RESULTS_NAME, STATE_DIR

MAX_DURATION_S = 10 * 365 * 86400.0   # a deadline further away than this is a typo
log = logging.getLogger(__name__)

# Command-line option of each config field, for messages about values typed there.
OPTIONS = {"budget_s": "--budget", "timeout_s": "--timeout", "max_experiments": "--max-experiments",
           "deadline": "--deadline", "target": "--target", "keep_margin": "--keep-margin",
           "keep_rule": "--keep-rule", "direction": "--direction", "metric": "--metric", "command": "--command",
           "tag": "--tag", "template": "--template", "agent_timeout_s": "--agent-timeout",
           "prune": "--prune"}

TAG_RULE = ("a tag (the branch autoresearch/<tag>) uses ASCII letters, digits, '.', '_' and '-', starts with a "
            "letter or digit, has no '..' and does not end with '.' or '.lock'")
_TAG_ALLOWED = re.compile(r"[A-Za-z0-9._-]")


class FieldError(CampaignError):
    """A config value is not acceptable; `field` names it, the message says what is allowed."""

    def __init__(self, field: str, value, rule: str, example: str) -> None:
        self.field, self.value, self.rule, self.example = field, value, rule, example
        super().__init__(field_message(field, value, rule, example))


def field_message(field: str, value, rule: str, example: str, source: Path | None = None) -> str:
    """Returns the one-line refusal of `value` for `field`, typed as an option or read from `source`."""
    if source is not None:
        return (f"{source}: {field} is {value!r}, but {rule}. Fix that field in the file "
                f"(e.g. \"{field}\": {example}), or delete the file and run init again")
    option = OPTIONS.get(field)
    how = f"e.g. {option} {example}" if option else f"e.g. {example}"
    return f"invalid {option or field} {value!r}: {rule} ({how})"


# -- numbers and durations ---------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_seconds(field: str, value, example: str = "300") -> float:
    """Returns `value` as float seconds; raises FieldError unless it is a finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise FieldError(field, value, "it must be a finite number of seconds greater than 0", example)
    return float(value)


def finite_number(field: str, value, example: str, minimum: float | None = None) -> float:
    """Returns `value` as a float; raises FieldError unless it is finite (and >= `minimum`)."""
    if not _is_number(value) or not math.isfinite(value) or (minimum is not None and value < minimum):
        rule = "it must be a finite number" + (f" >= {minimum:g}" if minimum is not None else "")
        raise FieldError(field, value, rule, example)
    return float(value)


def whole_number(field: str, value, minimum: int, example: str) -> int:
    """Returns `value`; raises FieldError unless it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FieldError(field, value, f"it must be a whole number >= {minimum}", example)
    return value


def check_duration_s(text: str, seconds: float) -> float:
    """Returns `seconds` parsed from duration `text`; refuses a duration that is not finite, negative or
    beyond any campaign (0 is allowed: a deadline of now stops the campaign at its next check)."""
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_S:
        raise CampaignError(f"invalid duration {text!r}: give a finite time from now, at most "
                            f"{MAX_DURATION_S / 86400 / 365:g} years, e.g. --deadline 8h")
    return seconds


# -- the whole config --------------------------------------------------------------------------
def check_config(config, choices: dict[str, tuple]) -> None:
    """Raises FieldError for the first field of `config` whose type or value is not acceptable."""
    check_tag(config.tag)
    for name in ("direction", "keep_rule"):
        value = getattr(config, name)
        if value not in choices[name]:
            raise FieldError(name, value, f"it must be one of {', '.join(choices[name])}", choices[name][0])
    if not isinstance(config.metric, str) or not re.fullmatch(r"\w+", config.metric):
        raise FieldError("metric", config.metric, "it must be the key the script prints (letters, digits, _)",
                         "val_bpb")
    if not isinstance(config.command, str) or not config.command.strip():
        raise FieldError("command", config.command, "it must be a non-empty shell command", '"python train.py"')
    positive_seconds("budget_s", config.budget_s)
    if config.timeout_s is not None:
        positive_seconds("timeout_s", config.timeout_s, "660")
    if config.startup_timeout_s is not None:
        positive_seconds("startup_timeout_s", config.startup_timeout_s, "600")
    if not isinstance(config.prepare_command, str):
        raise FieldError("prepare_command", config.prepare_command, "it must be a shell command or \"\"",
                         '"python prepare.py"')
    if config.max_experiments is not None:
        whole_number("max_experiments", config.max_experiments, 1, "24")
    if config.deadline is not None:
        check_deadline(config.deadline)
    if config.target is not None:
        finite_number("target", config.target, "0.95")
    finite_number("keep_margin", config.keep_margin, "0.001", minimum=0)
    whole_number("repeats", config.repeats, 1, "3")
    whole_number("noise_runs", config.noise_runs, 2, "5")
    if not _is_number(config.confidence) or not 0.5 < config.confidence < 1:
        raise FieldError("confidence", config.confidence, "it must be a number between 0.5 and 1", "0.95")
    if not _is_number(config.log_cap_mb) or not math.isfinite(config.log_cap_mb) or config.log_cap_mb <= 0:
        raise FieldError("log_cap_mb", config.log_cap_mb, "it must be a finite number of MB greater than 0", "64")
    if not isinstance(config.prune, bool):
        raise FieldError("prune", config.prune, "it must be true or false", "true")
    if not _is_number(config.max_share_gap) or not 0 < config.max_share_gap <= 1:
        raise FieldError("max_share_gap", config.max_share_gap, "it must be a number above 0 and at most 1", "0.2")
    if not _is_number(config.fair_min_cpu_s) or not math.isfinite(config.fair_min_cpu_s) or config.fair_min_cpu_s < 0:
        raise FieldError("fair_min_cpu_s", config.fair_min_cpu_s, "it must be a finite number of seconds, 0 or more",
                         "5")
    check_editable(config.editable)
    for name in ("template", "created_at"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise FieldError(name, value, "it must be text", '"tinylm"' if name == "template" else '""')


def check_deadline(deadline) -> datetime:
    """Returns the deadline as an aware datetime; raises FieldError unless it is an ISO time with a zone."""
    try:
        when = datetime.fromisoformat(deadline) if isinstance(deadline, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise FieldError("deadline", deadline, "it must be an ISO-8601 time with its time zone",
                         '"2030-01-01T08:00:00+00:00"')
    return when


def check_editable(editable) -> None:
    """Raises FieldError unless `editable` is a non-empty list of relative paths inside the campaign
    that are not the tool's own files."""
    rule = (f"it must be a list of files inside the campaign folder, e.g. train.py (not absolute, no '..', "
            f"not {RESULTS_NAME}, {STATE_DIR}/, {LOGS_DIR}/ or .git/)")
    if not isinstance(editable, list) or not editable:
        raise FieldError("editable", editable, rule, '["train.py"]')
    for path in editable:
        parts = PurePosixPath(path).parts if isinstance(path, str) and path.strip() else ()
        if (not parts or path.startswith("/") or ".." in parts or "\\" in path
                or parts[0] in (STATE_DIR, LOGS_DIR, ".git") or path == RESULTS_NAME):
            raise FieldError("editable", editable, rule, '["train.py"]')


# -- tags --------------------------------------------------------------------------------------
def check_tag(tag) -> str:
    """Returns `tag` when `autoresearch/<tag>` is a valid git branch of one component; raises
    FieldError saying what is wrong and what is allowed."""
    problem = _tag_problem(tag)
    if problem:
        raise FieldError("tag", tag, f"{problem}; {TAG_RULE}", "nov22")
    return tag


def _tag_problem(tag) -> str:
    if not isinstance(tag, str) or not tag:
        return "it is empty"
    bad = next((c for c in tag if not _TAG_ALLOWED.fullmatch(c)), None)
    if bad is not None:
        return f"it contains {bad!r}"
    if not tag[0].isalnum():
        return f"it starts with {tag[0]!r}"
    if ".." in tag:
        return "it contains '..'"
    if tag.endswith(".lock"):
        return "it ends with '.lock'"
    if tag.endswith("."):
        return "it ends with '.'"
    return ""


# -- the campaign folder -----------------------------------------------------------------------
def check_init_folder(root: Path) -> None:
    """Refuses to make the home directory or a filesystem root a campaign (or a git repository)."""
    root = Path(root).resolve()
    if root == Path(root.anchor):
        raise CampaignError(f"refusing to start a campaign in the filesystem root {root}: init in a folder of "
                            f"its own, e.g. `autoresearch init ~/campaigns/nov22 --tag nov22`")
    if root == Path.home().resolve():
        raise CampaignError(f"refusing to start a campaign in your home directory {root} (it would become a git "
                            f"repository): init in a folder of its own, e.g. "
                            f"`autoresearch init ~/campaigns/nov22 --tag nov22`")


def check_enclosing_repository(root: Path, repo_top: Path) -> None:
    """Refuses a repository whose top level is the home directory or a filesystem root, and says which
    enclosing repository a campaign in a sub-folder uses."""
    root, repo_top = Path(root).resolve(), Path(repo_top).resolve()
    if repo_top == root:
        return
    if repo_top == Path.home().resolve() or repo_top == Path(repo_top.anchor):
        raise CampaignError(f"{root} is inside the git repository at {repo_top} (your home directory or the "
                            f"filesystem root); the campaign would commit there. Give it a repository of its own "
                            f"with `git init {root}` and run init again")
    log.warning("%s is inside the git repository at %s: the campaign commits to that repository, on its own "
                "branch. To keep it apart, run `git init %s` first.", root, repo_top, root)


def check_writable(root: Path, *extra: Path) -> None:
    """Raises CampaignError when the campaign folder (or one of its files that exist) cannot be written."""
    root = Path(root)
    for path in (root, root / STATE_DIR, root / RESULTS_NAME, root / LOGS_DIR, *extra):
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            raise CampaignError(f"{path} is read-only: experiments write results, logs and commits there. Make it "
                                f"writable (e.g. `chmod u+w {path}`), or copy the campaign to a writable folder")


def check_editable_present(root: Path, editable: list[str], branch: str) -> None:
    """Raises CampaignError when an editable file that the campaign runs is missing from the folder."""
    for path in editable[:1]:  # the script itself; other editable files may be optional
        if not (Path(root) / path).is_file():
            raise CampaignError(f"{Path(root) / path} is missing: restore it with `git checkout {branch} -- {path}` "
                                f"(or write a new one), then run again")


def check_runnable(campaign, files: dict | None = None) -> None:
    """Raises CampaignError when an experiment cannot run: a read-only folder, or a missing script that
    no new content replaces."""
    check_writable(campaign.paths.root)
    if not files:
        check_editable_present(campaign.paths.root, campaign.config.editable, campaign.config.branch)
