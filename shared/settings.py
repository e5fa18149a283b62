"""One settings pattern for every service: environment variables with the `EXPORTWATCH_` prefix.

Bad values are refused at startup with the variable's name, never discovered mid-shift.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.kafka_security import KafkaClientSettings
from shared.keystore import default_keys_file

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """`../shared/data` beside the checkout when present (the team's read-only reference folder)."""
    for candidate in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"


class Settings(KafkaClientSettings):
    """Everything a service is configured with; the broker connection (address, TLS, SASL) is
    inherited from `KafkaClientSettings`."""

    model_config = SettingsConfigDict(env_prefix="EXPORTWATCH_", extra="ignore", frozen=True)

    service_name: str = "exportwatch"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    log_level: str = "INFO"
    # Names of people (parties to an order, list entries they matched, clearances) in log lines.
    # Off: such values are withheld from logs; the trail, the dead letters and the API keep them.
    log_personal_data: bool = False
    # The garbage collector of a service process (shared/service.py run_service): a young
    # collection after this many new container objects (CPython's default is 700). Each consumed
    # event allocates thousands (its JSON, its models), so the default collects several times per
    # event; 0 keeps the interpreter's default.
    gc_young_threshold: Annotated[int, Field(ge=0, le=10_000_000)] = 50_000

    # Every HTTP request (shared/hygiene.py): a body over this many bytes is refused with 413, and a
    # request that has not begun its answer after this many seconds is cancelled with 503 (the
    # long-running updates — CCL, lists, Part 746 — are exempt: they have their own timeouts).
    http_max_body_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 1024 * 1024
    http_request_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # Prepended to every topic name: lets tests (and shared clusters) isolate their topics.
    topic_prefix: str = ""
    topic_partitions: Annotated[int, Field(ge=1, le=1000)] = 3
    consumer_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 200
    # Handle the next poll while the broker acknowledges the last one's outputs (shared/kafka.py);
    # off: each poll is acknowledged and committed before the next is read (the bench's baseline).
    consumer_overlap: bool = True
    # records: how long a fetch may wait for a fuller batch (1 MiB) when little is waiting, so that a
    # moderate load is written in fewer, larger transactions (each commit is a sync to disk) instead
    # of one small transaction per handful of events; under a backlog fetches are full at once.
    # 0: read as soon as anything arrives. 30 ms since the fifth round cut the CPU an order: at 300
    # orders/s p99 submit->recorded was 0.5-1.3 s with 30 ms, 1.0-2.0 s with 100, 1.4 s with 0
    # (docs/benchmarks.md, "Phase 5").
    records_gather_ms: Annotated[int, Field(ge=0, le=5_000)] = 30
    kafka_retry_backoff_max_s: Annotated[float, Field(gt=0, le=300)] = 30.0
    # Commit the acknowledged offsets at most this often (shared/kafka.py CommitPolicy) instead of
    # after every poll; 0: after every poll. A crash re-delivers at most this long's polls.
    kafka_commit_interval_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    # Transport tuning (docs/benchmarks.md, "Pipeline", "Phase 5"). The events are JSON that grows
    # to ~12 KB by the decision. aiokafka compresses lz4 at level 9 (LZ4-HC: ~180 MB/s, 2.4:1 on
    # these events), which cost risk alone 0.07 ms an order; snappy packs them 3.2:1 at ~680 MB/s
    # and the broker checks its batches as cheaply as uncompressed ones (zstd, 7:1, cost the broker
    # 0.1-0.15 ms an order more than either). A batch per partition holds up to
    # `kafka_max_batch_bytes` (aiokafka's 16 KB default held one decided order); `kafka_linger_ms`
    # lets a batch fill while a poll's outputs are produced.
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "snappy"
    kafka_linger_ms: Annotated[int, Field(ge=0, le=1_000)] = 5
    kafka_max_batch_bytes: Annotated[int, Field(ge=1_024, le=1_000_000)] = 512 * 1024
    # Per partition and fetch: a poll of `consumer_batch_size` events must fit (aiokafka's 1 MiB
    # default held ~85 decided orders uncompressed).
    kafka_max_partition_fetch_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024 * 1024)] = (
        8 * 1024 * 1024
    )

    # API keys every service accepts (hashed; shared/keystore.py); `exportwatch keys ...` writes it.
    api_keys_file: Path = Field(default_factory=default_keys_file)

    database_url: str = f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'records.db'}"
    # records: where each instance appends the anchors of the audit chain (the head's position and
    # hash, also published to records.anchors.v1), and how often it anchors a head that moved.
    anchor_file: Path = REPO_ROOT / "var" / "anchors.jsonl"
    anchor_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    # records: the dossier's font (a TrueType file with the scripts of the names on the orders);
    # None: DejaVu Sans where the system has it, else a built-in font with names transliterated.
    dossier_font: Path | None = None
    # The classifier's product catalog; None: its own SQLite file (var/catalog.db).
    catalog_database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    policy_file: Path = REPO_ROOT / "policy" / "policy.json"
    catalog_seed_csv: Path | None = None
    # The classifier's eCFR updater caches each fetched Part 774 here; the newest copy (this folder or
    # data_dir) is loaded at start-up. The API is the eCFR versioner (or a mirror of its paths).
    ccl_cache_dir: Path = REPO_ROOT / "var" / "ccl"
    ecfr_api_url: str = "https://www.ecfr.gov/api/versioner/v1"
    # Risk's eCFR updater caches Part 746 (its HTS-6 item supplements) here; the newest verified copy
    # is loaded at start-up. Without one, EAR99 lines to Russia and Belarus are held, never released.
    part746_cache_dir: Path = REPO_ROOT / "var" / "part746"
    # Risk's own database: the licence ledger (licences held and their draw-downs). None: its own
    # SQLite file (var/risk.db).
    risk_database_url: str | None = None
    # Restricted-party list sources screened against: "kind:folder" pairs, folders relative to data_dir,
    # one per kind (ofac_sdn, ofac_non_sdn = OFAC legacy CSV; csl = trade.gov CSL CSV; bis_dpl = BIS
    # Denied Persons tab-separated; un_sc = UN Security Council XML; uk_ofsi = OFSI ConList CSV).
    screening_sources: str = (
        "ofac_sdn:screening/us_ofac_sdn/2023-12-28,"
        "ofac_non_sdn:screening/us_ofac_non_sdn/2025-12-19,"
        "csl:screening/us_trade_csl/2026-07-31,"
        "bis_dpl:screening/us_bis_dpl/2023-11-30,"
        "un_sc:screening/un_sc_consolidated/2026-02-27,"
        "uk_ofsi:screening/uk_ofsi_conlist/2025-04-10"
    )
    # `lists update` keeps each fetched list under <cache>/<kind>/<timestamp>/; at start-up a verified
    # cached copy newer than the configured folder is loaded instead of it.
    screening_cache_dir: Path = REPO_ROOT / "var" / "lists"
    # Seconds between automatic list updates; 0 = on demand only (POST /lists/update, the CLI).
    # Production: 21600 (every 6 h; OFAC publishes changes on any business day).
    screening_refresh_interval_s: Annotated[float, Field(ge=0)] = 0.0
    # Fetch from this mirror (scheme://host[:port][/prefix]) instead of the publishers' hosts, keeping
    # each official URL's path. None: the publishers themselves.
    screening_update_base_url: str | None = None
    screening_update_timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    # A fetched list with fewer entries than this share of the loaded one is refused as truncated.
    screening_update_min_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Parties whose matches screening keeps for the lists in use (services/screening/cache.py): a
    # name seen again is not matched again until the lists change. 0: every party matched afresh.
    screening_cache_size: Annotated[int, Field(ge=0, le=10_000_000)] = 20_000

    # Traces (shared/tracing.py): none (default; no SDK, trace headers passed on as they came),
    # otlp (OTLP/HTTP to otel_endpoint, else the exporter's default or OTEL_EXPORTER_OTLP_ENDPOINT),
    # console (printed; debugging).
    otel_exporter: Literal["none", "otlp", "console"] = "none"
    otel_endpoint: str | None = None

    @field_validator("otel_endpoint")
    @classmethod
    def _otel_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"EXPORTWATCH_OTEL_ENDPOINT={value!r}: use http(s)://host:port/v1/traces (OTLP over HTTP)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"EXPORTWATCH_LOG_LEVEL={value!r}: use DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("screening_update_base_url")
    @classmethod
    def _mirror(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"EXPORTWATCH_SCREENING_UPDATE_BASE_URL={value!r}: use http(s)://host[:port][/prefix]"
            )
        return value.rstrip("/") if value is not None else None

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

    @field_validator("risk_database_url")
    @classmethod
    def _risk_db(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                f"EXPORTWATCH_RISK_DATABASE_URL={value!r}: use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
            )
        return value

    @model_validator(mode="after")
    def _files(self) -> Settings:
        if not self.policy_file.is_file():
            raise ValueError(f"EXPORTWATCH_POLICY_FILE={str(self.policy_file)!r} does not exist")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def risk_db_url(self) -> str:
        return self.risk_database_url or f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'risk.db'}"

    def require_data_dir(self) -> Path:
        if not self.data_dir.is_dir():
            raise ValueError(
                f"EXPORTWATCH_DATA_DIR={str(self.data_dir)!r} is not a directory; point it at the reference "
                "data (the folder holding controls/ and screening/)"
            )
        return self.data_dir


SERVICE_PORTS = {"classifier": 8001, "screening": 8002, "risk": 8003, "records": 8004}


def port_from_env(variable: str, default: int) -> int:
    """A TCP port from the environment variable `variable`, else `default`; refused with its name."""
    raw = os.environ.get(variable)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{variable}={raw!r}: expected a TCP port, 1 to 65535")
    return int(raw)


def service_port(service: str) -> int:
    """The HTTP port of `service`: `EXPORTWATCH_<SERVICE>_PORT`, else its default (classifier 8001 …
    records 8004). The launcher of `make run` asks here too, so both agree."""
    return port_from_env(f"EXPORTWATCH_{service.upper()}_PORT", SERVICE_PORTS.get(service, 8000))


def load_settings(service: str, **overrides: object) -> Settings:
    """Settings of one service: the common `EXPORTWATCH_*` variables, and its port (`service_port`)."""
    values: dict[str, object] = {"service_name": service, "port": service_port(service)}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
