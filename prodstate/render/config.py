"""What ``prodstate render`` renders: templates from a TOML file and ``--template`` flags (pure).

.. code-block:: toml

    wait = "2s:10s"            # defaults for every template
    command_timeout = "30s"

    [[template]]
    source = "/etc/prodstate/upstreams.conf.j2"
    destination = "/etc/nginx/conf.d/upstreams.conf"
    command = "nginx -s reload"    # optional: run after the file changed
    wait = "500ms:5s"             # optional
    perms = "0644"                # mode of a file created (an existing file keeps its own)
    command_timeout = "10s"        # optional

Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

from prodstate.render.debounce import Wait, parse_seconds

#: Templates one renderer takes at most.
MAX_TEMPLATES = 1000
DEFAULT_WAIT = Wait(0.0, 0.0)
DEFAULT_COMMAND_TIMEOUT = 30.0
DEFAULT_PERMS = 0o644
_TEMPLATE_KEYS = {"source", "destination", "command", "wait", "perms", "command_timeout"}
_TOP_KEYS = {"wait", "command_timeout", "template"}


class ConfigError(ValueError):
    """A template configuration that cannot be used (the text says where and why)."""


@dataclass(frozen=True)
class TemplateSpec:
    """One template: where it is read from and rendered to, and what runs after a change."""

    source: str
    destination: str
    command: str = ""
    wait: Wait = DEFAULT_WAIT
    #: Mode of a destination created by the renderer (an existing one keeps its mode).
    perms: int = DEFAULT_PERMS
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT

    @property
    def name(self) -> str:
        """How logs and metrics name it: its destination."""
        return self.destination


def parse_flag(text: str, wait: Wait = DEFAULT_WAIT) -> TemplateSpec:
    """``SRC:DEST[:CMD]`` (the command may hold colons) as a TemplateSpec."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        raise ConfigError(f"--template {text!r} is not SOURCE:DESTINATION[:COMMAND]")
    command = parts[2].strip() if len(parts) == 3 else ""
    return TemplateSpec(parts[0].strip(), parts[1].strip(), command, wait)


def parse_file(path: str, wait: Wait | None = None) -> list[TemplateSpec]:
    """The ``[[template]]`` entries of the TOML file ``path``; ``wait`` (the command line's)
    overrides the file's default wait."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_table(data, path, wait)


def parse_table(data: dict, path: str, wait: Wait | None = None) -> list[TemplateSpec]:
    """The templates of a parsed TOML document (``path`` names it in errors)."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    default_wait = wait or _wait(data.get("wait"), path, DEFAULT_WAIT)
    default_timeout = _timeout(data.get("command_timeout"), path, DEFAULT_COMMAND_TIMEOUT)
    entries = data.get("template", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: 'template' must be an array of tables ([[template]])")
    if len(entries) > MAX_TEMPLATES:
        raise ConfigError(f"{path}: {len(entries)} templates, more than {MAX_TEMPLATES}")
    specs = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: template {number}"
        unknown = sorted(set(entry) - _TEMPLATE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
        fields = {}
        for key in ("source", "destination", "command"):
            value = entry.get(key, "")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {key} must be a string")
            fields[key] = value.strip()
        if not fields["source"] or not fields["destination"]:
            raise ConfigError(f"{where}: needs both source and destination")
        for key in ("source", "destination"):  # relative to the file's folder
            fields[key] = os.path.join(os.path.dirname(os.path.abspath(path)), fields[key])
        specs.append(
            TemplateSpec(
                fields["source"],
                fields["destination"],
                fields["command"],
                wait if wait is not None else _wait(entry.get("wait"), where, default_wait),
                _perms(entry.get("perms"), where),
                _timeout(entry.get("command_timeout"), where, default_timeout),
            )
        )
    return specs


def check_destinations(specs: list[TemplateSpec]) -> None:
    """ConfigError if two templates write the same file."""
    seen: set[str] = set()
    for spec in specs:
        if spec.destination in seen:
            raise ConfigError(f"two templates write {spec.destination}")
        seen.add(spec.destination)


def _wait(value: object, where: str, default: Wait) -> Wait:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f'{where}: wait must be a string like "2s:10s"')
    try:
        return Wait.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _timeout(value: object, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value) if isinstance(value, int | float) else parse_seconds(str(value))
    except ValueError:
        raise ConfigError(f"{where}: command_timeout {value!r} is not a duration") from None
    if not 0 < seconds <= 3600:
        raise ConfigError(f"{where}: command_timeout must be more than 0 and at most 1h")
    return seconds


def _perms(value: object, where: str) -> int:
    if value is None:
        return DEFAULT_PERMS
    text = value if isinstance(value, str) else None
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 4:
        raise ConfigError(f'{where}: perms {value!r} must be an octal string like "0644"')
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(f"{where}: perms {value!r} is not octal") from None
    return mode
