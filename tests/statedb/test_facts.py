"""Parsers of machine facts, on sample text."""

from __future__ import annotations

import json

from prodstate.statedb import facts

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz
"""

MEMINFO = """MemTotal:       16303252 kB
MemFree:         1234567 kB
SwapTotal:       2097148 kB
"""

OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
"""

MOUNTS = """sysfs /sys sysfs rw,nosuid 0 0
proc /proc proc rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
/dev/sda1 /var/lib/docker ext4 rw 0 0
/dev/nvme0n1p2 /srv/my\\040data xfs rw 0 0
tmpfs /run tmpfs rw 0 0
"""

IP_JSON = json.dumps(
    [
        {
            "ifname": "lo",
            "flags": ["LOOPBACK", "UP"],
            "addr_info": [{"local": "127.0.0.1", "prefixlen": 8, "scope": "host"}],
        },
        {
            "ifname": "eth0",
            "flags": ["UP"],
            "addr_info": [
                {"local": "10.0.3.7", "prefixlen": 24, "scope": "global"},
                {"local": "fe80::1", "prefixlen": 64, "scope": "link"},
                {"local": "2001:db8::7", "prefixlen": 64, "scope": "global"},
            ],
        },
    ]
)


def test_cpuinfo_counts_processors_and_names_the_model():
    assert facts.parse_cpuinfo(CPUINFO) == {
        "cpus": 2,
        "cpu_model": "Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz",
    }
    assert facts.parse_cpuinfo("") == {"cpus": 0, "cpu_model": ""}


def test_meminfo_in_bytes():
    assert facts.parse_meminfo(MEMINFO) == {
        "memory_bytes": 16303252 * 1024,
        "swap_bytes": 2097148 * 1024,
    }
    assert facts.parse_meminfo("garbage\nMemTotal: lots kB") == {"memory_bytes": 0, "swap_bytes": 0}


def test_os_release_pretty_name_or_name_and_version():
    assert facts.parse_os_release(OS_RELEASE) == "Debian GNU/Linux 12 (bookworm)"
    assert facts.parse_os_release('NAME=Alpine\nVERSION="3.19"') == "Alpine 3.19"
    assert facts.parse_os_release("") == ""


def test_mounts_keep_disks_once_per_device():
    assert facts.parse_mounts(MOUNTS) == [
        {"device": "/dev/sda1", "mount": "/", "fs": "ext4"},
        {"device": "/dev/nvme0n1p2", "mount": "/srv/my data", "fs": "xfs"},
    ]
    assert facts.parse_mounts("overlay / overlay rw 0 0\noverlay /x overlay rw 0 0") == [
        {"device": "overlay", "mount": "/", "fs": "overlay"}
    ]


def test_ip_addresses_are_global_and_not_loopback():
    assert facts.parse_ip_addresses(IP_JSON) == [
        {"interface": "eth0", "address": "10.0.3.7/24"},
        {"interface": "eth0", "address": "2001:db8::7/64"},
    ]
    assert facts.parse_ip_addresses("not json") == []
    assert facts.parse_ip_addresses('{"a": 1}') == []


def test_collect_reads_this_machine():
    found = facts.collect("me")
    assert found["host"] == "me"
    assert found["cpus"] >= 1 and found["memory_bytes"] > 0
    assert found["kernel"] and found["os"]
    json.dumps(found)  # the record is JSON as it is
