"""PyFlow: compose Python functions into flows, store them, and run them in a sandbox."""

from .markers import SKIP

__version__ = "0.2.0"
__all__ = ["SKIP", "__version__"]
