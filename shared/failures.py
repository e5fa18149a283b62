"""Which failures are the infrastructure's and which are not: one answer for the whole system.

A transient failure is a dependency that is away or overloaded for a while — a database that is
restarting, a broker that cannot be reached, a connection cut in the middle of a request — and
waiting is the cure. Every other failure (a bug, data a service cannot handle) stays the same
however often it is retried.

The consumer loop (shared/kafka.py) retries a transient failure without limit, with backoff, and
counts only the others towards a stage's `max_attempts` before it dead-letters the message: a
database outage must not turn valid orders into dead letters. The HTTP side (shared/hygiene.py)
answers a transient failure with 503 (retry later) instead of 500.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiokafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes and codes that name the server's condition, not the statement (PostgreSQL,
# Appendix A): 08 connection exception, 53 insufficient resources, 57 operator intervention (the
# server shutting down, starting up: 57P01-57P03), 58 system error; 40001 serialization failure and
# 40P01 deadlock (the transaction may succeed when run again).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
# OSErrors about files are a deployment's mistake, not an outage: a retry finds the same.
_NOT_TRANSIENT_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or an exception it was raised from) is a dependency that is away: a
    database connection or server condition, a broker that cannot be reached, a network error."""
    return any(_transient_itself(found) for found in _chain(exc))


def unavailable_dependency(exc: BaseException) -> str | None:
    """What is away when `exc` is transient — "the database", "the Kafka broker" or "a service it
    depends on" — and None when it is not transient. A refused connection is a bare OSError whoever
    made it, so where it was raised (the database driver, the Kafka client) tells which."""
    if not is_transient(exc):
        return None
    for found in _chain(exc):
        if _database_transient(found) or _raised_in(found, ("sqlalchemy", "asyncpg", "aiosqlite")):
            return "the database"
        if isinstance(found, KafkaError) or _raised_in(found, ("aiokafka",)):
            return "the Kafka broker"
    return "a service it depends on"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it was raised from (explicitly or while handling), and a DBAPI error's original."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        found = pending.pop()
        if found is None or id(found) in seen or len(seen) > 20:
            continue
        seen.add(id(found))
        yield found
        pending += [found.__cause__, found.__context__]
        if isinstance(found, DBAPIError) and isinstance(found.orig, BaseException):
            pending.append(found.orig)


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in packages:
            return True
        traceback = traceback.tb_next
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, KafkaError):
        # aiokafka marks what a retry can cure (no connection, no leader, a timeout on the broker);
        # a message too large or a missing permission is not.
        return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)
    if _database_transient(exc):
        return True
    # ConnectionError and TimeoutError are OSErrors: a refused or reset connection, a socket timeout.
    return isinstance(exc, OSError) and not isinstance(exc, _NOT_TRANSIENT_OS_ERRORS)


def _database_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # asyncpg's own exceptions (and SQLAlchemy's adapters of them) carry the server's SQLSTATE.
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and len(state) == 5:
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    # asyncpg raises these before any server answered (refused, closed mid-operation).
    return type(exc).__name__ in {"ConnectionDoesNotExistError", "ConnectionFailureError"}
