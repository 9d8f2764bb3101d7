"""The verbs shared by the CLI and the magics, declared once: each verb's help and arguments.

Both front ends build their argparse parsers from this table, so `autoresearch run --help`
and `%autoresearch?` show the same text.
"""
from __future__ import annotations

import argparse

from .core.agent import DEFAULT_AGENT_TIMEOUT_S
from .core.agent_recipes import RECIPES, agent_command
from .core.approval import DEFAULT_TIMEOUT_ACTION, TIMEOUT_ACTIONS
from .core.campaign import SHOW_TAIL_LINES
from .core.config import (DEFAULT_BUDGET_S, DEFAULT_COMMAND, DEFAULT_METRIC, DIRECTIONS, KEEP_RULES,
                          STARTUP_ALLOWANCE_S, CampaignConfig)
from .core.executors import EXECUTORS
from .core.loop import REPORT_EVERY
from .core.paths import CURVES_NAME, PLOT_NAME, SUMMARY_NAME

from .core.proposers import PROPOSERS
from .core.templates import DEFAULT as DEFAULT_TEMPLATE, names as template_names

_DEFAULT_RULE = CampaignConfig.__dataclass_fields__["keep_rule"].default
_RULES_TEXT = ", ".join(f"{r} (default)" if r == _DEFAULT_RULE else r for r in KEEP_RULES)


def _arg(*flags, **kwargs):
    return flags, kwargs


_STOP_RULES = [
    _arg("--max-experiments", type=int, help="stop rule: attempts in the whole campaign, crashes included"),
    _arg("--deadline", help="stop rule: a duration from now (8h, 45m, 1h30m); saved as an absolute time"),
    _arg("--target", type=float, help="stop rule: stop once the best metric reaches this value"),
]

_PRUNE = [
    _arg("--prune", action=argparse.BooleanOptionalAction, default=None,
         help="stop a run early when its loss curve is hopelessly behind the best's at the same training time "
              "(saved in the campaign; --no-prune turns it off)"),
]

VERBS: dict[str, tuple[str, list]] = {
    "init": (f"create a campaign (an empty folder gets the {DEFAULT_TEMPLATE} template), attach a checkout, or resume", [
        _arg("path", nargs="?", default=".", help="campaign folder (default: the current one)"),
        _arg("--tag", help="campaign name; its branch is autoresearch/<tag>, e.g. nov22"),
        _arg("--budget", dest="budget_s", type=float, help=f"training-time budget per experiment, seconds (default {DEFAULT_BUDGET_S:g})"),
        _arg("--metric", help=f"summary key to optimise (default {DEFAULT_METRIC})"),
        _arg("--direction", choices=DIRECTIONS, help="min: lower is better (default); max: higher is better"),
        _arg("--command", help=f'training command, run in the campaign folder (default "{DEFAULT_COMMAND}")'),
        _arg("--timeout", dest="timeout_s", type=float,
             help=f"hard kill per experiment, seconds (default 2 x budget + {STARTUP_ALLOWANCE_S:g})"),
        _arg("--prepare-command", dest="prepare_command",
             help='one-time preparation init runs before the first experiment, e.g. "python prepare.py" '
                  '(a template declares its own)'),
        _arg("--startup-timeout", dest="startup_timeout_s", type=float,
             help="seconds a run may take before its first progress line (default: the timeout); the timeout "
                  "then counts from that line"),
        _arg("--template", help=f"template for a folder without train.py: {', '.join(template_names())} (default {DEFAULT_TEMPLATE})"),
        _arg("--keep-rule", choices=KEEP_RULES, help=f"which results are kept: {_RULES_TEXT}"),
        _arg("--keep-margin", type=float, help="margin rule: the improvement a keep needs"),
        *_STOP_RULES,
    ]),
    "run": ("commit the current train.py as a hypothesis, run it, keep or revert, log a row", [
        _arg("-m", "--message", dest="message", default="", help="one-line hypothesis (the commit message)"),
        _arg("--seed", type=int, help="seed handed to the script (AUTORESEARCH_SEED)"),
        *_PRUNE,
    ]),
    "loop": ("run experiments until a stop rule holds, proposing each one by itself", [
        _arg("--proposer", choices=PROPOSERS, default="rerun",
             help="rerun: the working copy as it is; sweep: tune constants (--space); agent: a coding agent (--agent-cmd)"),
        _arg("--agent-cmd", help=f"command of a coding agent, or a recipe name ({', '.join(RECIPES)}); "
                                 f"its prompt is in $AUTORESEARCH_PROMPT_FILE and on stdin"),
        _arg("--agent-timeout", dest="agent_timeout_s", type=float, help=f"seconds the agent may take (default {DEFAULT_AGENT_TIMEOUT_S:g})"),
        _arg("--space", help='sweep space, e.g. "LR=loguniform(1e-4,1e-2) DEPTH=int(2,8) ACT=choice(\'relu\',\'gelu\')"'),
        _arg("--sampler", choices=("tpe", "random"), default="tpe", help="sweep sampler (default tpe)"),
        _arg("--keep-rule", choices=KEEP_RULES, help=f"change the campaign's keep rule: {', '.join(KEEP_RULES)}"),
        _arg("--max", dest="max_proposals", type=int, help="proposals to run in this loop (repeats of one count once)"),
        _arg("--report-every", type=int, default=REPORT_EVERY, help="experiments between progress reports"),
        _arg("-m", "--message", dest="message", help="description of each re-run (rerun proposer)"),
        _arg("--executor", choices=EXECUTORS,
             help="run batches of experiments at once: local (this machine), ray or slurm; see --parallel"),
        _arg("--parallel", type=int,
             help="experiments per batch (default: what the executor holds; 1 without --executor)"),
        _arg("--address", help="ray: the head's HOST:PORT, or auto (default: RAY_ADDRESS, else a new local cluster)"),
        _arg("--gpus-per-experiment", type=int, default=0,
             help="whole GPUs each experiment gets (0: CUDA_VISIBLE_DEVICES is empty)"),
        _arg("--partition", help="slurm: the partition to submit to"),
        *_PRUNE,
        _arg("--approve", action="store_true",
             help="show each proposal (description, diff) and wait for run, edit, skip or stop before it runs"),
        _arg("--approve-timeout", dest="approve_timeout_s", type=float,
             help="seconds a proposal waits for an answer (default: for ever); then --approve-default applies"),
        _arg("--approve-default", choices=TIMEOUT_ACTIONS, default=DEFAULT_TIMEOUT_ACTION,
             help=f"what an unanswered proposal becomes after --approve-timeout (default {DEFAULT_TIMEOUT_ACTION})"),
        *_STOP_RULES,
    ]),
    "note": ("add a dated steering note to the campaign's journal; the agent's prompt includes the latest", [
        _arg("text", nargs="+", help='the note, e.g. "try a smaller learning rate before a wider model"'),
    ]),
    "approve": ("run the proposal an approve-mode loop (--approve) waits on", []),
    "skip": ("skip the proposal an approve-mode loop waits on; the reason reaches the agent's next prompt", [
        _arg("-m", "--message", dest="reason", default="", help="why it is skipped"),
    ]),
    "status": ("objective, stop-rule progress, branch, best and latest result", [
        _arg("--json", action="store_true", help="print JSON (includes workdir)"),
    ]),
    "results": ("the results table", [
        _arg("--json", action="store_true", help="print JSON records"),
    ]),
    "show": ("one experiment: its diff against its parent and the tail of its log", [
        _arg("number", type=int, help="experiment number"),
        _arg("--lines", type=int, default=SHOW_TAIL_LINES, help="log lines to show"),
    ]),
    "curves": ("overlay learning curves by training time, the best highlighted (default: the best and the latest)", [
        _arg("numbers", nargs="*", type=int, metavar="N", help="experiments to show"),
        _arg("--csv", action="store_true", help="print the curves as CSV (one row per point) instead"),
        _arg("--save", nargs="?", const=CURVES_NAME,
             help=f"also save the figure (default {CURVES_NAME} in the campaign folder)"),
    ]),
    "stop": ("stop the running experiment (in whatever process runs it)", []),
    "report": (f"write {SUMMARY_NAME} and {PLOT_NAME} (the shareable campaign report)", [
        _arg("--out", help="folder for the report (default: the campaign folder)"),
        _arg("--no-hardware", action="store_true", help="leave the platform probe out (faster)"),
        _arg("--html", metavar="NOTEBOOK",
             help="also export this saved notebook to HTML beside the report, live widgets as their final state"),
    ]),
    "hardware": ("what training runs on, as JSON", []),
}

