"""`python -m bench.screening.calibrate`: fits the screening matcher's calibrated signals
(services/screening/calibration.py) on tuning data only, and reports what they do there.

Tuning data (docs/benchmarks.md, "Protocol of issue #14's seventh round"): the seventh draw's tuning
half of the independent set (with more clean names a source than the bench reports: the first ones
are the bench's), both halves of its first to sixth draws, and the first set's calibration seed
777. The seventh draw's held-out half is never built here; the first set's reporting
seed 20261130 and seed 4242 are not read either.

Method: every candidate the matcher finds for a tuning party at a name score of FLOOR or more, with
its signals. A logistic regression of "this candidate is the listed party" (a positive's entry: 1;
any candidate of a clean name: 0; a positive's other candidates are left out) on (name score -
review threshold) and the signals, without a free intercept, so that probability one half falls
where the calibrated score meets the review threshold; each signal's coefficient divided by the
name score's is its contribution in score units. L2-regularised (`--l2`); the clean names weigh
`--negative-weight` each against a positive's one, the single knob that trades recall for false
hits, chosen on the tuning data's figures. `--write` stores the coefficients in policy/policy.json.

Data of one collection are kept in var/bench/calibration-data.pkl (`--reuse` reads them back) so
that refits need no matching.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import RESULTS_DIR
from bench.screening import independent
from bench.screening.labelled import SEED, negative_set, positives
from services.screening.calibration import SIGNALS, Calibration, calibrated_score

FLOOR = 0.75
CALIBRATION_SEED = 777  # the first set's calibration seed (bench/screening/__main__.py OTHER_SEEDS)
OTHER_SEEDS = (777, 4242)
DATA = RESULTS_DIR / "calibration-data.pkl"
POLICY = Path(__file__).resolve().parents[2] / "policy" / "policy.json"


@dataclass(frozen=True)
class Candidate:
    key: tuple[str, str]
    name_score: float
    values: tuple[float, ...]  # in SIGNALS order


@dataclass(frozen=True)
class Labelled:
    corpus: str
    kind: str  # perturbation class, or "clean:<source>"
    positive: bool
    acceptable: frozenset[tuple[str, str]]
    candidates: tuple[Candidate, ...]


def _collect(
    screener: Any,
    parties: Iterable[tuple[str, str, str | None, bool, frozenset[tuple[str, str]]]],
    corpus: str,
) -> list[Labelled]:
    from services.screening.index import NameQuery

    out: list[Labelled] = []
    for kind, query_text, country, positive, acceptable in parties:
        query = NameQuery.of(query_text, country)
        candidates = []
        for found in screener.matcher.match(query, min_score=FLOOR):
            values = screener.signal_values(query, found)
            candidates.append(
                Candidate(
                    (found.entry.list_id, found.entry.entry_id),
                    found.name_score.score,
                    tuple(values[s] for s in SIGNALS),
                )
            )
        out.append(Labelled(corpus, kind, positive, acceptable, tuple(candidates)))
    return out


def collect(screener: Any) -> list[Labelled]:
    index = screener.matcher
    started = time.perf_counter()
    data: list[Labelled] = []
    first_pos = positives(index, sources=700, seed=CALIBRATION_SEED)
    first_neg = negative_set(index, count=6000, seed=CALIBRATION_SEED).negatives
    data += _collect(
        screener,
        [(p.kind, p.query, None, True, p.acceptable) for p in first_pos]
        + [("clean:faker", n.query, None, False, frozenset()) for n in first_neg],
        f"first set seed {CALIBRATION_SEED}",
    )
    print(
        f"first set seed {CALIBRATION_SEED}: {len(data)} parties ({time.perf_counter() - started:.0f}s)",
        flush=True,
    )
    used = {
        key
        for seed in (SEED, *OTHER_SEEDS)
        for p in positives(index, sources=700, seed=seed)
        for key in p.acceptable
    }
    first, second, third, fourth, fifth, sixth, seventh = independent.draws(
        index.entries, used_entries=used, halves=("tuning",), negatives_per_source=4000
    )
    for name, labelled, halves in (
        ("first draw", first, independent.HALVES),
        ("second draw", second, independent.HALVES),
        ("third draw", third, independent.HALVES),
        ("fourth draw", fourth, independent.HALVES),
        ("fifth draw", fifth, independent.HALVES),
        ("sixth draw", sixth, independent.HALVES),
        ("seventh draw", seventh, ("tuning",)),
    ):
        for half in halves:
            pos, neg = labelled.half(half)
            data += _collect(
                screener,
                [(p.kind, p.query, p.country, True, p.acceptable) for p in pos]
                + [(f"clean:{n.kind}", n.query, n.country, False, frozenset()) for n in neg],
                f"{name} {half}",
            )
            print(
                f"{name} {half}: {len(pos)} + {len(neg)} parties ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    return data


# --- the fit ------------------------------------------------------------------------------------------


def design(
    data: Sequence[Labelled], review: float, negative_weight: float, kept: Sequence[str] = SIGNALS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The name score's distance to review and the `kept` signals' values (the others left out)."""
    columns = [SIGNALS.index(name) for name in kept]
    rows: list[list[float]] = []
    labels: list[float] = []
    weights: list[float] = []
    for party in data:
        if party.positive:
            mine = [c for c in party.candidates if c.key in party.acceptable]
            if not mine:
                continue
            best = max(mine, key=lambda c: c.name_score)
            rows.append([best.name_score - review, *(best.values[i] for i in columns)])
            labels.append(1.0)
            weights.append(1.0)
        else:
            for c in party.candidates:
                rows.append([c.name_score - review, *(c.values[i] for i in columns)])
                labels.append(0.0)
                weights.append(negative_weight)
    return np.array(rows), np.array(labels), np.array(weights)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Weighted logistic regression without intercept by Newton's method, L2 on the signals only."""
    beta = np.zeros(x.shape[1])
    beta[0] = 20.0
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (w * (y - p)) - penalty * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def coefficients(beta: np.ndarray, kept: Sequence[str] = SIGNALS) -> dict[str, float]:
    return {name: round(float(beta[i + 1] / beta[0]), 4) for i, name in enumerate(kept)}


