"""Finding campaigns under the server root, and turning a campaign id back into a folder safely.

A campaign's id is its folder relative to the server root in POSIX form ("." for the root
itself). Every id a client sends is checked before anything is read: no "..", no absolute
path, no hidden folder, and the folder (symlinks resolved) must stay inside the root.
"""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from ..core.config import CampaignConfig
from ..core.errors import CampaignError
from ..core.live import read_live
from ..core.paths import CONFIG_NAME, DATA_DIR, LOGS_DIR, STATE_DIR, CampaignPaths

MAX_DEPTH = 4          # folder levels below the server root that are searched
MAX_FOLDERS = 3000     # folders visited per listing, so a huge root stays fast
SKIPPED = {"node_modules", "__pycache__", "site-packages", "venv", "env"}
ROOT_ID = "."


class UnsafeCampaignId(CampaignError):
    """The id could name a folder outside the server root (400)."""


class UnknownCampaign(CampaignError):
    """No campaign has this id under the server root (404)."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _has_config(folder: Path) -> bool:
    return (folder / STATE_DIR / CONFIG_NAME).is_file()


def _confined(paths: CampaignPaths, root: Path) -> bool:
    """Returns True when the campaign's own files, symlinks resolved, all live inside `root`."""
    for path in (paths.root, paths.state, paths.config, paths.results, paths.live, paths.logs):
        if (path.exists() or path.is_symlink()) and not _inside(path.resolve(), root):
            return False
    return True


def campaign_folders(server_root) -> list[Path]:
    """Returns the campaign folders under `server_root`, breadth first, within the walk limits."""
    root = Path(server_root).resolve()
    found, queue, visited = [], deque([(root, 0)]), 0
    while queue and visited < MAX_FOLDERS:
        folder, depth = queue.popleft()
        visited += 1
        is_campaign = _has_config(folder)
        if is_campaign:
            found.append(folder)
        if depth >= MAX_DEPTH:
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in SKIPPED:
                continue
            if is_campaign and name in (LOGS_DIR, DATA_DIR):  # a campaign's own bulky folders
                continue
            try:
                if entry.is_dir(follow_symlinks=False):  # never walk through a link
                    queue.append((Path(entry.path), depth + 1))
            except OSError:
                continue
    return found


def campaign_id(folder: Path, server_root) -> str:
    """Returns the id of the campaign in `folder`."""
    rel = Path(folder).relative_to(Path(server_root).resolve())
    return rel.as_posix() if rel.parts else ROOT_ID


def list_campaigns(server_root) -> list[dict]:
    """Returns one summary per campaign: id, tag, objective settings and whether it runs now."""
    root = Path(server_root).resolve()
    out = []
    for folder in campaign_folders(root):
        paths = CampaignPaths(folder)
        if not _confined(paths, root):
            continue
        entry = {"id": campaign_id(folder, root), "name": folder.name or str(folder)}
        try:
            config = CampaignConfig.load(paths)
        except CampaignError as exc:
            out.append({**entry, "error": str(exc)})
            continue
        live = read_live(paths)
        out.append({**entry, "tag": config.tag, "metric": config.metric, "direction": config.direction,
                    "budget_s": config.budget_s, "running": live["experiment"] if live else None})
    return out


def resolve_campaign(server_root, cid: str | None) -> Path:
    """Returns the campaign folder that `cid` names; raises UnsafeCampaignId or UnknownCampaign."""
    root = Path(server_root).resolve()
    cid = ROOT_ID if cid in (None, "", ROOT_ID) else cid
    if "\x00" in cid or "\\" in cid or cid.startswith("/") or os.path.isabs(cid):
        raise UnsafeCampaignId(f"campaign id {cid!r} is not a path relative to the server root")
    parts = [] if cid == ROOT_ID else cid.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise UnsafeCampaignId(f"campaign id {cid!r} has an empty, '.', '..' or hidden segment")
    folder = root.joinpath(*parts).resolve()
    if not _inside(folder, root) or not _has_config(folder) or not _confined(CampaignPaths(folder), root):
        raise UnknownCampaign(f"no campaign {cid!r} under the server root: GET /autoresearch/campaigns lists them")
    return folder


def inside_root(path, server_root) -> bool:
    """Returns True when `path`, symlinks resolved, is inside `server_root`."""
    return _inside(Path(path).resolve(), Path(server_root).resolve())
