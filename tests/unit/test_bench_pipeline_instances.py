"""The pipeline bench's scale-out option: how many instances it may start, and how their CPU is
counted (the run itself is tests/integration/test_bench_pipeline.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.pipeline.__main__ import instance_name, parse_args, watch_services


def test_instances_default_to_one_and_may_not_outnumber_the_partitions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse_args([]).instances == 1
    assert parse_args(["--instances", "2"]).instances == 2
    with pytest.raises(SystemExit):
        parse_args(["--instances", "4", "--partitions", "3"])
    assert "--instances 4: must be 1 to --partitions (3)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--instances", "0"])


def test_a_baseline_run_takes_settings_by_name_and_the_overlap_baseline_is_one_of_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse_args([]).baseline_env == []
    assert parse_args(["--overlap-baseline"]).baseline_env == ["EXPORTWATCH_CONSUMER_OVERLAP=false"]
    args = parse_args(["--baseline-env", "EXPORTWATCH_KAFKA_COMPRESSION=lz4", "--baseline-env", "KAFKA_X=1"])
    assert args.baseline_env == ["EXPORTWATCH_KAFKA_COMPRESSION=lz4", "KAFKA_X=1"]
    for bad in ("EXPORTWATCH_KAFKA_COMPRESSION", "PATH=/tmp", "exportwatch_x=1"):
        with pytest.raises(SystemExit):
            parse_args(["--baseline-env", bad])
        assert f"--baseline-env {bad!r}: expected NAME=VALUE" in capsys.readouterr().err


@dataclass
class _Process:
    pid: int


@dataclass
class _Service:
    process: _Process
    extra: dict[str, Any] = field(default_factory=dict)


def test_the_cpu_of_every_instance_of_a_service_is_counted_under_its_name() -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.35: pass\ntime.sleep(60)"
    busy = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    try:
        services = {
            "risk": _Service(_Process(busy[0].pid)),
            instance_name("risk", 2): _Service(_Process(busy[1].pid)),
            "records": _Service(_Process(os.getpid())),
        }
        watched = watch_services(services)  # type: ignore[arg-type]
        assert [(w.name, w.pid, w.also) for w in watched] == [
            ("risk", busy[0].pid, (busy[1].pid,)),
            ("records", os.getpid(), ()),
        ]
        risk = watched[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            len(risk.cpu()) == 2 and all(user + system >= 0.3 for user, system in risk.cpu().values())
        ):
            time.sleep(0.1)
        # Both instances' CPU, under the service's one name.
        assert sorted(risk.cpu()) == sorted(p.pid for p in busy)
        assert sum(user + system for user, system in risk.cpu().values()) >= 0.6
    finally:
        for process in busy:
            process.kill()
            process.wait()
