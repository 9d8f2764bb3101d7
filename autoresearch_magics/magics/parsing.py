"""The magics' command line: the shared verb table plus the notebook-only verbs and options.

Every verb's help comes from one declaration; `%autoresearch?` shows all of them. Bad input
raises UsageError (never SystemExit, which argparse would otherwise use), naming what is valid.
"""
from __future__ import annotations

import argparse
import shlex

from IPython.core.error import UsageError

from ..core.paths import PLOT_NAME
from ..verbs import VERBS


def arg(*flags, **kwargs):
    """Returns one argument declaration, in the form verbs.VERBS uses."""
    return flags, kwargs


WAIT = arg("--wait", action="store_true", help="block until it ends, as `%%autoresearch wait` does")

# Verbs that only make sense in a notebook.
MAGIC_VERBS: dict[str, tuple[str, list]] = {
    "edit": ("pre-fill the next cell with %%experiment and the current train.py (to edit and run)", [
        arg("-m", "--message", dest="message", default="", help="hypothesis to pre-fill"),
        arg("--print", dest="print_only", action="store_true",
            help="show the cell text to copy instead of pre-filling (the default in VS Code and Colab)"),
    ]),
    "wait": ("block until this kernel's running and queued experiments end", [
        arg("--timeout", type=float, help="stop waiting after this many seconds (the runs go on)"),
    ]),
    "plot": ("plot the campaign: every experiment, kept ones labelled, the running best, crashes", [
        arg("--save", nargs="?", const=PLOT_NAME,
            help=f"also save the figure (default {PLOT_NAME} in the campaign folder)"),
    ]),
    "panel": ("the live dashboard: best so far, stop-rule progress, the running experiment, results", []),
}

# Notebook-only options of the shared verbs.
MAGIC_OPTIONS: dict[str, list] = {
    "run": [WAIT],
    "loop": [WAIT],
    "status": [arg("--text", action="store_true", help="plain text instead of the live dashboard")],
    "approve": [arg("--edit", action="store_true",
                    help="instead of running it, put the proposal into the next cell under %%experiment to edit "
                         "(the loop ends, so that cell runs next)")],
}

ALL_VERBS: dict[str, tuple[str, list]] = {
    verb: (help_text, [*args, *MAGIC_OPTIONS.get(verb, [])])
    for verb, (help_text, args) in {**VERBS, **MAGIC_VERBS}.items()
}

# %%experiment: the run verb's arguments plus the cell's own.
EXPERIMENT_ARGS = [
    *VERBS["run"][1],
    arg("--patch", action="store_true",
        help="the cell is a unified diff against the best train.py (applied when the run starts), not the file"),
    WAIT,
]


class HelpShown(Exception):
    """`--help` was asked for and printed; nothing else to do."""


class VerbParser(argparse.ArgumentParser):
    """An argument parser that raises UsageError instead of exiting the kernel."""

    def __init__(self, prog: str, description: str = "", add_help: bool = True) -> None:
        super().__init__(prog=prog, description=description, add_help=add_help,
                         formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}\n"
                         f"(`{self.prog} --help` explains every option)")

    def exit(self, status=0, message=None):
        if status:
            raise UsageError(message or f"{self.prog}: invalid arguments")
        raise HelpShown()


def build_parser(prog: str, description: str, declarations: list) -> VerbParser:
    """Returns a parser for `declarations`."""
    parser = VerbParser(prog, description)
    for flags, kwargs in declarations:
        parser.add_argument(*flags, **kwargs)
    return parser


def verb_parser(verb: str) -> VerbParser:
    """Returns the parser of `%autoresearch <verb>`."""
    help_text, declarations = ALL_VERBS[verb]
    return build_parser(f"%autoresearch {verb}", help_text, declarations)


def split(line: str) -> list[str]:
    """Returns the words of a magic line, honouring shell-style quotes ("wider MLP", 'it''s')."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot read {line.strip()!r}: {exc}. Quote the message with the other kind of quote, "
                         f"e.g. -m \"don't decay\"") from None


def parse_verb(line: str) -> tuple[str, argparse.Namespace]:
    """Returns (verb, its parsed arguments); raises UsageError naming the valid verbs or options."""
    words = split(line)
    if not words:
        raise UsageError(f"give a sub-command: {', '.join(ALL_VERBS)}. `%autoresearch?` shows them all.")
    verb, rest = words[0], words[1:]
    if verb not in ALL_VERBS:
        raise UsageError(f"unknown sub-command {verb!r}: use one of {', '.join(ALL_VERBS)} "
                         f"(`%autoresearch?` shows each one's options)")
    return verb, verb_parser(verb).parse_args(rest)


def verbs_help() -> str:
    """Returns every sub-command's usage and options, for `%autoresearch?`."""
    parts = ["sub-commands:\n"]
    for verb in ALL_VERBS:
        parts.append(verb_parser(verb).format_help())
    return "\n".join(parts)
