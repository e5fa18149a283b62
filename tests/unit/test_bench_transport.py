"""bench/pipeline/transport.py: its configurations and its median of ratios."""

from __future__ import annotations

from typing import Any

import pytest

from bench.pipeline.transport import Config, _median_ratios, parse_args


def test_a_configuration_names_settings_and_the_fetch_gathering() -> None:
    config = Config.parse("both:EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS=1000,gather_ms=5")
    assert config == Config("both", {"EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS": "1000"}, 5)
    assert Config.parse("base:") == Config("base", {}, 0)


@pytest.mark.parametrize("text", ["", ":X=1", "bad:PATH=/x", "bad:EXPORTWATCH_X"])
def test_a_malformed_configuration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Config.parse(text)


def test_duplicate_configuration_names_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--config", "a:", "--config", "a:gather_ms=5"])


def _run(rep: int, config: str, total: float, hops: float, broker: float) -> dict[str, Any]:
    return {
        "rep": rep,
        "config": config,
        "rate": 300.0,
        "total_cpu_ms_per_order": total,
        "hops_cpu_ms_per_order": hops,
        "cpu_ms_per_order": {"kafka broker": broker},
        "latency_ms": {"p99": 100.0},
    }


def test_each_configuration_is_compared_with_the_first_in_the_same_repetition() -> None:
    runs = [
        _run(0, "base", 2.0, 1.0, 1.0),
        _run(0, "new", 1.0, 0.5, 0.5),
        _run(1, "new", 3.0, 2.0, 1.0),  # a slow repetition for both: the ratio holds
        _run(1, "base", 4.0, 2.0, 2.0),
        _run(2, "base", 2.0, 1.0, 1.0),
        _run(2, "new", 2.2, 1.0, 1.2),
    ]
    summary = _median_ratios(runs, [Config("base", {}), Config("new", {})], [300.0])
    assert summary["new @300/s"]["total_cpu_ms_per_order_ratio"] == {"median": 0.75, "all": [0.5, 0.75, 1.1]}
    assert summary["new @300/s"]["total_cpu_ms_per_order"]["median"] == 2.2
    assert "total_cpu_ms_per_order_ratio" not in summary["base @300/s"]
