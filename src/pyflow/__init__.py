"""PyFlow: compose Python functions into flows, store them, and run them in a sandbox."""

__version__ = "0.2.0"
