"""`--pg-stats`: where the PostgreSQL server's time goes during the saturation phase.

The bench's server is then started with `pg_stat_statements` loaded (track=all, so the statements
run inside a function count too). At the start of the phase the statement and WAL counters are
reset and each backend's CPU seconds noted; at its end the report holds, per database (records'
trail, risk's ledger):
- each backend's CPU seconds over the phase, added up by database (/proc/<pid>/stat; a backend
  opened during the phase counts whole, one closed during it is missed: the services keep pools);
- the statements by total execution time (pg_stat_statements: calls, rows, execution and planning
  ms, WAL bytes, shared blocks hit and read);
- the WAL the whole server wrote (pg_stat_wal: bytes, records, full-page images);
- the size of each table with its TOAST and indexes, whether it has been analyzed (a table the
  planner has no statistics for is planned blind), and how often each index was scanned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.pipeline.procstat import cpu_seconds

SETTINGS = (
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
    "pg_stat_statements.max=5000",
    "track_io_timing=on",
)
TOP_STATEMENTS = 15
QUERY_CHARS = 300


async def _connect(url: str, database: str | None = None) -> asyncpg.Connection:
    parsed = make_url(url)
    connection: asyncpg.Connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=database or parsed.database,
    )
    return connection


@dataclass
class ServerStats:
    """The counters of one server over one phase; `admin_url` is a database of the server where
    the extension may be created (the bench's `exportwatch`)."""

    admin_url: str
    databases: dict[str, str]
    _cpu: dict[int, float] = field(default_factory=dict)

    async def reset(self) -> None:
        connection = await _connect(self.admin_url)
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await connection.execute("SELECT pg_stat_statements_reset()")
            await connection.execute("SELECT pg_stat_reset_shared('wal')")
            self._cpu = {pid: cpu for pid, (_, cpu) in (await self._backends(connection)).items()}
        finally:
            await connection.close()

    async def analyze(self) -> None:
        """ANALYZE every database of the run (`--pg-analyze`, after the warm-up): the planner then
        has statistics, as on a store older than autovacuum's first pass."""
        for name in self.databases.values():
            connection = await _connect(self.admin_url, name)
            try:
                await connection.execute("ANALYZE")
            finally:
                await connection.close()

    async def _backends(self, connection: asyncpg.Connection) -> dict[int, tuple[str, float]]:
        rows = await connection.fetch(
            "SELECT pid, coalesce(datname, backend_type) AS name FROM pg_stat_activity"
        )
        out: dict[int, tuple[str, float]] = {}
        for row in rows:
            seconds = cpu_seconds(row["pid"])
            if seconds is not None:
                out[row["pid"]] = (row["name"], sum(seconds))
        return out

    async def collect(self, orders: int) -> dict[str, Any]:
        """The phase's figures; per-order figures over `orders`."""
        connection = await _connect(self.admin_url)
        try:
            cpu: dict[str, float] = {}
            for pid, (name, seconds) in (await self._backends(connection)).items():
                cpu[name] = cpu.get(name, 0.0) + seconds - self._cpu.get(pid, 0.0)
            wal = dict(await connection.fetchrow("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"))
            by_database: dict[str, Any] = {}
            for label, name in self.databases.items():
                by_database[label] = {
                    "backend_cpu_ms_per_order": round(1000 * cpu.get(name, 0.0) / orders, 3),
                    "statements": await self._statements(connection, name, orders),
                    **await _tables(self.admin_url, name),
                }
        finally:
            await connection.close()
        return {
            "orders": orders,
            "backend_cpu_ms_per_order": {k: round(1000 * v / orders, 3) for k, v in sorted(cpu.items())},
            "wal": {
                **{k: int(v) for k, v in wal.items()},
                "bytes_per_order": round(int(wal["wal_bytes"]) / orders),
            },
            "databases": by_database,
        }

    async def _statements(
        self, connection: asyncpg.Connection, database: str, orders: int
    ) -> list[dict[str, Any]]:
        rows = await connection.fetch(
            """
            SELECT s.query, s.calls, s.rows, s.total_exec_time, s.total_plan_time, s.plans,
                   s.wal_bytes, s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = $1
            ORDER BY s.total_exec_time + s.total_plan_time DESC
            LIMIT $2
            """,
            database,
            TOP_STATEMENTS,
        )
        return [
            {
                "query": " ".join(row["query"].split())[:QUERY_CHARS],
                "calls": row["calls"],
                "rows": row["rows"],
                "exec_ms": round(row["total_exec_time"], 1),
                "plan_ms": round(row["total_plan_time"], 1),
                "plans": row["plans"],
                "exec_us_per_order": round(1000 * row["total_exec_time"] / orders, 1),
                "wal_bytes_per_order": round(int(row["wal_bytes"]) / orders),
                "blocks_hit": row["shared_blks_hit"],
                "blocks_read": row["shared_blks_read"],
                "blocks_dirtied": row["shared_blks_dirtied"],
            }
            for row in rows
        ]


async def _tables(admin_url: str, database: str) -> dict[str, Any]:
    connection = await _connect(admin_url, database)
    try:
        tables = await connection.fetch(
            """
            SELECT c.relname, pg_relation_size(c.oid) AS heap,
                   coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast,
                   pg_indexes_size(c.oid) AS indexes, s.n_live_tup, s.n_mod_since_analyze,
                   s.analyze_count + s.autoanalyze_count AS analyzed
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
            WHERE n.nspname = 'public' AND c.relkind = 'r'
            ORDER BY pg_total_relation_size(c.oid) DESC
            """
        )
        indexes = await connection.fetch(
            """
            SELECT relname, indexrelname, idx_scan, pg_relation_size(indexrelid) AS size
            FROM pg_stat_user_indexes ORDER BY relname, indexrelname
            """
        )
    finally:
        await connection.close()
    return {
        "tables_kib": {
            row["relname"]: {
                "heap": row["heap"] // 1024,
                "toast": row["toast"] // 1024,
                "indexes": row["indexes"] // 1024,
                # Whether the planner has statistics yet: a table never analyzed is planned blind.
                "live_rows": row["n_live_tup"],
                "changed_since_analyze": row["n_mod_since_analyze"],
                "times_analyzed": row["analyzed"],
            }
            for row in tables
            if row["heap"] or row["toast"]
        },
        "index_scans": {
            f"{row['relname']}.{row['indexrelname']}": {"scans": row["idx_scan"], "kib": row["size"] // 1024}
            for row in indexes
        },
    }


def summary(stats: dict[str, Any]) -> str:
    """A few lines for the console: CPU and WAL per order, the top statements of each database."""
    lines = [
        f"    postgresql: backend CPU ms/order {stats['backend_cpu_ms_per_order']}, "
        f"WAL {stats['wal']['bytes_per_order']:,} bytes/order ({stats['wal']['wal_fpi']} full-page images)"
    ]
    for label, figures in stats["databases"].items():
        lines.append(
            f"    {label}: backend CPU {figures['backend_cpu_ms_per_order']} ms/order; by total time:"
        )
        for row in figures["statements"][:8]:
            lines.append(
                f"      {row['exec_us_per_order']:>8} µs/order exec, plan {row['plan_ms']} ms, "
                f"{row['calls']} calls, WAL {row['wal_bytes_per_order']} B/order: {row['query'][:120]}"
            )
    return "\n".join(lines)
