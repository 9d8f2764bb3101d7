"""Shared fixtures: every test runs with an isolated HOME and git config, in temporary folders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Keeps tests away from the real home directory and the user's git identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(home / ".cache" / "autoresearch"))
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_NAME", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)
    return home


@pytest.fixture
def toy_campaign(tmp_path):
    """Returns a fresh campaign on the toy template with a 0.3-second budget."""
    from autoresearch_magics import Campaign
    return Campaign.init(tmp_path / "campaign", tag="test", template="toy", budget_s=0.3)
