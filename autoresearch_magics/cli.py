"""The `autoresearch` command: the same verbs as the magics, for a terminal."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .core.approval import decide_from_outside, terminal_prompt
from .core.campaign import Campaign
from .core.errors import CampaignError
from .core.events import CampaignListener
from .core.hardware import describe_hardware
from .core.loop import run_loop
from .core.notes import add_note
from .core.proposers import make_proposer
from .presentation.text import format_result, format_results, format_show, format_status
from .verbs import (PATH_VERBS, VERBS, add_arguments, approval_gate, executor_options, init_settings, proposer_options,
                    stop_rule_settings)


class _TerminalListener(CampaignListener):
    """Prints progress to the terminal (a rewritten line on a TTY, a line per update otherwise)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.tty = sys.stderr.isatty()

    def experiment_started(self, info):
        print(f"experiment {info['experiment']} [{info['commit']}] {info['description']!r}: running "
              f"(budget {info['budget_s']:g}s, log {info['log_path']})", file=sys.stderr, flush=True)

    def updated(self, snap):
        if not self.tty:
            return
        loss = f" loss {snap['loss']:.4f}" if snap.get("loss") is not None else ""
        print(f"\r  {100 * snap['training_fraction']:5.1f}% of budget{loss}, {snap['elapsed_s']:.0f}s elapsed, "
              f"rss {snap['rss_mb']:.0f} MB   ", end="", file=sys.stderr, flush=True)

    def experiment_finished(self, result):
        if self.tty:
            print(file=sys.stderr)
        print(format_result(result, self.metric), flush=True)

    def message(self, text):
        print(text, file=sys.stderr, flush=True)


def _open(args) -> Campaign:
    return Campaign.open(args.path)


def cmd_init(args):
    listener = _TerminalListener("")  # only its messages: the one-time preparation's output
    campaign = Campaign.init(args.path, listener=listener, **init_settings(args))
    recovered = campaign.recover()   # resuming: a runner that died is recorded now
    if recovered:
        print(recovered.text(), file=sys.stderr)
    print(format_status(campaign.status()))


def cmd_run(args):
    campaign = _open(args)
    if args.prune is not None:
        campaign.update_stop_rules(prune=args.prune)
    results = campaign.run(args.message, seed=args.seed, listener=_TerminalListener(campaign.config.metric),
                           stop_event=_interrupt_event())
    return 0 if results[-1].status != "crash" else 1


def cmd_loop(args):
    campaign = _open(args)
    executor = executor_options(args, campaign) or {}   # first: a cluster connects while the rest starts
    if stop_rule_settings(args):
        campaign.update_stop_rules(**stop_rule_settings(args))
    proposer = make_proposer(campaign, args.proposer, **proposer_options(args))
    stop_event = _interrupt_event()
    # on a terminal each proposal is shown and answered there; else by `autoresearch approve|skip` or the sidebar
    gate = approval_gate(args, campaign, stop_event, terminal_prompt if sys.stdin.isatty() else None)
    results = run_loop(campaign, proposer, args.max_proposals, listener=_TerminalListener(campaign.config.metric),
                       stop_event=stop_event, report_every=args.report_every, gate=gate, **executor)
    print(format_status(campaign.status()))
    return 1 if results.failed else 0   # a stop rule, the maximum or a stop ended it: 0


def cmd_status(args):
    status = _open(args).status()
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))


def cmd_results(args):
    campaign = _open(args)
    frame = campaign.frame()
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        print(format_results(frame, campaign.config.metric))


def cmd_show(args):
    print(format_show(_open(args).show(args.number, args.lines)))


def cmd_curves(args):
    from .presentation.plot import figure_png
    from .core.outputs import save_own_file
    from .presentation.curves_plot import curves_figure  # matplotlib loads on first use
    from .verbs import CURVES_NAME
    campaign = _open(args)
    if args.csv:
        frame = campaign.curves(args.numbers or None)
        sys.stdout.write(frame.to_csv(index=False))
        return 0
    figure, frame = curves_figure(campaign, args.numbers)
    shown = sorted({int(n) for n in frame["experiment"].dropna()})
    saved = save_own_file(campaign, args.save or CURVES_NAME, figure_png(figure))
    print(f"wrote {saved} (experiments {', '.join(map(str, shown)) or 'none: no curves yet'})")
    return 0


def cmd_stop(args):
    campaign = _open(args)
    print("stop requested" if campaign.request_stop() else "nothing is running")


def cmd_note(args):
    note = add_note(_open(args).paths, " ".join(args.text))
    print(f"noted ({note.date}): {note.text}")


def cmd_approve(args):
    record = decide_from_outside(_open(args).paths, "run")
    print(f"proposal #{record['experiment']} runs")


def cmd_skip(args):
    record = decide_from_outside(_open(args).paths, "skip", args.reason)
    print(f"proposal #{record['experiment']} skipped" + (f": {record['reason']}" if record["reason"] else ""))


def cmd_report(args):
    from .presentation.report import write_report
    hardware = None if args.no_hardware else describe_hardware(measure=False)
    summary = write_report(_open(args), args.out, hardware, notebook=args.html)
    print(f"wrote {summary}")
    if args.html:
        print(f"wrote {summary.parent / (Path(args.html).stem + '.html')}")


def cmd_hardware(args):
    print(json.dumps(describe_hardware(), indent=2))


COMMANDS = {"init": cmd_init, "run": cmd_run, "loop": cmd_loop, "status": cmd_status, "results": cmd_results,
            "show": cmd_show, "curves": cmd_curves, "stop": cmd_stop, "report": cmd_report, "hardware": cmd_hardware,
            "note": cmd_note, "approve": cmd_approve, "skip": cmd_skip}


def _interrupt_event() -> threading.Event:
    """Returns an event set by the first Ctrl-C (the run is stopped cleanly and recorded)."""
    event = threading.Event()

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        print("\nstopping the running experiment (Ctrl-C again to abort)", file=sys.stderr)
        event.set()

    signal.signal(signal.SIGINT, handler)
    return event


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of the `autoresearch` command."""
    parser = argparse.ArgumentParser(prog="autoresearch", description="Run autoresearch campaigns.")
    subs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (help_text, _) in VERBS.items():
        sub = subs.add_parser(verb, help=help_text, description=help_text)
        add_arguments(sub, verb)
        if verb in PATH_VERBS:
            sub.add_argument("-C", "--path", default=".", help="campaign folder (default: the current one)")
    return parser


def main(argv=None) -> int:
    """Runs the CLI; returns the exit code (2 for user errors)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args) or 0
    except CampaignError as exc:
        print(f"autoresearch {args.verb}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
