"""What reading and writing one event costs, per stage, on the events a pipeline run produced.

`python -m bench.pipeline.codec [--db var/bench/pipeline/sqlite/records.db] [--events 1000]`

Reads the bytes records kept of each stage's events (`trail_steps.payload_raw`, exactly as they
went over the bus) and times, in this one process, what the services do with them:
- `json.loads` (shared/codec.py `decode_json`) and then `model_validate` of the dict, as the stages
  did before they read in one pass; against `model_validate_json` of the bytes, and `read_event`
  (shared/codec.py: that one pass, with the refusals of decode_json kept), as they do now;
- of that validation, the part that is the submitted order validated once more inside every
  envelope (`SubmittedOrder.model_validate` of `order`);
- `envelope_dump` (the wire form a stage publishes) and `json.dumps` of the dict (what records'
  JSON column does with the payload it stores).
Each figure is CPU time of this process in microseconds per event: for every 50 events the best
of `--repeat` passes, added up.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench import RESULTS_DIR, write_results
from shared.codec import decode_json, read_event
from shared.events import ClassifiedOrder, DecidedOrder, ScreenedOrder, SubmittedOrder, envelope_dump
from shared.kafka import Incoming

STAGES: dict[str, type[BaseModel]] = {
    "submitted": SubmittedOrder,
    "classified": ClassifiedOrder,
    "screened": ScreenedOrder,
    "decided": DecidedOrder,
}


def _best_us(fn: Callable[[Any], object], items: list[Any], repeat: int) -> float:
    # CPU time of this process, not wall time: on a shared machine, time spent preempted by other
    # work is not the operation's. The best of `repeat` passes, chunk by chunk.
    total = 0
    for start in range(0, len(items), 50):
        chunk = items[start : start + 50]
        best = None
        for _ in range(repeat):
            started = time.process_time_ns()
            for item in chunk:
                fn(item)
            elapsed = time.process_time_ns() - started
            best = elapsed if best is None else min(best, elapsed)
        total += best or 0
    return round(total / 1000 / len(items), 1)


def measure(raws: list[bytes], model: type[BaseModel], repeat: int) -> dict[str, float]:
    dicts = [json.loads(raw) for raw in raws]
    messages = [Incoming("bench", 0, n, None, raw, 0) for n, raw in enumerate(raws)]
    models = [model.model_validate(d) for d in dicts]
    figures = {
        "bytes": round(sum(len(r) for r in raws) / len(raws)),
        "json_loads": _best_us(json.loads, raws, repeat),
        "model_validate": _best_us(model.model_validate, dicts, repeat),
        "model_validate_json": _best_us(model.model_validate_json, raws, repeat),
        "decode_json_then_validate": _best_us(
            lambda m: model.model_validate(decode_json(m)), messages, repeat
        ),
        "read_event": _best_us(lambda m: read_event(m, model), messages, repeat),
        "envelope_dump": _best_us(envelope_dump, models, repeat),
        "json_dumps_payload": _best_us(json.dumps, dicts, repeat),
    }
    if model is not SubmittedOrder:
        orders = [d["order"] for d in dicts]
        figures["order_revalidated"] = _best_us(SubmittedOrder.model_validate, orders, repeat)
    figures["loads_then_validate"] = round(figures["json_loads"] + figures["model_validate"], 1)
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline.codec",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", type=Path, default=RESULTS_DIR / "pipeline" / "sqlite" / "records.db")
    parser.add_argument("--events", type=int, default=1000, help="events per stage")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.db.is_file():
        print(f"{args.db}: no records database; run `make bench-pipeline BENCH_ARGS='--db sqlite'` first")
        return 2
    connection = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    results: dict[str, Any] = {"database": str(args.db), "events_per_stage": args.events, "stages": {}}
    try:
        for stage, model in STAGES.items():
            raws = [
                bytes(row[0])
                for row in connection.execute(
                    "SELECT payload_raw FROM trail_steps WHERE stage = ? ORDER BY id LIMIT ?",
                    (stage, args.events),
                )
            ]
            if raws:
                results["stages"][stage] = measure(raws, model, args.repeat)
    finally:
        connection.close()
    path = write_results("pipeline-codec", results)
    columns = [
        "bytes",
        "json_loads",
        "model_validate",
        "loads_then_validate",
        "model_validate_json",
        "decode_json_then_validate",
        "read_event",
        "order_revalidated",
        "envelope_dump",
        "json_dumps_payload",
    ]
    print("| stage | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---:" for _ in columns) + " |")
    for stage, figures in results["stages"].items():
        print(f"| {stage} | " + " | ".join(str(figures.get(c, "")) for c in columns) + " |")
    print(f"microseconds per event (bytes: mean size); results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
