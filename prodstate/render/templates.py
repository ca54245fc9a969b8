"""Jinja2 templates over a read-only view of the local Redis.

A template calls ``get(key)``, ``hget(key, field)``, ``hgetall(key)``, ``smembers(key)``
(sorted), ``lrange(key)``, ``zrange(key)``, ``exists(key)``, ``mget(keys)`` and
``keys(pattern)`` (sorted, by SCAN, at most :data:`MAX_KEYS`), and ``config(namespace)``
(a settings namespace's typed values, :mod:`prodstate.settings`), nothing that writes. The
environment is Jinja2's sandbox (no attribute starting with ``_``, so a template cannot
reach the connection behind the view) with ``StrictUndefined``: a misspelt variable is an
error, not an empty string in the file.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import jinja2
import redis
from jinja2.sandbox import SandboxedEnvironment

#: Keys ``keys(pattern)`` returns at most (a template error beyond).
MAX_KEYS = 10_000
#: Redis reads one render may make (a template error beyond): a loop over ``keys("*")``
#: must not read the whole dataset again and again.
MAX_READS = 100_000


class TemplateError(Exception):
    """A template that cannot be loaded or rendered: ``file:line: message``."""


class ReadBudgetExceeded(Exception):
    """A render read more than it may."""


class DataView:
    """The read-only functions a template calls, over one Redis connection."""

    def __init__(self, conn: redis.Redis, max_reads: int = MAX_READS) -> None:
        self._conn = conn
        self._max_reads = max_reads
        self.reads = 0

    def _count(self, n: int = 1) -> None:
        self.reads += n
        if self.reads > self._max_reads:
            raise ReadBudgetExceeded(f"a render may read Redis at most {self._max_reads} times")

    def get(self, key: str) -> str | None:
        self._count()
        value: str | None = self._conn.get(key)
        return value

    def mget(self, keys: list[str]) -> list[str | None]:
        keys = list(keys)
        self._count(max(1, len(keys)))
        return list(self._conn.mget(keys)) if keys else []

    def hget(self, key: str, name: str) -> str | None:
        self._count()
        value: str | None = self._conn.hget(key, name)
        return value

    def hgetall(self, key: str) -> dict[str, str]:
        self._count()
        return dict(sorted(self._conn.hgetall(key).items()))

    def smembers(self, key: str) -> list[str]:
        self._count()
        return sorted(self._conn.smembers(key))

    def lrange(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        self._count()
        return list(self._conn.lrange(key, start, stop))

    def zrange(self, key: str, start: int = 0, stop: int = -1, withscores: bool = False) -> list:
        self._count()
        return list(self._conn.zrange(key, start, stop, withscores=withscores))

    def exists(self, key: str) -> bool:
        self._count()
        return bool(self._conn.exists(key))

    def keys(self, pattern: str = "*") -> list[str]:
        """Keys matching ``pattern`` (SCAN; Redis glob syntax), sorted; at most
        :data:`MAX_KEYS`, an error beyond rather than a silently cut list."""
        found: set[str] = set()
        cursor = 0
        while True:
            self._count()
            cursor, batch = self._conn.scan(cursor, match=pattern, count=1000)
            found.update(batch)
            if len(found) > MAX_KEYS:
                raise ReadBudgetExceeded(f"keys({pattern!r}) matches more than {MAX_KEYS} keys")
            if cursor == 0:
                return sorted(found)

    def config(self, namespace: str) -> dict[str, Any]:
        """The settings of ``namespace`` as typed values (``config("alerts").page_after``
        is the number that was set); an error if there is no such namespace or its record
        is malformed, so a file is never rendered without them."""
        from prodstate.settings.keys import namespace_key
        from prodstate.settings.records import Namespace

        self._count()
        found = Namespace.parse(namespace, self._conn.hgetall(namespace_key(namespace)))
        if found is None:
            raise LookupError(f"there is no settings namespace {namespace!r}")
        return found.document()

    def functions(self) -> dict[str, Any]:
        """The globals a template sees."""
        names = ("get", "mget", "hget", "hgetall", "smembers", "lrange", "zrange", "exists")
        return {name: getattr(self, name) for name in (*names, "keys", "config")}


@dataclass
class Template:
    """One loaded template: its source file and compiled form."""

    path: str
    compiled: jinja2.Template = field(repr=False)

    def render(self, view: DataView) -> str:
        """The text for the data ``view`` reads; TemplateError (``file:line: why``) if the
        template fails. Redis errors pass through: the data could not be read."""
        try:
            return self.compiled.render(view.functions())
        except (redis.RedisError, OSError):
            raise
        except ReadBudgetExceeded as exc:
            raise TemplateError(f"{self.path}:{self._line(exc)}: {exc}") from None
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise TemplateError(f"{self.path}:{self._line(exc)}: {message}") from None

    def _line(self, exc: BaseException) -> str:
        """The template line the error was raised at (Jinja2 maps its frames to it)."""
        line = "?"
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == self.path and frame.lineno is not None:
                line = str(frame.lineno)
        return line


def load(path: str) -> Template:
    """Read and compile the template at ``path`` (includes are looked up beside it);
    TemplateError ``file:line: message`` if it cannot be read or does not compile."""
    path = os.path.abspath(path)
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(os.path.dirname(path)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    try:
        return Template(path, env.get_template(os.path.basename(path)))
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or path
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise TemplateError(f"{path}: no such template file") from None
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text") from None
