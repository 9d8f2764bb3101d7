"""autoresearch-magics: Jupyter-native autoresearch campaigns.

`from autoresearch_magics import Campaign` for the engine; `%load_ext autoresearch_magics`
for the magics.
"""
from .core.errors import CampaignError

__all__ = ["Campaign", "CampaignError", "load_ipython_extension"]
__version__ = "0.1.0"


def __getattr__(name):
    """Imports the engine on first use: Jupyter imports this package to read the extension entry
    points below, and GitPython and friends would slow every server start and extension listing."""
    if name == "Campaign":
        from .core.campaign import Campaign
        return Campaign
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_labextension_paths():
    """Returns where the built JupyterLab extension sits in this package, for `jupyter-builder develop`."""
    return [{"src": "labextension", "dest": "autoresearch-magics"}]


def _jupyter_server_extension_points():
    """Returns the module jupyter_server loads the /autoresearch routes from, so that
    `jupyter server extension enable autoresearch_magics` works."""
    return [{"module": "autoresearch_magics.server"}]


def load_ipython_extension(ipython):
    """Registers %autoresearch and %%experiment."""
    from .magics import load_ipython_extension as load
    load(ipython)
