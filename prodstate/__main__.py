"""Allow ``python -m prodstate``."""

from prodstate.cli import main

main()
