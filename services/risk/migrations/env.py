"""Alembic's entry point for this schema: shared.migrations runs it on the connection it hands over."""

from shared.migrations import run_env

run_env()
