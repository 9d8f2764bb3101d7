"""autoresearch-magics: Jupyter-native autoresearch campaigns.

`from autoresearch_magics import Campaign` for the engine; `%load_ext autoresearch_magics`
for the magics.
"""
from .core.campaign import Campaign
from .core.errors import CampaignError

__all__ = ["Campaign", "CampaignError", "load_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """Registers %autoresearch and %%experiment."""
    from .magics import load_ipython_extension as load
    load(ipython)
