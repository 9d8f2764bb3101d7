"""Memory of what was tried: is a proposal a repeat of an earlier experiment of the campaign?

Every experiment's commit stays reachable through `refs/autoresearch/<tag>/<N>`. A proposal's
editable files (the working copy with the proposal's files written over it, as they would be
committed) are compared with each earlier experiment's:

- identical: the same bytes. The loop does not run it again unless the user approves a repeat.
- cosmetic: the same program; only whitespace, comments or docstrings differ (the Python files'
  syntax trees, without docstrings and positions, are equal; other files equal once whitespace
  runs are collapsed).
- same-values: the same code, and every module-level constant the proposal changes is set to the
  value an earlier experiment already ran with.

The last two are flagged, not blocked. What is known about a commit's files (digests of the
text, of the normalised program and of the program with constant values masked, plus the
constants) is cached per commit sha for the life of the process, so checking a campaign of
hundreds of experiments reads git once per experiment, not once per proposal.
"""
from __future__ import annotations

import ast
import hashlib
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from .script_constants import read_constants
from .results import measured

KINDS = ("identical", "cosmetic", "same-values")   # most to least alike
CACHE_SIZE = 8192                                    # commits whose facts stay in memory
_MISSING = "\0missing"


@dataclass(frozen=True)
class Similarity:
    """How a proposal relates to what was tried: `kind` is one of KINDS, or None when it is new."""

    kind: str | None
    experiment: int | None = None
    verdict: str | None = None
    message: str = ""
    value: float | None = None
    others: tuple[int, ...] = ()

    @property
    def is_repeat(self) -> bool:
        """Returns True when the proposal's files are byte for byte an earlier experiment's."""
        return self.kind == "identical"

    def as_dict(self) -> dict:
        """Returns the similarity as JSON-ready data (for live.json and the panels)."""
        data = asdict(self)
        data["others"] = list(self.others)
        return data


NEW = Similarity(None, message="not tried before")


@dataclass(frozen=True)
class FileFacts:
    """What comparisons need to know about one version of the editable files."""

    digest: str                 # the exact text
    program: str | None         # the normalised program; None when a Python file does not parse
    skeleton: str | None        # the normalised program with module-level constant values masked
    constants: dict             # {(path, NAME): value} of module-level literal constants


def content_digest(files: dict[str, str | None]) -> str:
    """Returns a digest identifying the exact content of `files` (path -> text, None = absent)."""
    h = hashlib.sha1()
    for path in sorted(files):
        text = files[path]
        h.update(path.encode() + b"\0" + (_MISSING if text is None else text).encode("utf-8", "replace") + b"\0")
    return h.hexdigest()


def file_facts(files: dict[str, str | None]) -> FileFacts:
    """Returns the facts of one version of the editable files."""
    program, skeleton = hashlib.sha1(), hashlib.sha1()
    constants: dict = {}
    parsed = True
    for path in sorted(files):
        text = files[path]
        if text is None:
            normal = masked = _MISSING
        elif path.endswith(".py"):
            normal, masked, found = _python_forms(text)
            if normal is None:
                parsed = False
                continue
            constants.update({(path, name): value for name, value in found.items()})
        else:
            normal = masked = " ".join(text.split())
        program.update(path.encode() + b"\0" + normal.encode("utf-8", "replace") + b"\0")
        skeleton.update(path.encode() + b"\0" + masked.encode("utf-8", "replace") + b"\0")
    return FileFacts(digest=content_digest(files), program=program.hexdigest() if parsed else None,
                     skeleton=skeleton.hexdigest() if parsed else None, constants=constants)


def _python_forms(source: str) -> tuple[str | None, str | None, dict]:
    """Returns (normalised program, program with constant values masked, constants) of a Python file."""
    try:
        tree = ast.parse(source)
        constants = read_constants(source)
    except (SyntaxError, ValueError):
        return None, None, {}
    _drop_docstrings(tree)
    masked_values = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in constants):
            masked_values.append(ast.dump(node.value))
            node.value = ast.Constant(value="<constant>")
    skeleton = ast.dump(tree)  # positions are attributes, not fields: formatting and comments leave no trace
    return skeleton + "\0" + "\0".join(masked_values), skeleton, constants


def _drop_docstrings(tree: ast.Module) -> None:
    """Removes docstrings: they document, they do not change what the script computes. Walks
    statements only (docstrings are statements), which is far cheaper than visiting every node."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = body[1:] or [ast.Pass()]
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                stack.extend(child for child in children if isinstance(child, ast.AST))


class _FactsCache:
    """Facts per (repository, commit, editable files), bounded, shared by every campaign object."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            facts = self._items.get(key)
            if facts is not None:
                self._items.move_to_end(key)
            return facts

    def put(self, key, facts: FileFacts) -> None:
        with self._lock:
            self._items[key] = facts
            if len(self._items) > self.size:
                self._items.popitem(last=False)


_CACHE = _FactsCache(CACHE_SIZE)


