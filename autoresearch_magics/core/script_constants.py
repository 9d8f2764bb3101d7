"""Module-level constants of a training script: read them and rewrite their values in place,
keeping everything else (comments, spacing, other code) byte for byte."""
from __future__ import annotations

import ast
import re

from .errors import CampaignError


def read_constants(source: str) -> dict[str, object]:
    """Returns {NAME: value} for every module-level `NAME = <literal>` assignment."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def rewrite_constants(source: str, values: dict[str, object]) -> str:
    """Returns `source` with the literal values of the named module-level constants replaced."""
    lines = source.splitlines(keepends=True)
    located = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            located[node.targets[0].id] = node
    missing = [name for name in values if name not in located]
    if missing:
        raise CampaignError(f"train.py has no module-level constant {', '.join(missing)}: the sweep space may "
                            f"only name constants assigned at the top level (e.g. `LR = 0.01`)")
    # right to left within a line is not needed: one assignment per line is the template style
    for name, value in values.items():
        node = located[name].value
        if node.lineno != node.end_lineno:
            raise CampaignError(f"{name} spans several lines; the sweep rewrites only one-line constants")
        line = lines[node.lineno - 1]
        start, end = _char_offsets(line, node.col_offset, node.end_col_offset)
        lines[node.lineno - 1] = line[:start] + _literal(value) + line[end:]
    return "".join(lines)


def _char_offsets(line: str, start_byte: int, end_byte: int) -> tuple[int, int]:
    """Converts ast's UTF-8 byte offsets to character offsets in `line`."""
    encoded = line.encode()
    return len(encoded[:start_byte].decode()), len(encoded[:end_byte].decode())


def _literal(value) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
        return text if re.search(r"[.eE]", text) else text + ".0"
    return repr(value)
