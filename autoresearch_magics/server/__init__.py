"""jupyter_server extension: read-only HTTP routes over the campaigns under the server root.

Enabled by the config file installed with the package (jupyter_server_config.d), or by hand
with `jupyter server extension enable autoresearch_magics.server`. The JupyterLab sidebar
is its only intended client; it needs no kernel because everything is read from files.
"""


def _jupyter_server_extension_points():
    """Returns the module jupyter_server loads this extension from."""
    return [{"module": "autoresearch_magics.server"}]


def _load_jupyter_server_extension(serverapp):
    """Registers the /autoresearch routes."""
    from .handlers import setup_handlers
    setup_handlers(serverapp.web_app)
    serverapp.log.info("autoresearch_magics.server: /autoresearch routes registered")