# Verbs that act on an existing campaign: the CLI gives them -C/--path.
PATH_VERBS = tuple(name for name in VERBS if name not in ("init", "hardware"))


def add_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """Adds the arguments of `verb` to `parser`."""
    for flags, kwargs in VERBS[verb][1]:
        parser.add_argument(*flags, **kwargs)


def init_settings(args: argparse.Namespace) -> dict:
    """Returns the Campaign.init keyword arguments given on the command line."""
    keys = ("tag", "budget_s", "metric", "direction", "command", "timeout_s", "startup_timeout_s", "prepare_command",
            "template", "keep_rule",
            "keep_margin", "max_experiments", "deadline", "target")
    return {k: getattr(args, k, None) for k in keys if getattr(args, k, None) is not None}


def executor_options(args: argparse.Namespace, campaign) -> dict | None:
    """Returns run_loop's executor keywords, or None for the one-at-a-time loop."""
    kind = getattr(args, "executor", None)
    if kind is None and (getattr(args, "parallel", None) or 1) <= 1:
        return None
    from .core.executors import make_executor
    executor = make_executor(kind or "local", address=args.address, gpus_per_experiment=args.gpus_per_experiment,
                             partition=args.partition, folder=campaign.paths.state / "slurm")
    executor.open_soon(args.parallel)   # connecting overlaps the rest of the start-up
    return {"executor": executor, "parallel": args.parallel}


def stop_rule_settings(args: argparse.Namespace) -> dict:
    """Returns the stop-rule and keep-rule settings given on the command line."""
    keys = ("max_experiments", "deadline", "target", "keep_rule", "prune")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def proposer_options(args: argparse.Namespace) -> dict:
    """Returns make_proposer's keyword arguments from parsed loop arguments."""
    return {"agent_cmd": agent_command(args.agent_cmd) if args.agent_cmd else None, "agent_timeout_s": args.agent_timeout_s, "space": args.space,
            "sampler": args.sampler, "message": args.message}


def approval_gate(args: argparse.Namespace, campaign, stop_event=None, front_end=None):
    """Returns the ApprovalGate `loop --approve` asks for, or None without --approve."""
    if not getattr(args, "approve", False):
        if getattr(args, "approve_timeout_s", None) is not None:
            from .core.errors import CampaignError
            raise CampaignError("--approve-timeout applies to approve mode: add --approve")
        return None
    from .core.approval import ApprovalGate
    return ApprovalGate(campaign.paths, timeout_s=args.approve_timeout_s, on_timeout=args.approve_default,
                        stop_event=stop_event, front_end=front_end)
