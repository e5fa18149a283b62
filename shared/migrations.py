"""Schema migrations (Alembic) for every database the services own: records' trail, the classifier's
catalog and risk's licence ledger. Each is migrated to its newest revision when its service starts.

- One Alembic script directory per database (`services/<name>/migrations/`), each with its own version
  table (`alembic_version_<schema>`), so two schemas may even share one PostgreSQL database.
- Safe with several instances starting at once: on PostgreSQL the upgrade runs under a session-level
  advisory lock (`pg_advisory_lock`, a key per schema); on SQLite under an exclusive lock on a file
  beside the database. The second instance waits, then finds nothing left to do.
- A database made before migrations existed (by `metadata.create_all`: its tables, no version table)
  is stamped at the schema's baseline revision (the schema as it stood then) and upgraded from there.

`python -m shared.migrations upgrade|current|revision SCHEMA [-m MESSAGE]` runs the same from the
command line against the schema's configured database (`revision` autogenerates a new script from
the models).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import make_engine

log = logging.getLogger("exportwatch.migrations")


@dataclass(frozen=True)
class Schema:
    """One database's migrations."""

    name: str
    directory: Path
    # The models' MetaData (autogenerate compares against it); a callable so that env.py and the
    # services import the models, not this module.
    metadata: Callable[[], MetaData]
    # A table every database of this schema made before migrations has: its presence without a
    # version table means "stamp the baseline first".
    marker_table: str
    baseline: str
    # PostgreSQL advisory lock key (any 64-bit integer, one per schema).
    lock_key: int

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.attributes["schema"] = self
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def head(self) -> str:
        head = ScriptDirectory.from_config(self.config()).get_current_head()
        assert head is not None, f"{self.directory}: no migration scripts"
        return head


# --- inside env.py ---------------------------------------------------------------------------------


def run_env() -> None:
    """The body of every schema's env.py: migrate on the connection `upgrade` handed over."""
    config = context.config
    schema: Schema = config.attributes["schema"]
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            f"{schema.name}: run migrations with `python -m shared.migrations upgrade {schema.name}`"
        )
    context.configure(
        connection=connection,
        target_metadata=schema.metadata(),
        version_table=schema.version_table,
        # SQLite alters a table by copying it (Alembic's batch mode); PostgreSQL alters in place.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# --- upgrading -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(connection: Connection, schema: Schema) -> Iterator[None]:
    """One migrating instance at a time per database."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": schema.lock_key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": schema.lock_key})
            connection.commit()
        return
    database = connection.engine.url.database
    if connection.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_revision(connection: Connection, schema: Schema) -> str | None:
    migration = MigrationContext.configure(connection, opts={"version_table": schema.version_table})
    return migration.get_current_revision()


def upgrade_connection(connection: Connection, schema: Schema, target: str = "head") -> None:
    """Upgrade the database behind `connection` to `target` (a revision id or "head")."""
    with _exclusive(connection, schema):
        tables = set(inspect(connection).get_table_names())
        config = schema.config(connection)
        if schema.version_table not in tables and schema.marker_table in tables:
            log.info(
                "%s: a database made before migrations; stamping baseline %s", schema.name, schema.baseline
            )
            command.stamp(config, schema.baseline)
            connection.commit()
        before = current_revision(connection, schema)
        command.upgrade(config, target)
        connection.commit()
        after = current_revision(connection, schema)
        if before != after:
            log.info("%s: schema migrated %s -> %s", schema.name, before, after)


def _migration_engine(engine: AsyncEngine) -> AsyncEngine:
    """An engine of its own for migrating: on SQLite one whose transactions the driver does not
    manage (Python's sqlite3 would run each CREATE and ALTER outside any transaction), so that a
    revision is applied whole or not at all, as on PostgreSQL."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, poolclass=NullPool)
    migrating = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(migrating.sync_engine, "connect")
    def _driver_autocommit(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(migrating.sync_engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


async def migrate(engine: AsyncEngine, schema: Schema, *, attempts: int = 8, target: str = "head") -> None:
    """Migrate `engine`'s database to `target`, waiting a little for a database that is still
    starting (connection refused) before giving up."""
    delay = 0.5
    for attempt in range(1, attempts + 1):
        migrating = _migration_engine(engine)
        try:
            async with migrating.connect() as connection:
                await connection.run_sync(upgrade_connection, schema, target)
            return
        except (OSError, SQLAlchemyError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "%s database not ready (attempt %d): %s; retrying in %.1fs", schema.name, attempt, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
        finally:
            await migrating.dispose()


# --- command line ----------------------------------------------------------------------------------


def schemas() -> dict[str, Schema]:
    from services.classifier.catalog import CATALOG_SCHEMA
    from services.records.models import RECORDS_SCHEMA
    from services.risk.ledger import LEDGER_SCHEMA

    return {s.name: s for s in (RECORDS_SCHEMA, CATALOG_SCHEMA, LEDGER_SCHEMA)}


def database_url(name: str) -> str:
    from shared.settings import load_settings

    settings = load_settings(name)
    if name == "records":
        return settings.database_url
    if name == "catalog":
        from services.classifier.app import DEFAULT_CATALOG_URL

        return settings.catalog_database_url or DEFAULT_CATALOG_URL
    return settings.risk_db_url()


async def _main(args: argparse.Namespace) -> int:
    schema = schemas()[args.schema]
    url = args.url or database_url(args.schema)
    engine = make_engine(url)
    try:
        if args.action == "upgrade":
            await migrate(engine, schema, target=args.target)
            print(f"{schema.name}: {make_url(url).render_as_string()} at {schema.head()}")
        elif args.action == "current":
            async with engine.connect() as connection:
                print(await connection.run_sync(current_revision, schema))
        else:

            def revision(connection: Connection) -> None:
                command.revision(schema.config(connection), message=args.message, autogenerate=True)

            async with engine.connect() as connection:
                await connection.run_sync(revision)
    finally:
        await engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrations", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("upgrade", "current", "revision"))
    parser.add_argument("schema", choices=("records", "catalog", "risk"))
    parser.add_argument("--url", help="the database (default: the service's configured one)")
    parser.add_argument("--target", default="head", help="upgrade to this revision (default head)")
    parser.add_argument("-m", "--message", default="change", help="revision: the new script's title")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
