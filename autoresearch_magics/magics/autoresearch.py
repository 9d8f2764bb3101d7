"""The `%autoresearch` line magic and the `%%experiment` cell magic: parse, call the core, display.

Runs go to a background thread (one per campaign, core/background.py), so a cell that starts
one returns at once and the kernel stays usable.
"""
from __future__ import annotations

import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments
from traitlets import Bool, CaselessStrEnum, Integer

from ..core.campaign import Campaign
from ..core.status import INTERRUPTED
from ..core.errors import CampaignError, NotACampaign, QueueFull
from ..presentation.dashboard import POLLER
from ..presentation.panel import ExperimentPanel
from . import experiment as experiment_cell
from .commands import COMMANDS
from .parsing import ALL_VERBS, EXPERIMENT_ARGS, HelpShown, build_parser, parse_verb, split, verbs_help
from .session import Session, close_git


SHUTDOWN_GRACE_S = 2.0   # a closing kernel waits this long for stopped runs to be recorded (its
                         # manager kills it after 2.5 s by default)


def declare(declarations):
    """Returns a decorator adding `declarations` as magic arguments, in order (for the generated help)."""
    def decorate(func):
        for flags, options in reversed(declarations):
            func = argument(*flags, **options)(func)
        return func
    return decorate


@magics_class
class AutoresearchMagics(Magics):
    """Autoresearch campaigns in a notebook."""

    widgets = CaselessStrEnum(("auto", "on", "off"), default_value="auto", config=True,
                              help="show live ipywidgets panels: auto (in a kernel), on, or off (plain text)")
    max_queued = Integer(3, config=True,
                         help="experiments that may wait behind the running one; more are refused")
    dashboard_plot = Bool(True, config=True, help="include the ratchet plot in the dashboard")

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.sessions: dict[str, Session] = {}
        self.active: Session | None = None

    # -- the magics ----------------------------------------------------------------------------
    @magic_arguments()
    @kwds(epilog=verbs_help())
    @argument("verb", help=f"the sub-command: {', '.join(ALL_VERBS)}")
    @argument("options", nargs="*", help="the sub-command's options, below")
    @no_var_expand
    @line_magic
    def autoresearch(self, line=""):
        """Run an autoresearch campaign: experiments on train.py under a fixed budget, a git ratchet
        keeping what improves the metric, every attempt logged to results.tsv.

        `%autoresearch init --tag nov22 --budget 60` starts (or resumes) a campaign in the current
        folder; `%autoresearch run -m baseline` and `%%experiment -m "..."` cells run experiments in
        the background; `%autoresearch wait` blocks until they end; `df = %autoresearch results`.

        An experiment started while another runs is queued (its panel says how many are ahead), up
        to `%config AutoresearchMagics.max_queued` (3); beyond that the cell is refused. `%autoresearch
        stop` ends the running experiment (recorded as a crash) and cancels the queue.
        """
        try:
            verb, args = parse_verb(line)
        except HelpShown:
            return None
        args.verb = verb
        return self._call(COMMANDS[verb], args)

    @magic_arguments()
    @declare(EXPERIMENT_ARGS)
    @no_var_expand
    @cell_magic
    def experiment(self, line, cell):
        """Run the cell as train.py (or apply it as a diff with --patch) in the background.

        Shows the diff against the best train.py, commits it as the hypothesis and returns at once;
        the panel follows the run to its outcome (keep, discard or crash).
        """
        try:
            args = build_parser("%%experiment", "run the cell as train.py", EXPERIMENT_ARGS).parse_args(split(line))
        except HelpShown:
            return None
        return self._call(lambda ctx, parsed: experiment_cell.run_cell(ctx, parsed, cell), args)

    def _call(self, command, args):
        try:
            return command(self, args)
        except NotACampaign:
            raise UsageError("no campaign in or above this folder: start one with `%autoresearch init --tag TAG` "
                             "(an empty folder gets the tinylm template; a folder with train.py is attached)") from None
        except CampaignError as exc:
            raise UsageError(str(exc)) from None

    # -- used by the commands ------------------------------------------------------------------
    @property
    def use_widgets(self) -> bool:
        """Returns True when panels should be ipywidgets (in a kernel, unless configured off)."""
        if self.widgets != "auto":
            return self.widgets == "on"
        return getattr(self.shell, "kernel", None) is not None

    def attach(self, campaign: Campaign) -> Session:
        """Makes `campaign` the active one, reusing this kernel's session of that folder."""
        key = str(campaign.paths.root)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = Session(campaign, self.max_queued)
        else:
            session.adopt_config(campaign)
        self.active = session
        return session

    def session(self) -> Session:
        """Returns the active campaign's session (the one at or above the current folder if none)."""
        if self.active is None:
            self.attach(Campaign.open("."))
        return self.active

    def new_panel(self, session: Session, description: str, kind: str = "experiment") -> ExperimentPanel:
        """Returns a panel for a job of `session`."""
        config = session.campaign.config
        return ExperimentPanel(config.metric, config.budget_s, description, kind)

    def submit(self, session: Session, panel: ExperimentPanel, submit):
        """Submits a job with `panel` as its listener; a full queue is a UsageError naming the way out."""
        session.queue.max_queued = self.max_queued
        try:
            job = submit(panel)
        except QueueFull as full:
            raise UsageError(f"{full.queued} experiments already wait behind the running one: `%autoresearch wait` "
                             f"for them, or `%autoresearch stop` to end the run and cancel the queue "
                             f"(`%config AutoresearchMagics.max_queued = 10` allows a longer queue)") from None
        session.jobs.append((job, panel))
        return job

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stops this kernel's runs, waits up to `grace_s` for them to be recorded, and ends git helpers."""
        deadline = time.monotonic() + grace_s
        for session in self.sessions.values():
            session.queue.stop(reason=INTERRUPTED)   # the kernel goes away: the run is cut off, not stopped by hand
        for session in self.sessions.values():
            session.queue.wait(max(0.0, deadline - time.monotonic()))
            session.close()
        for board in POLLER.close():
            close_git(board.campaign)

    def show(self, panel: ExperimentPanel, job) -> None:
        """Displays the job's panel, or a line of text where widgets cannot show."""
        if self.use_widgets:
            panel.show()   # the widget and its static copy (what a notebook saved without widget state shows)
            return
        where = "starts now" if job.ahead == 0 else f"queued, {job.ahead} ahead"
        print(f"{job.kind} {job.description!r}: {where}. `%autoresearch wait` blocks until it ends; "
              f"`%autoresearch status` shows progress.")


def load_ipython_extension(ipython) -> None:
    """Registers %autoresearch and %%experiment, and makes their settings visible to %config."""
    magics = AutoresearchMagics(ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    _stop_runs_at_kernel_shutdown(ipython, magics)


def _stop_runs_at_kernel_shutdown(ipython, magics: AutoresearchMagics) -> None:
    """Makes a kernel shutdown or restart stop the runs first, so each is recorded and no training
    process outlives the kernel.

    It has to happen in the shutdown request itself: the kernel then waits for the children in its
    process group (git helpers among them) and is killed if they linger, before any atexit handler.
    """
    kernel = getattr(ipython, "kernel", None)
    if kernel is None or getattr(kernel, "_autoresearch_shutdown_hook", None) is not None:
        if kernel is not None:
            kernel._autoresearch_shutdown_hook = magics    # a reloaded extension: the newest magics
        return
    kernel._autoresearch_shutdown_hook = magics
    original = kernel.do_shutdown

    def do_shutdown(restart):
        try:
            kernel._autoresearch_shutdown_hook.shutdown()
        except Exception:  # the kernel must shut down whatever happened here
            kernel.log.exception("autoresearch: stopping the runs at shutdown failed")
        return original(restart)

    kernel.do_shutdown = do_shutdown