class TriedMemory:
    """Compares proposals with every earlier experiment (and skipped proposal) of one campaign."""

    def __init__(self, campaign) -> None:
        self.campaign = campaign
        self.editable = tuple(campaign.config.editable)
        self._repo_key = str(campaign.ledger.repo.git_dir)

    # -- facts ------------------------------------------------------------------------------------
    def facts_at(self, sha: str) -> FileFacts:
        """Returns the facts of the editable files at commit `sha` (cached)."""
        key = (self._repo_key, sha, self.editable)
        facts = _CACHE.get(key)
        if facts is None:
            facts = file_facts(self.campaign.ledger.files_at(sha, list(self.editable)))
            _CACHE.put(key, facts)
        return facts

    def working_files(self) -> dict[str, str | None]:
        """Returns the editable files as they are in the campaign folder now."""
        root = self.campaign.paths.root
        return {path: ((root / path).read_text(errors="replace") if (root / path).is_file() else None)
                for path in self.editable}

    def candidate_files(self, proposal_files: dict[str, str] | None) -> dict[str, str | None]:
        """Returns the editable files a proposal would commit: the working copy with its files written over."""
        return {**self.working_files(), **(proposal_files or {})}

    # -- the check --------------------------------------------------------------------------------
    def check(self, proposal_files: dict[str, str] | None, base: dict[str, str | None] | None = None) -> Similarity:
        """Returns how the proposal compares with what was tried (NEW when it is new).

        `base` is what the proposal changes (default: the working copy); the constants it changes
        are read against it.
        """
        base = self.working_files() if base is None else base
        candidate = {**base, **(proposal_files or {})}
        mine, before = file_facts(candidate), file_facts(base)
        changed = {k: v for k, v in mine.constants.items() if before.constants.get(k, _MISSING) != v}
        refs = self.campaign.ledger.experiment_refs(self.campaign.config.tag)
        identical, cosmetic, same_values = [], [], []
        for number in sorted(refs, reverse=True):  # the most recent first
            facts = self.facts_at(refs[number])
            if facts.digest == mine.digest:
                identical.append(number)
            elif mine.program is not None and facts.program == mine.program:
                cosmetic.append(number)
            elif (changed and mine.skeleton is not None and facts.skeleton == mine.skeleton
                  and all(facts.constants.get(k, _MISSING) == v for k, v in changed.items())):
                same_values.append(number)
        if identical:
            return self._similarity("identical", identical, "repeat of")
        if cosmetic:
            return self._similarity("cosmetic", cosmetic, "differs only in whitespace, comments or docstrings from")
        if same_values:
            ordered = self._introducers_first(same_values, refs, changed)
            return self._similarity("same-values", ordered, f"{_values_text(changed, self.editable)} already tried in")
        return self._check_skipped(mine.digest)

    def _introducers_first(self, numbers: list[int], refs: dict[int, str], changed: dict) -> list[int]:
        """Orders matches so experiments that themselves set those values (not inherited them) come first."""
        def introduced(number: int) -> bool:
            parent = self.campaign.ledger.parent(refs[number])
            if parent is None:
                return True
            before = self.facts_at(parent).constants
            return any(before.get(k, _MISSING) != v for k, v in changed.items())
        first = [n for n in numbers if introduced(n)]
        return first + [n for n in numbers if n not in first]

    def _similarity(self, kind: str, numbers: list[int], phrase: str) -> Similarity:
        number, others = numbers[0], tuple(numbers[1:])
        verdict, value, description = self._outcome(number)
        shown = f"{verdict}" + (f", {self.campaign.config.metric} {value:.6f}" if value is not None else "")
        message = f"{phrase} experiment {number} ({shown})" + (f": {description}" if description else "")
        if others:
            message += f"; also {', '.join(str(n) for n in others[:5])}" + (" ..." if len(others) > 5 else "")
        return Similarity(kind, number, verdict, message, value, others)

    def _outcome(self, number: int) -> tuple[str, float | None, str]:
        """Returns (verdict, mean metric, description) of experiment `number` from results.tsv."""
        rows = self.campaign.experiments().get(str(number), [])
        if not rows:
            return "not recorded", None, ""
        metric = self.campaign.config.metric
        values = measured(rows, metric)
        last = rows[-1]["status"]
        verdict = "crash" if not values else ("discard" if last == "crash" else last)
        return verdict, (sum(values) / len(values) if values else None), rows[-1].get("description", "")

    def _check_skipped(self, digest: str) -> Similarity:
        """Returns an 'identical' similarity when a skipped proposal had exactly these files, else NEW."""
        from .notes import skipped_proposals
        for skipped in reversed(skipped_proposals(self.campaign.paths)):
            if skipped.digest and skipped.digest == digest:
                why = f": {skipped.reason}" if skipped.reason else ""
                label = f"proposal {skipped.experiment}" if skipped.experiment is not None else "a proposal"
                return Similarity("identical", skipped.experiment, "skipped",
                                  f"repeat of {label}, skipped on {skipped.date}{why}")
        return NEW


def _values_text(changed: dict, editable: tuple[str, ...]) -> str:
    """Returns 'LR=0.01, WIDTH=256' (with the file named when several files are editable)."""
    many = len(editable) > 1
    parts = [f"{path + ':' if many else ''}{name}={value!r}" for (path, name), value in sorted(changed.items())]
    return ", ".join(parts)
