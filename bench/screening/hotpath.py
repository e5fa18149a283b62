"""The matcher's hot path, looked at from outside: the speed bench's names screened once at first
sight in a fresh process, each name's time by script and length, and every answer written out so
that two builds of the matcher can be compared answer for answer.

    python -m bench.screening.hotpath queries var/bench/hot-queries.json
    python -m bench.screening.hotpath run var/bench/hot-queries.json --answers var/bench/answers.jsonl
    diff var/bench/answers-before.jsonl var/bench/answers.jsonl   # no output: no answer changed

`queries` writes the speed bench's stream (the names `python -m bench.screening` times: seed
SEED + 1, one listed name in five) and, after it, the first set's labelled names (seed SEED:
perturbed listed names of every kind and clean names of 55 locales), built in this process.
`run` screens them in a fresh process, pinned to one core, caches empty as the speed bench's are:
the first `--timed` names are timed (the speed stream) and reported by script and by length; every
name's answer is written, one JSON line a name: the matcher's raw matches down to `--floor`
(entry, matched name, name score, token pairs, unmatched tokens, unexplained shares, country
agreement) and the service's matches with their evidence (`Screener.screen_name`).
Run under `py-spy record --native` or `valgrind --tool=callgrind` for a profile of the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

SPEED_QUERIES = 5000


def _load() -> Any:
    from services.screening.app import load_screening
    from shared.settings import Settings

    _catalog, screener = load_screening(Settings())
    return screener


def write_queries(path: Path, speed_queries: int = SPEED_QUERIES) -> None:
    """The speed bench's stream (as bench/screening/__main__.py builds it), then the first set's names."""
    from bench.screening.labelled import SEED, negative_set, negatives, positives

    index = _load().matcher
    rng = random.Random(SEED + 1)
    fresh_pos = positives(index, sources=max(1, speed_queries // 20), seed=SEED + 1)
    fresh_neg = negatives(index, count=speed_queries, seed=SEED + 1)
    mix = [n.query for n in fresh_neg][: speed_queries * 4 // 5]
    mix += [p.query for p in fresh_pos][: speed_queries - len(mix)]
    rng.shuffle(mix)
    labelled = [p.query for p in positives(index, sources=700)]
    labelled += [n.query for n in negative_set(index, count=6000).negatives]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"timed": len(mix), "queries": [*mix, *labelled]}, ensure_ascii=False))


def _raw(match: Any) -> dict[str, Any]:
    s = match.name_score
    return {
        "entry": [match.entry.source_id, match.entry.list_id, match.entry.entry_id],
        "name": match.matched_name,
        "alias": match.matched_alias,
        "weak": match.weak_alias,
        "score": s.score,
        "pairs": s.pairs,
        "unmatched": [s.unmatched_query, s.unmatched_listed],
        "unexplained": [s.query_unexplained, s.listed_unexplained],
        "country": match.country_agreement,
    }


def _length_class(name: str) -> str:
    words = len(name.split())
    return f"{words} words" if words < 5 else "5+ words"


def run(path: Path, answers: Path | None, floor: float) -> dict[str, Any]:
    from bench.screening.labelled import script_of
    from services.screening import MATCHER_BUILD
    from services.screening.index import NameQuery

    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    data = json.loads(path.read_text())
    queries: list[str] = data["queries"]
    timed: int = data["timed"]
    # The garbage collector as the service's process sets it (shared/service.py `run_service`).
    import gc

    from shared.service import freeze_heap
    from shared.settings import Settings

    young = Settings().gc_young_threshold
    if young:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)
    screener = _load()
    freeze_heap()
    # Under `valgrind --tool=callgrind --instr-atstart=no`: the profile starts here, once
    # `callgrind_control -i on` has been run and this file made (the loading is not profiled).
    ready = os.environ.get("HOTPATH_START_FILE")
    if ready:
        print(f"loaded, pid {os.getpid()}: waiting for {ready}", file=sys.stderr, flush=True)
        while not os.path.exists(ready):
            time.sleep(0.2)
    # The speed bench's first sight: every name once, nothing remembered from before.
    latencies: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for query in queries[:timed]:
        t0 = time.perf_counter_ns()
        screener.screen_name(query)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    groups: dict[str, list[float]] = defaultdict(list)
    for query, ms in zip(queries[:timed], latencies, strict=True):
        groups[f"script {script_of(query)}"].append(ms)
        groups[f"length {_length_class(query)}"].append(ms)
    total = sum(latencies)
    ranked = sorted(latencies, reverse=True)
    report: dict[str, Any] = {
        "build": MATCHER_BUILD.build,
        "names": timed,
        "parties_per_second": round(timed / seconds),
        # On a shared host the CPU time is the steadier figure: waiting for a core is not counted.
        "parties_per_cpu_second": round(timed / cpu_seconds),
        "p50_ms": round(statistics.median(latencies), 3),
        "slowest_tenth_share_of_time": round(sum(ranked[: timed // 10]) / total, 3),
        "by_group": {
            key: {
                "names": len(values),
                "share_of_names": round(len(values) / timed, 3),
                "share_of_time": round(sum(values) / total, 3),
                "mean_ms": round(statistics.fmean(values), 3),
            }
            for key, values in sorted(groups.items())
        },
        "slowest": [
            {"name": q, "ms": round(ms, 2)}
            for q, ms in sorted(zip(queries[:timed], latencies, strict=True), key=lambda x: -x[1])[:15]
        ],
    }
    if answers is not None:
        min_score = round(floor - screener.policy.calibration.lift, 4)
        with answers.open("w") as out:
            for query in queries:
                raw = screener.matcher.match(NameQuery.of(query), min_score=min_score)
                served = [m.model_dump(mode="json") for m in screener.screen_name(query)]
                line = {"query": query, "raw": [_raw(m) for m in raw], "served": served}
                out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screening.hotpath")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("queries", help="write the speed stream and the first set's names")
    make.add_argument("path", type=Path)
    screen = sub.add_parser("run", help="screen them in this fresh process: times, and answers")
    screen.add_argument("path", type=Path)
    screen.add_argument("--answers", type=Path, help="write every name's answers here (JSON lines)")
    screen.add_argument("--floor", type=float, default=0.75, help="raw matches down to this score")
    args = parser.parse_args(argv)
    if args.command == "queries":
        write_queries(args.path)
        return 0
    print(json.dumps(run(args.path, args.answers, args.floor), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
