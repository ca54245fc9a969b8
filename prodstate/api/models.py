"""The JSON bodies the API takes: their shape only (types, no unknown fields). Names,
versions and texts are checked by the state database's own functions when the records
are built, exactly as the commands check them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Largest integer a fact may hold (bytes of memory or disk, CPUs).
_BIG = 2**62


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """What every refusal answers: why, and for a write whether it was applied (false:
    certainly not; null: it may have been, unconfirmed)."""

    error: str
    applied: bool | None = None


class Recorded(BaseModel):
    """A confirmed write: the epoch of the root that confirmed it."""

    recorded: bool = True
    epoch: int


class ServiceStarted(_Body):
    """A service started on ``host`` (at ``version``, if known)."""

    host: str
    version: str | None = None


class ServiceStopped(_Body):
    """A service stopped on ``host``."""

    host: str


class Disk(_Body):
    device: str = Field(max_length=256)
    mount: str = Field(max_length=256)
    fs: str = Field(max_length=32)
    size_bytes: int | None = Field(None, ge=0, le=_BIG)
    free_bytes: int | None = Field(None, ge=0, le=_BIG)


class Address(_Body):
    interface: str = Field(max_length=64)
    address: str = Field(max_length=64)


class MachineFacts(_Body):
    """A machine's facts, as ``prodstate machine report`` collects them (the time of the
    report is the server's)."""

    fqdn: str | None = Field(None, max_length=256)
    cpus: int | None = Field(None, ge=0, le=_BIG)
    cpus_online: int | None = Field(None, ge=0, le=_BIG)
    cpu_model: str | None = Field(None, max_length=256)
    memory_bytes: int | None = Field(None, ge=0, le=_BIG)
    swap_bytes: int | None = Field(None, ge=0, le=_BIG)
    os: str | None = Field(None, max_length=256)
    kernel: str | None = Field(None, max_length=256)
    arch: str | None = Field(None, max_length=64)
    boot_time: float | None = Field(None, ge=0)
    disks: list[Disk] = Field(default_factory=list, max_length=32)
    addresses: list[Address] = Field(default_factory=list, max_length=32)


class ErrorReport(_Body):
    """An error of ``service`` on ``host``."""

    service: str
    host: str
    message: str


class DeployRecord(_Body):
    """A deploy done elsewhere, recorded once it ended: exit status 0 is a success; a
    ``signal`` (1-64) means its command was killed by it."""

    service: str
    version: str
    targets: list[str] = Field(default_factory=list)
    who: str
    host: str
    exit_code: int = Field(ge=0, le=255)
    signal: int | None = Field(None, ge=1, le=64)
    output: str = ""
    command: str = ""


class KeyValue(_Body):
    """A string value to SET."""

    value: str