# --- the figures -------------------------------------------------------------------------------------


def figures(
    data: Sequence[Labelled], calibration: Calibration, review: float, cap: int = 5
) -> dict[str, dict[str, Any]]:
    """Per corpus: recall by class and false hits by source, at `review`, as the bench counts them."""
    found: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for party in data:
        scores: dict[tuple[str, str], float] = {}
        for c in party.candidates:
            score, _ = calibrated_score(
                c.name_score, dict(zip(SIGNALS, c.values, strict=True)), calibration, review
            )
            if score >= review:
                scores[c.key] = max(score, scores.get(c.key, 0.0))
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:cap]
        hit = any(key in party.acceptable for key, _ in ranked) if party.positive else bool(ranked)
        found[party.corpus][party.kind].append(hit)
    out: dict[str, dict[str, Any]] = {}
    for corpus, kinds in found.items():
        pos = {k: v for k, v in kinds.items() if not k.startswith("clean:")}
        neg = {k: v for k, v in kinds.items() if k.startswith("clean:")}
        out[corpus] = {
            "recall": sum(map(sum, pos.values())) / max(1, sum(map(len, pos.values()))),
            "false_hits": sum(map(sum, neg.values())) / max(1, sum(map(len, neg.values()))),
            "by_class": {k: sum(v) / len(v) for k, v in pos.items()},
            "by_source": {k: sum(v) / len(v) for k, v in neg.items()},
        }
    return out


def pooled(data: Sequence[Labelled], calibration: Calibration, review: float) -> tuple[float, float]:
    """Recall and false hits over every tuning corpus together (each party counted once)."""
    result = figures([dataclasses.replace(p, corpus="all") for p in data], calibration, review)["all"]
    return result["recall"], result["false_hits"]


def report(result: dict[str, dict[str, Any]]) -> None:
    for corpus, f in result.items():
        low = {k: round(100 * v, 2) for k, v in f["by_class"].items() if v < 0.97}
        sources = {k[6:]: round(100 * v, 2) for k, v in f["by_source"].items()}
        print(
            f"  {corpus}: recall {100 * f['recall']:.2f}%, false hits {100 * f['false_hits']:.2f}% {sources}; under 97%: {low}"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screening.calibrate")
    parser.add_argument("--reuse", action="store_true", help="the data of the last collection")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument(
        "--lift", type=float, default=0.0, help="how far under review evidence may lift a name"
    )
    parser.add_argument("--negative-weight", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument(
        "--write", type=float, metavar="NEGATIVE_WEIGHT", help="store the fit with this weight"
    )
    parser.add_argument("--version", default="", help="the calibration's version (with --write)")
    parser.add_argument(
        "--drop", nargs="*", default=[], choices=SIGNALS, help="signals left out of the fit (an ablation)"
    )
    args = parser.parse_args(argv)

    policy = json.loads(POLICY.read_text(encoding="utf-8"))
    review = float(policy["screening"]["review_threshold"])
    if args.reuse:
        with DATA.open("rb") as handle:
            data: list[Labelled] = pickle.load(handle)
        if data and any(len(c.values) != len(SIGNALS) for p in data for c in p.candidates[:1]):
            raise SystemExit(f"{DATA} was collected with other signals: collect again (without --reuse)")
    else:
        from services.screening.app import load_screening
        from shared.settings import Settings

        _, screener = load_screening(Settings())
        screener = dataclasses.replace(
            screener, policy=dataclasses.replace(screener.policy, calibration=Calibration())
        )
        data = collect(screener)
        DATA.parent.mkdir(parents=True, exist_ok=True)
        with DATA.open("wb") as handle:
            pickle.dump(data, handle)
    print("uncalibrated (name score alone):")
    report(figures(data, Calibration(), review))
    fits: dict[float, dict[str, float]] = {}
    for weight in sorted({*args.negative_weight, *([args.write] if args.write else [])}):
        kept = [name for name in SIGNALS if name not in args.drop]
        x, y, w = design(data, review, weight, kept)
        beta = fit(x, y, w, args.l2)
        fits[weight] = coefficients(beta, kept)
        print(f"negative weight {weight}: name x{beta[0]:.1f}, {fits[weight]}")
        fitted = Calibration("fit", fits[weight], args.lift)
        report(figures(data, fitted, review))
        recall, false_hits = pooled(data, fitted, review)
        print(
            f"  all tuning corpora together: recall {100 * recall:.2f}%, false hits {100 * false_hits:.3f}%"
        )
    if args.write is not None:
        section = policy["screening"]
        section["calibration"] = {
            "version": args.version or time.strftime("%Y.%m.%d"),
            "fitted_on": (
                "tuning data only: the independent set's seventh draw, tuning half (4,000 clean names a source), "
                f"its first to sixth draws (both halves), the first set's seed {CALIBRATION_SEED}; "
                "logistic regression, "
                f"L2 {args.l2}, clean names weighing {args.write} (python -m bench.screening.calibrate)"
            ),
            "lift": args.lift,
            "coefficients": fits[args.write],
        }
        POLICY.write_text(json.dumps(policy, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {POLICY}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
