"""An in-memory stand-in for :class:`prodstate.Client` with the reads and writes the API's
records use: hashes and strings, a heartbeat, and the write batches it was asked for."""

from __future__ import annotations

import time
from typing import Any

from prodstate.client import Client, WriteFailed
from prodstate.core.heartbeat import HEARTBEAT_KEY


class FakeLocal:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, key: str) -> Any:
        return self.data.get(key)


class FakeClient:
    """Holds ``data`` (key -> str or dict); ``fail`` is raised by the next writes."""

    def __init__(self, data: dict[str, Any] | None = None, beat_age: float | None = 0.5) -> None:
        self.data: dict[str, Any] = dict(data or {})
        if beat_age is not None:
            self.data[HEARTBEAT_KEY] = str(time.time() - beat_age)
        self.local = FakeLocal(self.data)
        self.written: list[list[tuple[Any, ...]]] = []
        self.fail: WriteFailed | None = None
        self.confirmed_epoch: int | None = None

    staleness = staticmethod(Client.staleness)

    def read(self, *command: Any, max_staleness: float | None = None) -> Any:
        name, key = command[0].upper(), command[1]
        value = self.data.get(key)
        if name == "TYPE":
            return {str: "string", dict: "hash"}.get(type(value), "none")
        if name == "GET":
            return value
        if name == "HGETALL":
            return dict(value or {})
        if name == "HGET":
            return (value or {}).get(command[2])
        if name in ("XREVRANGE", "ZRANGE"):
            return []
        raise NotImplementedError(name)

    def hget(self, key: str, field: str) -> Any:
        return self.read("HGET", key, field)

    def hgetall(self, key: str) -> dict[str, str]:
        return self.read("HGETALL", key)

    def config(self, namespace: str) -> Any:
        from prodstate.settings.records import read_settings

        return read_settings(self, namespace, None)  # type: ignore[arg-type]

    def write_batch(self, commands: list[tuple[Any, ...]], timeout: float = 10.0) -> list[Any]:
        if self.fail is not None:
            raise self.fail
        self.written.append(commands)
        self.confirmed_epoch = 7
        return [1] * len(commands)

    def set(self, key: str, value: str, timeout: float = 10.0) -> Any:
        return self.write_batch([("SET", key, value)], timeout)
