"""The client: reads from the local Redis, fenced writes through the root confirmed by
branches (see :mod:`prodstate.client.fenced`)."""

from prodstate.client.fenced import (
    RESERVED_PREFIX,
    Client,
    NoRoot,
    ProdstateError,
    StaleData,
    WriteConflict,
    WriteFailed,
    WriteRejected,
    WriteUncertain,
    branch_acks,
    non_branch_replicas,
    role_offset,
)

__all__ = [
    "RESERVED_PREFIX",
    "Client",
    "NoRoot",
    "ProdstateError",
    "StaleData",
    "WriteConflict",
    "WriteFailed",
    "WriteRejected",
    "WriteUncertain",
    "branch_acks",
    "non_branch_replicas",
    "role_offset",
]
