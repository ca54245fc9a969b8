"""A machine's facts: pure parsers of /proc, /etc/os-release and ``ip -json address``
output, and :func:`collect` that reads them (the only I/O here)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

#: File systems that are disks (others, like proc or tmpfs, are left out).
DISK_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "f2fs", "jfs"})
#: At most this many disks and addresses are kept per machine.
MAX_ITEMS = 32
#: Longest device or mount path kept.
PATH_MAX = 256


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """{"cpus": logical CPUs, "cpu_model": model name} from /proc/cpuinfo."""
    cpus = 0
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            cpus += 1
        elif key in ("model name", "Model", "cpu model") and not model:
            model = value.strip()
    return {"cpus": cpus, "cpu_model": model}


def parse_meminfo(text: str) -> dict[str, int]:
    """{"memory_bytes": MemTotal, "swap_bytes": SwapTotal} from /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key in ("MemTotal", "SwapTotal") and parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            values[key] = int(parts[0]) * scale
    return {"memory_bytes": values.get("MemTotal", 0), "swap_bytes": values.get("SwapTotal", 0)}


def parse_os_release(text: str) -> str:
    """PRETTY_NAME (or NAME VERSION) from /etc/os-release."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    return fields.get("PRETTY_NAME") or " ".join(
        v for v in (fields.get("NAME"), fields.get("VERSION")) if v
    )


def parse_mounts(text: str) -> list[dict[str, str]]:
    """The disk mounts of /proc/mounts: [{"device", "mount", "fs"}], one per device."""
    seen: set[str] = set()
    disks = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] in seen:
            continue
        if parts[2] not in DISK_FS and not (parts[2] == "overlay" and parts[1] == "/"):
            continue  # not a disk (a container's overlay root counts)
        seen.add(parts[0])
        mount = parts[1].replace("\\040", " ")
        disks.append({"device": parts[0], "mount": mount, "fs": parts[2]})
    return disks[:MAX_ITEMS]


def parse_ip_addresses(text: str) -> list[dict[str, str]]:
    """Global addresses from ``ip -json address``: [{"interface", "address"}] (loopback
    and link-local left out)."""
    try:
        links = json.loads(text)
    except ValueError:
        return []
    found = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            if isinstance(info, dict) and info.get("scope") == "global" and info.get("local"):
                found.append(
                    {
                        "interface": str(link.get("ifname", "")),
                        "address": f"{info['local']}/{info.get('prefixlen', '')}",
                    }
                )
    return found[:MAX_ITEMS]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _disk_sizes(disks: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each disk with its size and free space, its paths cut to PATH_MAX."""
    sized: list[dict[str, Any]] = []
    for disk in disks:
        kept = {**disk, "device": disk["device"][:PATH_MAX], "mount": disk["mount"][:PATH_MAX]}
        try:
            usage = shutil.disk_usage(disk["mount"])
        except OSError:
            sized.append(kept)
            continue
        sized.append({**kept, "size_bytes": usage.total, "free_bytes": usage.free})
    return sized


def _addresses() -> list[dict[str, str]]:
    ip = shutil.which("ip")
    if ip is None:
        return []
    try:
        out = subprocess.run([ip, "-json", "address"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ip_addresses(out.stdout)


def collect(host: str) -> dict[str, Any]:
    """This machine's facts, recorded under ``host``."""
    uname = platform.uname()
    return {
        "host": host,
        "fqdn": uname.node,
        **parse_cpuinfo(_read("/proc/cpuinfo")),
        **parse_meminfo(_read("/proc/meminfo")),
        "os": parse_os_release(_read("/etc/os-release")) or uname.system,
        "kernel": uname.release,
        "arch": uname.machine,
        "disks": _disk_sizes(parse_mounts(_read("/proc/mounts"))),
        "addresses": _addresses(),
        "boot_time": _boot_time(_read("/proc/stat")),
        "reported_at": time.time(),
        "cpus_online": os.cpu_count() or 0,
    }


def _boot_time(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None
