"""One exception class per user-facing failure; each message names the fix."""


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


class StopRuleReached(CampaignError):
    """A stop rule holds, so no further experiment is launched."""
