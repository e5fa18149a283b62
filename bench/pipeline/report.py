"""Figures of a phase from what the load driver saw, and the readable summary of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.pipeline.load import (
    EMBARGO_CODES,
    LIST_CODES,
    PhaseOutcome,
    RecordsPoller,
    TopicWatcher,
    percentiles,
    throughput,
)
from bench.pipeline.procstat import CpuSnapshot, cpu_between


def phase_figures(
    outcome: PhaseOutcome,
    decided: TopicWatcher,
    poller: RecordsPoller | None,
    before: CpuSnapshot,
    after: CpuSnapshot,
    *,
    hops: Mapping[str, TopicWatcher] | None = None,
) -> dict[str, Any]:
    ids = [o.order_id for o in outcome.orders]
    submitted = outcome.submitted
    first = min(submitted.values())
    arrived = {i: decided.arrived[i] for i in ids if i in decided.arrived}
    figures: dict[str, Any] = {
        "orders": len(ids),
        "offered_per_s": outcome.offered_rate,
        "offered_in_s": round(outcome.send_seconds, 2),
        "complete": outcome.finished,
        "stalled_after_s": outcome.stalled_after,
        "decided": len(arrived),
        "decided_throughput": throughput(first, [d.at for d in arrived.values()]),
        "latency_ms": {"submit_to_decided": percentiles([d.at - submitted[i] for i, d in arrived.items()])},
    }
    if poller is not None:
        recorded = {i: poller.recorded[i] for i in ids if i in poller.recorded}
        expected = {o.order_id: o.decided_event_id for o in outcome.orders}
        figures["recorded"] = len(recorded)
        figures["recorded_throughput"] = throughput(first, [r.at for r in recorded.values()])
        figures["latency_ms"]["submit_to_recorded"] = percentiles(
            [r.at - submitted[i] for i, r in recorded.items()]
        )
        # every step of every order (submitted, classified, screened, decided): records' whole work
        figures["trail_complete_per_s"] = (
            round(len(ids) / (outcome.trail_complete_at - first), 1) if outcome.trail_complete_at else None
        )
        figures["latency_ms"]["submit_to_recorded_observed"] = percentiles(
            [r.observed - submitted[i] for i, r in recorded.items()]
        )
        figures["checks"] = {
            # records holds the decision of this very order version, and the same decision the
            # ERP heard on orders.decided.v1
            "recorded_wrong_event": sum(1 for i, r in recorded.items() if r.decided_event_id != expected[i]),
            "recorded_other_decision": sum(
                1 for i, r in recorded.items() if i in arrived and arrived[i].decision != r.decision
            ),
        }
    if hops:
        figures["hops_ms"] = hop_latencies(outcome, {**hops, "decided": decided}, poller)
    figures["decisions"] = _count(d.decision for d in arrived.values())
    figures["hits_realised"] = _hits(outcome, arrived)
    split = cpu_between(before, after)
    cpu = {name: user + system for name, (user, system) in split.items()}
    wall = after.wall - before.wall
    busy = after.machine_busy - before.machine_busy
    ours = sum(cpu.values())
    figures["cpu_seconds"] = {name: round(seconds, 2) for name, seconds in cpu.items()}
    figures["cpu_ms_per_order"] = {name: round(1000 * seconds / len(ids), 3) for name, seconds in cpu.items()}
    # the kernel's share (system calls: sends, futex wake-ups, writes and syncs)
    figures["cpu_system_share"] = {
        name: round(system / (user + system), 2)
        for name, (user, system) in split.items()
        if user + system > 0
    }
    figures["machine"] = {
        "wall_s": round(wall, 2),
        "busy_cores": round(busy / wall, 2) if wall > 0 else None,
        "ours_cores": round(ours / wall, 2) if wall > 0 else None,
        # CPU the machine spent on work other than this bench's processes: other engineers' jobs.
        "others_cores": round(max(0.0, busy - ours) / wall, 2) if wall > 0 else None,
    }
    return figures


def hop_latencies(
    outcome: PhaseOutcome, stages: Mapping[str, TopicWatcher], poller: RecordsPoller | None
) -> dict[str, dict[str, float | None]]:
    """Each hop's share of the way from submit to recorded: from the previous output's Kafka
    timestamp (CreateTime: when its stage handed it to the producer; the order's submit time for the
    first) to the next one's, and from the decision's to records' row. A stage's hop holds its wait
    in the consumer's fetch, its queue and its handling; the clocks are this one machine's."""
    out: dict[str, dict[str, float | None]] = {}
    previous = {o.order_id: outcome.submitted[o.order_id] for o in outcome.orders}
    for name, watcher in stages.items():
        seen = {i: watcher.arrived[i].produced for i in previous if i in watcher.arrived}
        out[f"to_{name}"] = percentiles([at - previous[i] for i, at in seen.items()])
        previous = seen
    if poller is not None:
        out["to_recorded"] = percentiles(
            [poller.recorded[i].at - at for i, at in previous.items() if i in poller.recorded]
        )
    return out


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def _hits(outcome: PhaseOutcome, arrived: dict[str, Any]) -> dict[str, Any]:
    """Each intended hit against what the pipeline found: a listed party is found when screening
    matched a party of the order (or a list reason was given), an embargo when the decision says
    EMBARGOED_DESTINATION; for the orders meant to be clean, how many were found anyway (a faker
    name that is, or resembles, a listed one)."""
    out: dict[str, dict[str, int]] = {}
    for order in outcome.orders:
        decided = arrived.get(order.order_id)
        if decided is None:
            continue
        row = out.setdefault(order.hit, {"orders": 0, "hit": 0})
        row["orders"] += 1
        listed = decided.matched or bool(decided.codes & LIST_CODES)
        embargo = bool(decided.codes & EMBARGO_CODES)
        row["hit"] += (
            embargo if order.hit == "embargo" else listed if order.hit != "none" else listed or embargo
        )
    return dict(sorted(out.items()))


# --- the readable summary ---------------------------------------------------------------------------


def _lat(phase: dict[str, Any] | None, key: str) -> str:
    if phase is None:
        return "-"
    lat = phase["latency_ms"].get(key)
    if not lat or lat["p50"] is None:
        return "-"
    return f"{lat['p50']:,.0f} / {lat['p95']:,.0f} / {lat['p99']:,.0f}"


def _rate(phase: dict[str, Any] | None, key: str) -> str:
    if phase is None or key not in phase or phase[key]["per_s"] is None:
        return "-"
    t = phase[key]
    steady = f" (steady {t['steady_per_s']:,.0f})" if t["steady_per_s"] else ""
    return f"{t['per_s']:,.0f}{steady}"


def _pipeline_cpu(phase: dict[str, Any]) -> float:
    """CPU ms an order of everything but the load driver (a paced order costs more than one in a
    backlog: every poll, request and commit carries fewer orders)."""
    return float(sum(ms for name, ms in phase["cpu_ms_per_order"].items() if not name.startswith("bench")))


def summary(results: dict[str, Any]) -> str:
    runs: dict[str, Any] = results["runs"]
    relay = results.get("relay")
    cols = list(runs) + (["relay"] if relay else [])
    lines = [
        f"| | {' | '.join(cols)} |",
        f"| --- | {' | '.join('---:' for _ in cols)} |",
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | {' | '.join(cells)} |")

    sat = {db: run["phases"].get("saturation") for db, run in runs.items()}
    paced = {db: run["phases"].get("paced") for db, run in runs.items()}
    relay_sat = relay["phases"]["saturation"] if relay else None
    relay_paced = relay["phases"].get("paced") if relay else None
    rate = results["options"]["rate"]
    extra = [_rate(relay_sat, "relayed_throughput")] if relay else []
    row("decided/s at saturation (relayed/s)", [_rate(sat[db], "decided_throughput") for db in runs] + extra)
    row(
        "recorded/s at saturation",
        [_rate(sat[db], "recorded_throughput") for db in runs] + ([""] if relay else []),
    )
    ratios = results.get("decided_over_relay", {})
    row(
        "decided/relay",
        [f"{ratios[db]:.2f}" if db in ratios else "-" for db in runs] + ([""] if relay else []),
    )
    row(
        f"@{rate:g}/s offered: decided/s, recorded/s",
        [
            f"{paced[db]['decided_throughput']['per_s']:,.0f}, {paced[db]['recorded_throughput']['per_s']:,.0f}"
            if paced[db]
            else "-"
            for db in runs
        ]
        + ([""] if relay else []),
    )
    for label, phases, key in (
        (f"submit→decided p50/p95/p99 ms @{rate:g}/s", paced, "submit_to_decided"),
        (f"submit→recorded p50/p95/p99 ms @{rate:g}/s", paced, "submit_to_recorded"),
        ("submit→decided p50/p95/p99 ms @saturation", sat, "submit_to_decided"),
        ("submit→recorded p50/p95/p99 ms @saturation", sat, "submit_to_recorded"),
    ):
        relay_phase = relay_sat if phases is sat else relay_paced
        relay_cell = (
            [_lat(relay_phase, "submit_to_relayed") if key == "submit_to_decided" else ""] if relay else []
        )
        row(label, [_lat(phases[db], key) for db in runs] + relay_cell)
    hops = list(next((p["hops_ms"] for p in paced.values() if p and "hops_ms" in p), {}))
    for hop in hops:
        row(
            f"hop {hop.removeprefix('to_')} p50/p95/p99 ms @{rate:g}/s",
            [_lat({"latency_ms": paced[db]["hops_ms"]}, hop) if paced[db] else "-" for db in runs]
            + ([""] if relay else []),
        )
    row(
        f"CPU ms/order @{rate:g}/s: all services and the broker",
        [f"{_pipeline_cpu(paced[db]):.2f}" if paced[db] else "-" for db in runs]
        + ([f"{_pipeline_cpu(relay_paced):.2f}" if relay_paced else "-"] if relay else []),
    )
    names: list[str] = []
    for phase in [*sat.values(), relay_sat]:
        for name in (phase or {}).get("cpu_ms_per_order", {}):
            if name not in names:
                names.append(name)
    for name in names:
        cells = [
            f"{sat[db]['cpu_ms_per_order'][name]:.2f}"
            if sat[db] and name in sat[db]["cpu_ms_per_order"]
            else ""
            for db in runs
        ]
        if relay:
            per = relay_sat["cpu_ms_per_order"] if relay_sat else {}
            cells.append(f"{per[name]:.2f}" if name in per else "")
        row(f"CPU ms/order: {name}", cells)
    services = sorted({name for run in runs.values() for name in run.get("peak_rss_mib", {})})
    for name in services:
        row(
            f"peak RSS MiB: {name}",
            [str(run.get("peak_rss_mib", {}).get(name, "")) for run in runs.values()]
            + ([""] if relay else []),
        )
    row(
        "machine cores busy (others') at saturation",
        [
            f"{sat[db]['machine']['busy_cores']} ({sat[db]['machine']['others_cores']})" if sat[db] else "-"
            for db in runs
        ]
        + (
            [f"{relay_sat['machine']['busy_cores']} ({relay_sat['machine']['others_cores']})"]
            if relay_sat
            else []
        ),
    )
    return "\n".join(lines)
