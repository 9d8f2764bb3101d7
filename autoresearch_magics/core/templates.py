"""The campaign templates shipped with the package."""
from __future__ import annotations

from pathlib import Path

from .errors import CampaignError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT = "tinylm"
# One-time set-up a template's campaigns run at init (see preparation.py), when the template ships it.
PREPARE_COMMANDS = {"tinylm": ("python prepare.py", "prepare.py")}


def names() -> list[str]:
    """Returns the available template names."""
    return sorted(p.name for p in TEMPLATES_DIR.iterdir() if (p / "train.py").is_file())


def path_of(name: str) -> Path:
    """Returns the folder of template `name`; raises CampaignError naming the choices."""
    folder = TEMPLATES_DIR / name
    if not (folder / "train.py").is_file():
        raise CampaignError(f"unknown template {name!r}: choose one of {', '.join(names()) or '(none installed)'}")
    return folder


def prepare_command_of(name: str) -> str:
    """Returns the one-time preparation command of template `name` ("" when it has none)."""
    command, script = PREPARE_COMMANDS.get(name, ("", ""))
    return command if command and (TEMPLATES_DIR / name / script).is_file() else ""
