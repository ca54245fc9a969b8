"""The printed report of ``zk_sessions.py`` and its targets."""

from __future__ import annotations

from typing import Any

from benchkit import table

#: A branch loss: at most this many requests per affected leaf, and this many seconds until
#: the last of them has re-homed (from its member znode's deletion).
HERD_REQUESTS, HERD_SECONDS = 2.0, 5.0


def targets(figures: dict[str, Any], phases: list[str]) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for every phase that ran; a phase without figures fails."""
    checks = []
    for phase, label in (("storm", "storm"), ("steady", "at rest"), ("restart", "restart")):
        if phase in phases:
            f = figures.get(phase)
            expired = f["client_expired"] + f["server_expired"] if f else -1
            detail = f"{expired} expired" if f else "not measured"
            checks.append((f"no session expires ({label})", expired == 0, detail))
    for phase in ("herd", "crash"):
        if phase not in phases:
            continue
        f = figures.get(phase)
        requests = f["requests_per_affected_leaf"] if f else float("inf")
        checks.append((f"{phase}: <= {HERD_REQUESTS:g} requests per affected leaf",
                       requests <= HERD_REQUESTS, f"{requests:.2f}"))  # fmt: skip
        if phase == "herd":
            last = f["rehome"].get("max", float("inf")) if f else float("inf")
            checks.append((f"herd: every affected leaf re-homed <= {HERD_SECONDS:g} s",
                           last <= HERD_SECONDS, f"{last:.2f} s"))  # fmt: skip
    for phase in ("herd", "crash", "root"):
        f = figures.get(phase)
        if phase in phases and f is not None:
            checks.append((f"{phase}: every leaf on its rendezvous choice", f["wrong"] == 0,
                           f"{f['wrong']} wrong"))  # fmt: skip
    return checks


#: The rows of a branch lost, its agent alone (herd) or its machine (crash).
BRANCH_LOSS = [
    ("victim, its leaves", "{victim}, {affected}"),
    ("kill -> member gone (expiry), s", "{expiry_s:.2f}"),
    ("re-homed after member gone p50 / p99 / max, s", "{rehome_spread}"),
    ("re-homed after the kill p50 / p99 / max, s", "{rehome_from_kill_spread}"),
    ("every leaf read the branches, s", "{all_read_s:.2f}"),
    (
        "requests per affected leaf (max)",
        "{requests_per_affected_leaf:.2f} ({max_requests_of_an_affected_leaf})",
    ),
    (
        "requests of all leaves (+ full re-reads)",
        "{requests_all_leaves} (+{full_reread_requests_meanwhile})",
    ),
    (
        "packets in; peak /s; max latency ms",
        "{packets:.0f}; {peak_packets_per_s:.0f}; {max_latency_ms:.0f}",
    ),
    (
        "until all re-homed: worker loop lag; workers' CPU, s",
        "{worker_lag_s:.2f}; {worker_cpu_s:.1f}",
    ),
    ("wrong parents", "{wrong}"),
]

#: Per phase: (label, template), the template formatted with the phase's figures (plus
#: ``*_spread`` for each p50/p99/max dict, ``*_kinds`` for each per-kind dict).
ROWS = {
    "storm": [
        ("all connected / registered / chose / fresh, s",
         "{all_connected_s:.2f} / {all_registered_s:.2f} / {all_chose_s:.2f} / "
         "{all_fresh_s:.2f}"),
        ("chose a parent p50 / p99 / max, s", "{chose_spread}"),
        ("requests per leaf", "{requests_per_leaf:.1f} ({by_kind_per_leaf_kinds})"),
        ("failed connects / drops / expired",
         "{failed_connects} / {drops} / {client_expired} (server log: {server_expired})"),
        ("packets in; peak /s", "{packets:.0f}; {peak_packets_per_s:.0f}"),
        ("peak outstanding; max latency ms", "{peak_outstanding:.0f}; {max_latency_ms:.0f}"),
        ("ZooKeeper CPU s; worker loop lag s", "{zk_cpu_s:.1f}; {worker_lag_s:.2f}"),
    ],
    "steady": [
        ("window, s", "{seconds:.0f}"),
        ("leaf requests /s; pings /s", "{leaf_requests_per_s:.0f}; {leaf_pings_per_s:.0f}"),
        ("per leaf per minute", "{per_leaf_per_min_kinds}"),
        ("branch / root requests per minute",
         "{branch_requests_per_min:.0f} / {root_requests_per_min:.0f}"),
        ("packets in /s (peak)", "{packets_per_s:.0f} ({peak_packets_per_s:.0f})"),
        ("watches; znodes; connections", "{watches:.0f}; {znodes:.0f}; {connections:.0f}"),
        ("servers' RSS MB", "{rss_text}"),
        ("per server: connections/packets per s/cores", "{per_server_text}"),
        ("ZooKeeper cores; max latency ms", "{zk_cores:.2f}; {max_latency_ms:.0f}"),
        ("drops / expired", "{drops} / {client_expired} (server log: {server_expired})"),
        ("worker loop lag s", "{worker_lag_s:.2f}"),
    ],
    "herd": BRANCH_LOSS,
    "crash": BRANCH_LOSS,
    "root": [
        ("old -> new root", "{old_root} -> {new_root}"),
        ("crash -> root znode gone, s", "{expiry_s:.2f}"),
        ("gone -> claimed / published, s", "{claimed_s:.2f} / {published_s:.2f}"),
        ("leaves on their branch under it p50/p99/max, s", "{rehome_spread}"),
        ("leaves on another branch; moves; leaves moving twice",
         "{moved}; {moves}; {moved_twice}"),
        ("requests per leaf (max; + full re-reads)",
         "{requests_per_leaf:.2f} ({max_requests_of_a_leaf}; +{full_reread_requests_meanwhile})"),
        ("branch requests in the window", "{branch_requests} in {window_s:.1f} s"),
        ("packets in; max latency ms", "{packets:.0f}; {max_latency_ms:.0f}"),
        ("wrong parents", "{wrong}"),
    ],
    "restart": [
        ("stop / quorum back, s", "{stop_s:.2f} / {quorum_back_s:.2f}"),
        ("sessions back after quorum p50 / p99 / max, s", "{back_spread}"),
        ("leaves read again p50 / p99 / max, s", "{read_spread}"),
        ("per leaf: requests; failed connects; drops",
         "{requests_per_leaf:.1f}; {failed_connects_per_leaf:.1f}; {drops_per_leaf:.2f}"),
        ("expired (server log); branch sessions lost",
         "{client_expired} ({server_expired}); {branch_sessions_lost}"),
        ("root kept (same session, epoch)", "{root_kept}"),
        ("packets in; peak /s; peak outstanding",
         "{packets:.0f}; {peak_packets_per_s:.0f}; {peak_outstanding:.0f}"),
        ("max latency ms; worker loop lag s", "{max_latency_ms:.0f}; {worker_lag_s:.2f}"),
    ],
    "workers": [("CPU s; peak RSS MB", "{cpu_seconds:.0f}; {max_rss_mb:.0f}")],
}  # fmt: skip
TITLES = {
    "herd": "herd (agent lost)",
    "crash": "crash (machine lost)",
    "root": "root failover",
    "restart": "ensemble restart",
}


def _derived(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with their dicts rendered for the templates."""
    out = dict(figures)
    for key, value in figures.items():
        if not isinstance(value, dict):
            continue
        if "p50" in value:
            out[f"{key}_spread"] = "{p50:.2f} / {p99:.2f} / {max:.2f}".format_map(value)
        else:
            out[f"{key}_spread"] = "-"
            shown = sorted((k, v) for k, v in value.items() if v >= 0.005)
            out[f"{key}_kinds"] = ", ".join(f"{k} {v:.2f}" for k, v in shown)
    if "per_server" in figures:
        out["per_server_text"] = "  ".join(figures["per_server"])
    if "rss_mb" in figures:
        rss = figures["rss_mb"]
        out["rss_text"] = " + ".join(f"{r:.0f}" for r in rss) + f" = {sum(rss):.0f}"
    return out


def report(header: list[str], figures: dict[str, Any], checks: list, failed: str) -> str:
    """Header, one block of rows per phase that ran, the targets."""
    out = [*header, ""]
    if failed:
        out += [f"FAILED: {failed}", ""]
    rows: list[list[str]] = [["phase", "figure", "value"]]
    for phase, specs in ROWS.items():
        if phase not in figures:
            continue
        values = _derived(figures[phase])
        for i, (label, template) in enumerate(specs):
            rows.append([TITLES.get(phase, phase) if i == 0 else "", label,
                         template.format_map(values)])  # fmt: skip
    out += [table(rows), "", "targets:"]
    out += [f"  {'met ' if ok else 'MISSED'}  {name}: {detail}" for name, ok, detail in checks]
    return "\n".join(out)
