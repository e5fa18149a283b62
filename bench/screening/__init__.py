"""Screening benchmark: recall and false hits on a labelled set built from the lists, speed on one
core; see __main__.py and docs/benchmarks.md."""
