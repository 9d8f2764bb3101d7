"""IPython magics: `%autoresearch <verb>` and `%%experiment` (load with `%load_ext autoresearch_magics`)."""
from .autoresearch import AutoresearchMagics, load_ipython_extension

__all__ = ["AutoresearchMagics", "load_ipython_extension"]
