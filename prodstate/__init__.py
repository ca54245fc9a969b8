"""prodstate: global state on every machine, through a self-healing Redis tree."""

__version__ = "0.1.0"
