"""`python -m bench.screening.name_ranks`: writes services/screening/name_ranks.txt, the world
commonness of first and last names the matcher's calibrated signals read (`common_words`).

From names-dataset 3.3.1 (first and last names with their rank in each of 105 countries): every
name ranked within RANK_LIMIT in some country, as the matcher's normaliser writes it, with its best
rank, in bands (one line each: the band's highest rank, a tab, the words). Only the rank is kept:
no name is a person, and no count is personal data.
"""

from __future__ import annotations

import gzip
import pickle
import sys
from pathlib import Path

from services.screening.normalise import analyse_name

RANK_LIMIT = 1000
BANDS = (3, 10, 30, 100, 300, 1000)
OUT = Path(__file__).resolve().parents[2] / "services" / "screening" / "name_ranks.txt"


def best_ranks() -> dict[str, int]:
    import names_dataset

    folder = Path(names_dataset.__file__).parent / "v3"
    best: dict[str, int] = {}
    for part in ("first_names", "last_names"):
        with gzip.open(folder / f"{part}.pkl.gz") as handle:
            names: dict[str, dict[str, dict[str, float]]] = pickle.load(handle)
        for name, info in names.items():
            rank = min(info.get("rank", {}).values(), default=None)
            if rank is None or rank > RANK_LIMIT:
                continue
            for token in analyse_name(name, entity=False, reorder=False).tokens:
                if (
                    token.isascii()
                    and token.isalpha()
                    and len(token) >= 3
                    and best.get(token, RANK_LIMIT + 1) > rank
                ):
                    best[token] = int(rank)
        del names
    return best


def main(argv: list[str]) -> int:
    best = best_ranks()
    lines = [
        "# World commonness of first and last names: the band's highest rank, a tab, the names ranked within it in",
        "# the country where each is commonest (names-dataset 3.3.1; python -m bench.screening.name_ranks).",
    ]
    low = 0
    for high in BANDS:
        words = sorted(t for t, r in best.items() if low < r <= high)
        lines.append(f"{high}\t{' '.join(words)}")
        low = high
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(best)} names in {len(BANDS)} bands")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
