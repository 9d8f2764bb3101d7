"""`%%experiment`: the cell body becomes train.py (or, with --patch, a diff applied to it), the diff
against the best is shown, and the run starts in the background; the cell returns at once.

The cell becomes plain data for the job queue (its files, or its patch, applied by the core when
the run starts); the core builds the candidate and its diff and sends them to the panel with the
run's start (core/events.py).
"""
from __future__ import annotations

from IPython.core.error import UsageError

from ..core.candidate import unified_diff
from ..core.patch import apply_patch
from .commands import _wait, best_base, file_at


def run_cell(ctx, args, cell: str):
    """Queues the experiment the cell describes and shows its panel."""
    if not args.message.strip():
        raise UsageError('describe the hypothesis: %%experiment -m "wider MLP" (it becomes the commit message '
                         'and the results row)')
    session = ctx.session()
    session.refuse_if_other_runner()
    if args.prune is not None:  # saved: the engine prunes by the campaign's setting
        session.campaign.update_stop_rules(prune=args.prune)
    reader = session.reader
    editable = reader.config.editable[0]
    base_sha, label = best_base(reader)
    base_text = file_at(reader, base_sha, editable)
    files, patch = None, None
    if args.patch:
        new_text = apply_patch(base_text, cell, editable)  # fails now, in the cell, if it cannot apply
        patch = cell  # applied again when the run starts: a queued patch builds on whatever is best by then
    else:
        if not cell.strip():
            raise UsageError(f"the cell is empty: its body becomes {editable}. `%autoresearch edit` pre-fills "
                             f"a cell with the current {editable}.")
        new_text = cell if cell.endswith("\n") else cell + "\n"
        files = {editable: new_text}
    diff = unified_diff(base_text, new_text, editable, label)
    panel = ctx.new_panel(session, args.message)
    panel.show_diff(diff, f"diff against the best ({label})" if diff else
                    f"no change against the best ({label}): a re-run")
    job = ctx.submit(session, panel, lambda listener: session.queue.submit_experiment(
        args.message, files, patch=patch, seed=args.seed, listener=listener))
    if not ctx.use_widgets:
        print(diff_text(diff, label))
    ctx.show(panel, job)
    if args.wait:
        return _wait(ctx, session, None)
    return None


def diff_text(diff: str, label: str, max_lines: int = 40) -> str:
    """Returns the diff for a plain-text front end: whole when short, its size otherwise."""
    if not diff:
        return f"no change against the best ({label}): a re-run"
    lines = diff.splitlines()
    if len(lines) <= max_lines:
        return diff.rstrip("\n")
    added = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
    removed = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
    return f"diff against the best ({label}): +{added} -{removed} lines (`%autoresearch show N` prints it later)"
