"""``prodstate api``: an HTTP API for machines that run no agent and reach no ZooKeeper.

Reads come from the local Redis; phone-home writes go through one long-lived
:class:`prodstate.Client` (fenced, confirmed). :mod:`.access` holds the identities and the
rate limit, :mod:`.records` what each endpoint reads and writes, :mod:`.app` the FastAPI
application, :mod:`.limits` the body bound, :mod:`.cli` the command.
"""
