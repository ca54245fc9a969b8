"""Machine freshness and service records, discovery decisions and queries (pure)."""

from __future__ import annotations

import json

import pytest

from prodstate.statedb import services
from prodstate.statedb.keys import (
    ERROR_SERVICES,
    MACHINES,
    SERVICE_EVENTS,
    SERVICES,
    dumps,
    errors,
    host_services,
    instances,
)
from prodstate.statedb.machines import (
    FACTS_MAX,
    forget_commands,
    human_age,
    human_bytes,
    machines,
    record_command,
)
from prodstate.statedb.services import (
    DISCOVERY,
    PHONE_HOME,
    discovery_plan,
    instance_commands,
    instances_by_key,
    parse_patterns,
    running,
    running_services,
)

NOW = 1_800_000_000.0


def test_a_machine_that_has_not_reported_for_long_is_stale():
    raw = {
        "web1": dumps({"host": "web1", "reported_at": NOW - 60}),
        "old": dumps({"host": "old", "reported_at": NOW - 90_000}),
        "broken": "{not json",
    }
    found = {m.host: m for m in machines(raw, NOW, stale_after=86_400)}
    assert (found["web1"].age, found["web1"].stale) == (60, False)
    assert found["old"].stale and found["broken"].stale and found["broken"].age is None
    assert [m.host for m in machines(raw, NOW)] == ["broken", "old", "web1"]


def test_record_command_checks_the_host():
    assert record_command({"host": "web1"})[:3] == ("HSET", MACHINES, "web1")
    with pytest.raises(ValueError, match="host name"):
        record_command({"host": "bad host"})


def test_a_machine_record_is_bounded_dropping_its_last_disks_and_addresses():
    disk = {"device": "/dev/" + "d" * 300, "mount": "/m", "fs": "xfs", "size_bytes": 2**40}
    address = {"interface": "eth0", "address": "fd00::1/64"}
    facts = {"host": "big", "os": "o" * 1000, "disks": [disk] * 32, "addresses": [address] * 32}
    raw = record_command(facts)[3]
    kept = json.loads(raw)
    assert len(raw.encode()) <= FACTS_MAX
    assert kept["os"] == "o" * 256  # texts cut, then the lists shortened
    assert kept["omitted"] == 64 - len(kept["disks"]) - len(kept["addresses"]) > 0
    assert kept["disks"][0] == disk and kept["addresses"][0] == address
    small = {"host": "small", "disks": [disk], "addresses": [address]}
    assert json.loads(record_command(small)[3]) == small  # within the bound: untouched


def test_human_sizes_and_ages():
    assert human_bytes(16 * 1024**3) == "16.0G"
    assert human_bytes(512) == "512B"
    assert human_bytes(None) == "-"
    assert [human_age(a) for a in (5, 120, 7200, 200_000, None)] == [
        "5s",
        "2m",
        "2h",
        "2d",
        "never",
    ]


def test_instance_commands_index_both_ways_and_log_an_event():
    commands = instance_commands("web", "h1", "running", NOW, "v2")
    (hset_service, hset_host, registry, event) = commands
    assert hset_service[:3] == ("HSET", "infra:service:web:hosts", "h1")
    assert hset_host[:3] == ("HSET", "infra:host:h1:services", "web")
    assert json.loads(hset_service[3]) == {
        "state": "running",
        "version": "v2",
        "since": NOW,
        "source": PHONE_HOME,
    }
    assert registry == ("HSETNX", SERVICES, "web", "{}")
    assert event[:6] == ("XADD", SERVICE_EVENTS, "MAXLEN", "~", 10_000, "*")
    fields = dict(zip(event[6::2], event[7::2], strict=True))
    assert fields == {
        "service": "web",
        "host": "h1",
        "action": "running",
        "version": "v2",
        "source": PHONE_HOME,
    }


def test_a_stop_keeps_the_last_version():
    (rec, *_) = instance_commands("web", "h1", "stopped", NOW, previous={"version": "v2"})
    assert json.loads(rec[3])["version"] == "v2"


def test_a_stop_of_an_instance_never_recorded_is_refused():
    with pytest.raises(ValueError, match="web was never recorded on h1: nothing to mark"):
        instance_commands("web", "h1", "stopped", NOW, previous={})


def test_forgetting_a_service_removes_it_everywhere_but_the_history():
    commands = services.forget_commands("web", ["h2", "h1", "not a name"])
    assert commands == [
        ("HDEL", SERVICES, "web"),
        ("HDEL", host_services("h1"), "web"),
        ("HDEL", host_services("h2"), "web"),
        ("DEL", instances("web")),
        ("DEL", errors("web")),
        ("ZREM", ERROR_SERVICES, "web"),
    ]
    with pytest.raises(ValueError, match="service name"):
        services.forget_commands("a b", [])


def test_patterns_parse_and_bad_ones_say_which():
    patterns = parse_patterns('[services]\nredis = "redis-server"\nweb = "gunicorn .*app:web"\n')
    assert [p.service for p in patterns] == ["redis", "web"]
    for text, message in [
        ("[services]\nweb = '('", "services.web: bad regular expression"),
        ("[services]\nweb = 3", "must be a string"),
        ("[other]\n", "expected a"),
        ("[services\n", "not valid TOML"),
        ("[services]\n'a b' = 'x'", "service name"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_patterns(text)


def test_running_services_match_command_lines():
    patterns = parse_patterns('[services]\nredis = "redis-server"\nweb = "gunicorn .*app:web"\n')
    lines = ["/usr/bin/redis-server 127.0.0.1:6379", "python -m http.server"]
    assert running_services(patterns, lines) == {"redis"}
    assert running_services(patterns, [*lines, "gunicorn -w 4 app:web"]) == {"redis", "web"}


def test_discovery_starts_the_new_and_stops_only_what_it_found_itself():
    current = {
        "web": {"state": "running", "source": DISCOVERY},
        "cron": {"state": "running", "source": PHONE_HOME},
        "redis": {"state": "stopped", "source": DISCOVERY},
        "db": {"state": "running", "source": DISCOVERY},
    }
    assert discovery_plan({"redis", "db", "new"}, current) == (["new", "redis"], ["web"])
    assert discovery_plan(set(), {}) == ([], [])


def test_queries_parse_records_and_keep_running_ones():
    raw = {"h2": dumps({"state": "stopped"}), "h1": dumps({"state": "running"}), "h3": "x"}
    records = instances_by_key(raw)
    assert list(records) == ["h1", "h2", "h3"] and records["h3"] == {}
    assert list(running(records)) == ["h1"]


def test_forgetting_a_machine_removes_its_facts_and_its_service_records():
    commands = forget_commands("web-0", ["web", "cron", "not a name"])
    assert commands == [
        ("HDEL", MACHINES, "web-0"),
        ("HDEL", instances("cron"), "web-0"),
        ("HDEL", instances("web"), "web-0"),
        ("DEL", host_services("web-0")),
    ]


def test_forgetting_an_invalid_host_name_is_refused():
    with pytest.raises(ValueError, match="host name"):
        forget_commands("../etc", [])
