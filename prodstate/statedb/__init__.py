"""The infrastructure state database: machines, services, deploys, locks and errors.

Records live in prodstate's replicated dataset under ``infra:`` (written through
:class:`prodstate.Client`'s durable path, read from the local Redis); locks live
in ZooKeeper and are mirrored into the dataset. The data model is in docs/user/statedb.rst
and :mod:`prodstate.statedb.keys`.
"""
