"""The Grafana dashboard and the Prometheus alert rules name only metrics and labels the services
export, and their expressions parse as PromQL."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import SERVICE_PORTS, load_settings
from tests.deploy.deploy_support import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = yaml.safe_load((MONITORING / "alerts.yaml").read_text("utf-8"))
DASHBOARD = json.loads((MONITORING / "dashboard.json").read_text("utf-8"))
# Grafana's variables, as Grafana substitutes them before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


@cache
def exported() -> dict[str, set[str]]:
    """Series name -> label names, for every metric the four apps serve on GET /metrics."""
    import asyncio
    import importlib

    async def scrape(name: str) -> str:
        app = importlib.import_module(f"services.{name}.app").create_app(
            load_settings(name), start_kafka=False
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        return response.text

    scraped = {service: asyncio.run(scrape(service)) for service in SERVICE_PORTS}
    # Label names from the metric objects: a labelled metric nobody observed yet has no sample.
    labels = {c._name: set(c._labelnames) for c in REGISTRY._collector_to_names if hasattr(c, "_labelnames")}  # type: ignore[attr-defined]
    series: dict[str, set[str]] = {}
    for text in scraped.values():
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("exportwatch_"):
                continue
            for suffix in SUFFIXES[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                series[
                    family.name + (suffix if suffix != "_total" or not family.name.endswith("_total") else "")
                ] = labels.get(family.name, labels.get(f"{family.name}_total", set())) | extra
    return series


def _expressions() -> list[tuple[str, str]]:
    found = [(f"alert {r['alert']}", r["expr"]) for g in RULES["groups"] for r in g["rules"]]
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found.append((f"panel {panel['title']!r}", expr))
    return found


def _selectors(expr: str) -> tuple[list[tuple[str, list[str]]], set[str]]:
    """(metric, matcher labels) of every selector, and every label an aggregation or match names."""
    selectors: list[tuple[str, list[str]]] = []
    grouping: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append((node.name or "", [m.name for m in node.matchers.matchers]))
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        if (
            isinstance(node, promql_parser.BinaryExpr)
            and node.modifier is not None
            and node.modifier.matching
        ):
            grouping.update(node.modifier.matching.labels)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selectors, grouping


def test_the_services_export_the_metrics_the_alerts_rely_on() -> None:
    series = exported()
    assert {
        "exportwatch_consumer_lag",
        "exportwatch_handler_seconds_bucket",
        "exportwatch_decisions_total",
    } <= set(series)
    assert series["exportwatch_consumer_lag"] == {"service", "topic", "partition"}


@pytest.mark.parametrize(("where", "expr"), _expressions())
def test_every_expression_parses_and_names_exported_metrics_and_labels(where: str, expr: str) -> None:
    series = exported()
    selectors, grouping = _selectors(expr)
    assert selectors, f"{where}: no metric"
    for name, matcher_labels in selectors:
        assert name in series, f"{where}: {name} is not a metric the services export"
        assert set(matcher_labels) <= series[name], (
            f"{where}: {name} has no label {set(matcher_labels) - series[name]}"
        )
    available = set().union(*(series[name] for name, _ in selectors))
    assert grouping <= available, f"{where}: groups by {grouping - available}, not labels of its metrics"


def test_an_unknown_metric_or_label_is_caught() -> None:
    series = exported()
    selectors, grouping = _selectors(
        'sum by (tenant) (rate(exportwatch_orders_lost_total{service="risk"}[5m]))'
    )
    assert selectors[0][0] not in series
    assert "tenant" not in series["exportwatch_events_in_total"] and grouping == {"tenant"}
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (service (exportwatch_consumer_lag)")


def test_rules_file_has_the_structure_prometheus_loads() -> None:
    assert set(RULES) == {"groups"}
    names = [g["name"] for g in RULES["groups"]]
    assert len(names) == len(set(names)) and all(names)
    alerts: list[str] = []
    for group in RULES["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"}
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str) and rule["alert"] and isinstance(rule["expr"], str)
            assert DURATION.match(str(rule.get("for", "0s")))
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert all(LABEL_NAME.match(k) and isinstance(v, str) for k, v in rule["labels"].items())
            assert {"summary", "description"} <= set(rule["annotations"])
            for text in rule["annotations"].values():
                assert text.count("{{") == text.count("}}"), f"{rule['alert']}: unbalanced template"
                for label in re.findall(r"\$labels\.(\w+)", text):
                    _, grouping = _selectors(rule["expr"])
                    assert label in grouping, (
                        f"{rule['alert']}: $labels.{label} is not kept by its expression"
                    )
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))


def test_alerts_cover_lag_dead_letters_handler_errors_and_reference_data_age() -> None:
    watched = {name for _, expr in _expressions()[: len(_alert_rules())] for name, _ in _selectors(expr)[0]}
    assert {
        "exportwatch_consumer_lag",
        "exportwatch_events_deadlettered_total",
        "exportwatch_handler_errors_total",
        "exportwatch_screening_list_age_seconds",
        "exportwatch_classifier_ccl_age_seconds",
    } <= watched


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in RULES["groups"] for r in g["rules"]]


def test_dashboard_shows_decisions_lag_latency_dead_letters_ages_backlog_auth_failures_and_outbox() -> None:
    panels = DASHBOARD["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    shown = {name for p in panels for t in p["targets"] for name, _ in _selectors(_grafana(t["expr"]))[0]}
    assert {
        "exportwatch_decisions_total",
        "exportwatch_consumer_lag",
        "exportwatch_handler_seconds_bucket",
        "exportwatch_events_deadlettered_total",
        "exportwatch_screening_list_age_seconds",
        "exportwatch_classifier_ccl_age_seconds",
        "exportwatch_review_backlog",
        "exportwatch_review_backlog_oldest_seconds",
        "exportwatch_auth_failures_total",
        "exportwatch_records_outbox_unpublished",
    } <= shown
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["refId"] for t in panel["targets"])
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert variables == {"datasource", "service"}


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr
