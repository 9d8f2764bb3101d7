"""One small function per `%autoresearch` sub-command; each takes the magics object and the parsed
arguments, calls the core, and displays or returns what it got."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from IPython.display import Image, display

from ..core.approval import decide_from_outside
from ..core.background import CANCELLED, FAILED
from ..core.campaign import Campaign
from ..core.errors import CampaignError
from ..core.events import CampaignListener
from ..core.hardware import describe_hardware
from ..core.live import read_live
from ..core.notes import add_note
from ..core.paths import CampaignPaths
from ..core.proposers import make_proposer
from ..presentation.dashboard import live_dashboard
from ..presentation.live_output import publish_all
from ..presentation.text import format_result, format_show, format_status
from ..verbs import approval_gate, executor_options, init_settings, proposer_options, stop_rule_settings
from .edit import experiment_cell, fallback_widget, prefill_blocker

STOP_WAIT_S = 15.0      # how long `stop` waits for the stopped run to be recorded
OTHER_POLL_S = 0.5      # `wait` on a run owned by another process polls its live file


class _Printed(CampaignListener):
    """Shows the messages of a step with no panel (init's one-time preparation) in the cell's output."""

    def message(self, text):
        print(text, flush=True)


def cmd_init(ctx, args):
    paths = CampaignPaths.of(args.path)
    existed = paths.config.is_file()
    had_script = (paths.root / "train.py").exists()
    campaign = Campaign.init(args.path, listener=_Printed(), **init_settings(args))
    recovered = campaign.recover() if existed else None   # resuming: a runner that died is recorded now
    ctx.attach(campaign)
    if existed:
        action = "resumed"
    elif had_script:
        action = "attached to the existing train.py in"
    else:
        action = f"created from the {campaign.config.template} template in"
    print(f"{action} campaign {campaign.config.tag}: {paths.root}")
    if recovered:
        print(recovered.text())
    status = campaign.status()
    print(format_status(status))
    if not status["runs"]:
        print('next: %autoresearch run -m baseline')


def cmd_run(ctx, args):
    session = ctx.session()
    session.refuse_if_other_runner()
    if args.prune is not None:
        session.campaign.update_stop_rules(prune=args.prune)
    reader = session.reader
    files = None
    if session.queue.busy and reader.ledger.changed_paths(reader.config.editable):
        # edits made while another experiment runs would be overwritten when it is reverted: take them now
        files = {p: (reader.paths.root / p).read_text() for p in reader.config.editable
                 if (reader.paths.root / p).exists()}
    panel = ctx.new_panel(session, args.message)
    job = ctx.submit(session, panel, lambda listener: session.queue.submit_experiment(
        args.message, files, seed=args.seed, listener=listener))
    ctx.show(panel, job)
    if args.wait:
        return _wait(ctx, session, None)


def cmd_loop(ctx, args):
    session = ctx.session()
    session.refuse_if_other_runner()
    # built on the worker's campaign object: a sweep proposer reads results while the loop runs
    proposer = make_proposer(session.campaign, args.proposer, **proposer_options(args))
    if stop_rule_settings(args):
        session.campaign.update_stop_rules(**stop_rule_settings(args))
    gate = approval_gate(args, session.campaign)   # waits on the worker thread; answered from this one
    panel = ctx.new_panel(session, proposer.name, kind="loop")
    parallel = executor_options(args, session.campaign) or {}
    job = ctx.submit(session, panel, lambda listener: session.queue.submit_loop(
        proposer, args.max_proposals, listener=listener, report_every=args.report_every, gate=gate, **parallel))
    if gate is not None:
        session.gate = gate
        panel.attach_gate(gate, lambda info: offer_proposal_cell(ctx, session, info, in_widget=True))
    ctx.show(panel, job)
    if args.wait:
        return _wait(ctx, session, None)


def cmd_status(ctx, args):
    session = ctx.session()
    if args.json:
        return session.reader.status()
    if args.text or not ctx.use_widgets:
        print(format_status(session.reader.status()))
        return None
    return cmd_panel(ctx, args)


def cmd_panel(ctx, args):
    session = ctx.session()
    if not ctx.use_widgets:
        print(format_status(session.reader.status()))
        return None
    # its own Campaign object: the poller thread reads results.tsv while the main thread may too
    board = live_dashboard(Campaign(session.campaign.paths, session.campaign.config), ctx.dashboard_plot)
    board.show()   # the widget and its static copy
    return None


def cmd_results(ctx, args):
    frame = ctx.session().reader.frame()
    if args.json:
        return json.loads(frame.to_json(orient="records", date_format="iso"))
    return frame


def cmd_show(ctx, args):
    print(format_show(ctx.session().reader.show(args.number, args.lines)))


def cmd_note(ctx, args):
    note = add_note(ctx.session().reader.paths, " ".join(args.text))
    print(f"noted ({note.date}): {note.text}")


def cmd_approve(ctx, args):
    session = ctx.session()
    waiting = session.gate.waiting if session.gate is not None else None
    if args.edit:
        if waiting is None:
            raise CampaignError("no proposal of this kernel's loop is waiting: nothing to edit")
        offer_proposal_cell(ctx, session, waiting)
        session.gate.decide("edit", experiment=waiting.experiment)
        return None
    _answer(session, waiting, "run", "")
    return None


def cmd_skip(ctx, args):
    session = ctx.session()
    _answer(session, session.gate.waiting if session.gate is not None else None, "skip", args.reason)


def _answer(session, waiting, choice: str, reason: str) -> None:
    """Answers the waiting proposal: this kernel's gate at once, else a loop of another process."""
    if waiting is not None and session.gate.decide(choice, reason, experiment=waiting.experiment):
        number = waiting.experiment
    else:
        number = decide_from_outside(session.reader.paths, choice, reason)["experiment"]
    print(f"proposal #{number} " + ("runs" if choice == "run" else "skipped" + (f": {reason}" if reason else "")))


def offer_proposal_cell(ctx, session, info, in_widget: bool = False):
    """Puts a waiting proposal into the next cell under %%experiment (or shows the cell to copy);
    `in_widget`: called from a button, where a cell cannot be pre-filled, so returns the widget to show."""
    editable = session.reader.config.editable[0]
    source = info.files.get(editable) or (session.reader.paths.root / editable).read_text()
    cell = experiment_cell(info.description, source)
    blocker = "this button" if in_widget else prefill_blocker(ctx.shell)
    if in_widget:
        return fallback_widget(cell, blocker, str(session.reader.paths.root / editable))
    if blocker:
        if ctx.use_widgets:
            display(fallback_widget(cell, blocker, str(session.reader.paths.root / editable)))
        else:
            print(f"{blocker} cannot pre-fill the next cell. Copy this into a new cell:\n")
            print(cell)
        return None
    ctx.shell.set_next_input(cell, replace=False)
    print(f"the next cell holds proposal #{info.experiment} under %%experiment: edit it and run it "
          f"(the loop ends, so it runs next)")
    return None


def cmd_stop(ctx, args):
    session = ctx.session()
    waiting = session.gate.waiting if session.gate is not None else None
    if waiting is not None and session.gate.decide("stop", "stopped with %autoresearch stop",
                                                   experiment=waiting.experiment):
        print(f"stopping the loop at proposal #{waiting.experiment} (not run)")
        job = session.queue.current
        if job is not None:
            job.done_event.wait(STOP_WAIT_S)
        return
    running, cancelled = session.queue.stop()
    if running is not None:
        what = "the loop" if running.kind == "loop" else f"experiment {running.description!r}"
        print(f"stopping {what}; it is recorded as a crash ('stopped by user')")
        if not running.done_event.wait(STOP_WAIT_S):
            print(f"still stopping after {STOP_WAIT_S:g}s; `%autoresearch wait` waits for it")
    elif session.reader.request_stop():
        print("asked the process running this campaign's experiment to stop it")
    else:
        print("nothing is running")
    if cancelled:
        print(f"cancelled {len(cancelled)} queued: " + ", ".join(repr(job.description) for job in cancelled))


def cmd_hardware(ctx, args):
    return describe_hardware()


def cmd_report(ctx, args):
    from ..presentation.report import write_report
    hardware = None if args.no_hardware else describe_hardware(measure=False)
    summary = write_report(ctx.session().reader, args.out, hardware, notebook=args.html)
    print(f"wrote {summary}")
    if args.html:
        print(f"wrote {summary.parent / (Path(args.html).stem + '.html')} (the notebook as last saved)")


def cmd_plot(ctx, args):
    from ..core.outputs import save_own_file
    from ..presentation.plot import figure_png, plot_progress  # matplotlib loads on first use
    reader = ctx.session().reader
    figure = plot_progress(reader.frame(), reader.config.metric, reader.config.direction,
                           title=None)
    png = figure_png(figure)
    if args.save:
        print(f"saved {save_own_file(reader, args.save, png)}")   # never over a file you track or made
    display(Image(data=png, format="png"))


def cmd_curves(ctx, args):
    from ..presentation.plot import figure_png  # matplotlib loads on first use
    from ..core.outputs import save_own_file
    from ..presentation.curves_plot import curves_figure  # matplotlib loads on first use
    reader = ctx.session().reader
    if args.csv:
        print(reader.curves(args.numbers or None).to_csv(index=False), end="")
        return None
    figure, _ = curves_figure(reader, args.numbers)
    png = figure_png(figure)
    if args.save:
        print(f"saved {save_own_file(reader, args.save, png)}")
    display(Image(data=png, format="png"))
    return None


def cmd_wait(ctx, args):
    return _wait(ctx, ctx.session(), args.timeout)


def cmd_edit(ctx, args):
    session = ctx.session()
    reader = session.reader
    editable = reader.config.editable[0]
    if session.queue.busy or read_live(reader.paths):
        # the working copy holds the running candidate, which may be reverted: start from the best
        sha, label = best_base(reader)
        source, origin = file_at(reader, sha, editable), f"as at the best ({label})"
    else:
        source, origin = (reader.paths.root / editable).read_text(), "as it is now"
    cell = experiment_cell(args.message, source)
    blocker = prefill_blocker(ctx.shell)
    if args.print_only or blocker:
        if ctx.use_widgets:
            display(fallback_widget(cell, blocker, str(reader.paths.root / editable)))
        else:
            print(f"{blocker + ' cannot pre-fill the next cell. ' if blocker else ''}Copy this into a new cell:\n")
            print(cell)
        return None
    ctx.shell.set_next_input(cell, replace=False)
    print(f"the next cell holds {editable} {origin} under %%experiment: edit it, put the hypothesis in -m, run it")
    return None


COMMANDS = {"init": cmd_init, "run": cmd_run, "loop": cmd_loop, "status": cmd_status, "results": cmd_results,
            "show": cmd_show, "stop": cmd_stop, "report": cmd_report, "hardware": cmd_hardware, "edit": cmd_edit, "wait": cmd_wait,
            "plot": cmd_plot, "panel": cmd_panel, "curves": cmd_curves, "note": cmd_note, "approve": cmd_approve,
            "skip": cmd_skip}


# -- shared helpers --------------------------------------------------------------------------------
def best_base(reader) -> tuple[str, str]:
    """Returns (commit, label) of the best result so far, or of the branch tip before any result."""
    best = reader.best()
    if best:
        sha = reader.ledger.resolve(best["commit"])
        if sha:
            return sha, f"#{best.get('experiment') or '?'} {best['commit']}"
    tip = reader.ledger.tip()
    return tip, f"{tip[:7]}, no result yet"


def file_at(campaign, ref: str, path: str) -> str:
    """Returns `path` as committed at `ref`, ending with a newline."""
    text = campaign.ledger.read_file(ref, path)
    return text if text.endswith("\n") else text + "\n"


def _wait(ctx, session, timeout: float | None):
    """Blocks until this kernel's jobs end (or a run owned by another process), then reports them."""
    job_queue = session.queue
    try:
        if not job_queue.busy:
            live = read_live(session.reader.paths)
            if live and live.get("runner_pid") != os.getpid():
                print(f"waiting for experiment #{live['experiment']}, run by process {live['runner_pid']}")
                deadline = None if timeout is None else time.monotonic() + timeout
                while read_live(session.reader.paths) and (deadline is None or time.monotonic() < deadline):
                    time.sleep(OTHER_POLL_S)
                latest = session.reader.status()["latest"]
                if latest:
                    print(f"latest: #{latest['experiment']} {latest['description']!r} {latest['status']}")
                publish_all()
                return None
        finished = job_queue.wait(timeout)
    except KeyboardInterrupt:
        print("stopped waiting; the experiments go on (`%autoresearch stop` ends them)")
        return None
    _report(session)
    publish_all()   # final states into the panels' static copies (nbclient: across cells; JupyterLab: this cell's)
    if not finished:
        print(f"still running after {timeout:g}s (the run goes on; `%autoresearch wait` again to wait longer)")
    return None


def _report(session) -> None:
    """Prints one line per result of every job that ended and was not reported yet."""
    metric = session.campaign.config.metric
    reported = False
    for job, _ in session.jobs:
        if not job.finished or job.id in session.reported:
            continue
        session.reported.add(job.id)
        reported = True
        if job.state == CANCELLED:
            print(f"cancelled: {job.description!r}")
        for result in job.results:
            print(format_result(result, metric))
        if job.state == FAILED:
            error = job.error
            text = str(error) if isinstance(error, CampaignError) else job.error_trace
            print(f"{job.kind} {job.description!r} failed: {text}", file=sys.stderr)
    if not reported:
        print("nothing is running")
