"""The shipped alert rules and Grafana dashboard: promtool checks and unit-tests the rules,
every metric they read is one the agent exports, and the staleness alert fires for an
agent whose Redis never received a heartbeat."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from prodstate.agent.metrics import AgentMetrics, RedisStats
from prodstate.client import latency
from prodstate.core.actions import Decision, Wait
from prodstate.core.freshness import Freshness
from tests.snapshot_builder import ME, NOW, aged, snap

ROOT = Path(__file__).resolve().parent.parent
WAIT = Decision(Wait(), "nothing to do")
PROMETHEUS = ROOT / "monitoring" / "prometheus"
RULES = PROMETHEUS / "prodstate-rules.yml"
RULE_TESTS = PROMETHEUS / "prodstate-rules-test.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "prodstate.json"
DOC = ROOT / "docs" / "operator" / "monitoring.rst"
#: Series Prometheus itself adds for every scrape target, not exported by the agent.
SCRAPE_SERIES = {"up"}
#: Grafana's variables, replaced by something PromQL parses.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$cluster": "prod"}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: scripts/bootstrap.sh installs Debian's prometheus")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in rules() if "alert" in rule}


def dashboard_queries() -> Iterator[str]:
    """Every PromQL expression of the dashboard, its variables replaced."""
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"])
            assert match, variable["query"]
            yield match.group(1)


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def selected_names(node: object) -> Iterator[str]:
    """The metric name of every selector in a parsed PromQL expression."""
    match node:
        case promql_parser.VectorSelector():
            assert node.name, f"a selector without a metric name: {node}"
            yield node.name
        case promql_parser.MatrixSelector():
            yield from selected_names(node.vector_selector)
        case promql_parser.BinaryExpr():
            yield from selected_names(node.lhs)
            yield from selected_names(node.rhs)
        case promql_parser.AggregateExpr():
            yield from selected_names(node.expr)
            if node.param is not None:
                yield from selected_names(node.param)
        case promql_parser.Call():
            for arg in node.args:
                yield from selected_names(arg)
        case promql_parser.ParenExpr() | promql_parser.UnaryExpr() | promql_parser.SubqueryExpr():
            yield from selected_names(node.expr)
        case promql_parser.NumberLiteral() | promql_parser.StringLiteral():
            pass
        case _:
            raise AssertionError(f"unexpected PromQL node {type(node).__name__}: {node}")


def observed_agent() -> AgentMetrics:
    """A real agent's metrics after one tick, with Redis's counters read."""
    m = AgentMetrics(ME, "prod", "branch")
    m.observe(snap(freshness=aged(0.5)), WAIT, 0.003, RedisStats(1, 2))
    m.heartbeat_written(0.001)
    return m


def exported_names() -> set[str]:
    """Every sample name a real agent's registry exports, once each metric has a value."""
    families = observed_agent().registry.collect()
    return {sample.name for family in families for sample in family.samples}


def client_names() -> set[str]:
    """Every sample name ``prodstate.Client`` exports once it has written."""
    registry = CollectorRegistry()
    latency.histogram(registry).labels(cluster="prod", outcome="confirmed").observe(0.01)
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert set(cases) == alert_names()
    assert {name: fires for name, fires in cases.items() if fires != {True, False}} == {}


def test_rules_and_dashboard_read_only_what_agents_and_clients_export() -> None:
    exported = exported_names() | client_names() | SCRAPE_SERIES
    assert {"prodstate_staleness_seconds", "process_cpu_seconds_total"} <= exported
    read: dict[str, str] = {}
    expressions = [rule["expr"] for rule in rules()] + list(dashboard_queries())
    for expr in expressions:
        for name in selected_names(promql_parser.parse(substituted(expr))):
            read.setdefault(name, expr)
    assert len(read) > 20
    assert {name: expr for name, expr in read.items() if name not in exported} == {}


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "prodstate" and board["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "cluster"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert graphs and all(panel["targets"] for panel in graphs)
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert 'cluster="$cluster"' in target["expr"], panel["title"]


def test_the_staleness_alert_fires_for_an_agent_without_a_heartbeat(tmp_path: Path) -> None:
    """A real agent's metrics, observed every 15 s while its Redis holds no heartbeat,
    scraped into a promtool test of the shipped rule: the alert fires once the copy has
    been over 30 s old for a minute, and not for an agent whose heartbeat advances."""
    agents = {
        "nohb": AgentMetrics("nohb", "prod", "leaf"),
        "ok": AgentMetrics("ok", "prod", "leaf"),
    }
    scraped: dict[str, list[float]] = {}  # each series, as Prometheus would label it
    for i in range(11):
        s = snap(now=NOW + 15 * i)
        beat = Freshness("1.0", NOW - 100, s.now - 0.5, True, checked_at=s.now, judged=True)
        agents["nohb"].observe(replace(s, freshness=Freshness()), WAIT, 0.001, None)
        agents["ok"].observe(replace(s, freshness=beat), WAIT, 0.001, None)
        for instance, m in agents.items():
            for family in m.registry.collect():
                for sample in family.samples:
                    if sample.name in ("prodstate_staleness_seconds", "prodstate_info"):
                        labels = {**sample.labels, "instance": instance, "job": "prodstate"}
                        text = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                        scraped.setdefault(f"{sample.name}{{{text}}}", []).append(sample.value)
    assert agents["nohb"].registry.get_sample_value("prodstate_heartbeat_missing") == 1
    assert len(scraped) == 4
    series = [
        {"series": name, "values": " ".join(f"{v:g}" for v in values)}
        for name, values in scraped.items()
    ]
    alert = "ProdstateStaleData"
    expected = {
        "exp_labels": {
            "severity": "warning",
            "instance": "nohb",
            "job": "prodstate",
            "cluster": "prod",
            "node_id": "nohb",
        },
        "exp_annotations": {"summary": "prodstate data on nohb is 2m 0s old"},
    }
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "1m30s", "alertname": alert, "exp_alerts": []},
                    {"eval_time": "2m", "alertname": alert, "exp_alerts": [expected]},
                ],
            }
        ],
    }
    (tmp_path / "stale-test.yml").write_text(yaml.safe_dump(test))
    done = promtool("test", "rules", "stale-test.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_monitoring_doc_names_every_metric_and_alert() -> None:
    """(tests/test_docs_build.py builds it with the rest of docs/, warnings as errors.)"""
    text = DOC.read_text()
    families = {
        family.name + ("_info" if family.type == "info" else "")
        for family in observed_agent().registry.collect()
        if family.name.startswith("prodstate")
    }
    assert "prodstate_full_resyncs" in families
    undocumented = {name for name in families if f"``{name}" not in text}
    assert undocumented == set()
    assert {name for name in alert_names() if f"``{name}``" not in text} == set()
