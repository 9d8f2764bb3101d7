"""One campaign as this kernel sees it: the campaign the worker thread runs, a reader for the
main thread, the job queue, and the jobs submitted with their panels."""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from IPython.core.error import UsageError

from ..core.background import Job, JobQueue
from ..core.campaign import Campaign
from ..core.live import process_alive, read_json


class Session:
    """The kernel's handle on one campaign folder."""

    def __init__(self, campaign: Campaign, max_queued: int | None) -> None:
        self.campaign = campaign            # used by the worker thread only (it caches results.tsv)
        # the main thread reads through its own objects; the config record is shared, so a stop-rule
        # change made here is seen by a running loop
        self.reader = Campaign(campaign.paths, campaign.config)
        self.queue = JobQueue(campaign, max_queued)
        self.jobs: list[tuple[Job, object]] = []   # (job, its panel), oldest first
        self.reported: set[int] = set()            # ids of jobs whose outcome `wait` printed
        self.gate = None                           # the approve-mode gate of this kernel's latest loop

    @property
    def root(self) -> Path:
        """Returns the campaign folder."""
        return self.campaign.paths.root

    def adopt_config(self, campaign: Campaign) -> None:
        """Takes over the settings of a freshly initialised copy of this campaign (in place)."""
        for f in fields(self.campaign.config):
            setattr(self.campaign.config, f.name, getattr(campaign.config, f.name))

    def close(self) -> None:
        """Ends the git helper processes of this session's campaign objects (the worker's once it is idle)."""
        for campaign in (self.reader, *(() if self.queue.busy else (self.campaign,))):
            close_git(campaign)

    def refuse_if_other_runner(self) -> None:
        """Raises UsageError when another process runs this campaign's experiments now."""
        note = read_json(self.campaign.paths.owner)
        if not note or note.get("pid") == os.getpid() or not process_alive(note.get("pid")):
            return
        raise UsageError(f"campaign {self.root} is busy: process {note['pid']} ({note.get('purpose', 'run')}: "
                         f"{note.get('argv', '')}) runs its experiments. `%autoresearch wait` waits for it; "
                         f"`%autoresearch stop` asks it to stop.")


def close_git(campaign: Campaign) -> None:
    """Ends the `git cat-file` helpers GitPython keeps for `campaign` (a closing kernel waits for every
    child in its process group, and kills itself, atexit handlers unrun, if they linger)."""
    campaign.ledger.repo.close()
