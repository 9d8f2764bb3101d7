"""The user-facing errors: one CampaignError subclass per failure, each message naming the fix.

Front ends show a CampaignError's message without a traceback (a UsageError in the kernel, exit
code 2 in the CLI); any other exception is a bug and keeps its traceback.
"""


class CampaignError(Exception):
    """A problem the user can fix; front ends show the message without a traceback."""


class NotACampaign(CampaignError):
    """The folder holds no campaign config."""


class CampaignBusy(CampaignError):
    """Another process is running this campaign's experiments."""


class WrongBranch(CampaignError):
    """The working copy is not on the campaign branch."""


class MalformedResults(CampaignError):
    """results.tsv cannot be read; the message names the line."""


class ProposalError(CampaignError):
    """A proposer failed this time (its agent crashed, hung or changed nothing); the loop goes on."""


class QueueFull(CampaignError):
    """The kernel's job queue holds `max_queued` jobs already."""

    def __init__(self, queued: int) -> None:
        super().__init__(f"{queued} experiments already wait behind the running one: wait for them, or stop "
                         f"the run to cancel the queue")
        self.queued = queued
