"""The campaign folder's editable files as the engine sees them, and a commit's files for a worker."""
from __future__ import annotations

import os
from pathlib import Path


def working_copy(campaign) -> dict[str, str | None]:
    """Returns the editable files as they are in the campaign folder (None for a missing one)."""
    out = {}
    for path in campaign.config.editable:
        target = campaign.paths.root / path
        try:
            out[path] = target.read_text()
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            out[path] = None
    return out


def write_working_copy(campaign, files: dict[str, str]) -> None:
    """Writes editable files in the campaign folder, each atomically."""
    for path, text in files.items():
        target = campaign.paths.root / path
        tmp = target.with_name(f".{target.name}.autoresearch-tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


def tree_files(ledger, sha: str, root: Path) -> tuple[dict[str, bytes], list[str]]:
    """Returns the tracked files of commit `sha` under the campaign folder (path -> content) and the
    executable ones."""
    prefix = os.path.relpath(root, ledger.repo.working_tree_dir)
    tree = ledger.repo.commit(sha).tree
    if prefix != ".":
        tree = tree / prefix.replace(os.sep, "/")
    files, executable = {}, []
    for item in tree.traverse():
        if item.type != "blob" or item.mode == 0o120000:  # symlinks could point anywhere on the worker
            continue
        rel = os.path.relpath(item.path, tree.path) if tree.path else item.path
        files[rel] = item.data_stream.read()
        if item.mode & 0o111:
            executable.append(rel)
    return files, executable
