"""One settings pattern for every service: environment variables with the `EXPORTWATCH_` prefix.

Bad values are refused at startup with the variable's name, never discovered mid-shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """`../shared/data` beside the checkout when present (the team's read-only reference folder)."""
    for candidate in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXPORTWATCH_", extra="ignore", frozen=True)

    service_name: str = "exportwatch"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    log_level: str = "INFO"

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    # Prepended to every topic name: lets tests (and shared clusters) isolate their topics.
    topic_prefix: str = ""
    topic_partitions: Annotated[int, Field(ge=1, le=1000)] = 3
    consumer_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 200
    kafka_retry_backoff_max_s: Annotated[float, Field(gt=0, le=300)] = 30.0

    database_url: str = f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'records.db'}"
    # The classifier's product catalog; None: its own SQLite file (var/catalog.db).
    catalog_database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    policy_file: Path = REPO_ROOT / "policy" / "policy.json"
    catalog_seed_csv: Path | None = None
    # Restricted-party list sources screened against: "kind:folder" pairs, folders relative to data_dir
    # (kinds: ofac_sdn = OFAC legacy CSV, csl = trade.gov Consolidated Screening List CSV).
    screening_sources: str = "ofac_sdn:screening/us_ofac_sdn/2023-12-28,csl:screening/us_trade_csl/2026-07-31"

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"EXPORTWATCH_LOG_LEVEL={value!r}: use DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"KAFKA_BOOTSTRAP_SERVERS={value!r}: expected host:port[,host:port]")
        return value

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                f"EXPORTWATCH_DATABASE_URL={value!r}: use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
            )
        return value

    @field_validator("catalog_database_url")
    @classmethod
    def _catalog_db(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                f"EXPORTWATCH_CATALOG_DATABASE_URL={value!r}: use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
            )
        return value

    @model_validator(mode="after")
    def _files(self) -> Settings:
        if not self.policy_file.is_file():
            raise ValueError(f"EXPORTWATCH_POLICY_FILE={str(self.policy_file)!r} does not exist")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def require_data_dir(self) -> Path:
        if not self.data_dir.is_dir():
            raise ValueError(
                f"EXPORTWATCH_DATA_DIR={str(self.data_dir)!r} is not a directory; point it at the reference "
                "data (the folder holding controls/ and screening/)"
            )
        return self.data_dir


SERVICE_PORTS = {"classifier": 8001, "screening": 8002, "risk": 8003, "records": 8004}


def load_settings(service: str, **overrides: object) -> Settings:
    """Settings of one service: the common `EXPORTWATCH_*` variables, and its port from
    `EXPORTWATCH_<SERVICE>_PORT` (default per DESIGN.md: classifier 8001 … records 8004)."""
    import os

    env_port = os.environ.get(f"EXPORTWATCH_{service.upper()}_PORT")
    values: dict[str, object] = {"service_name": service, "port": SERVICE_PORTS.get(service, 8000)}
    if env_port is not None:
        values["port"] = env_port
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
