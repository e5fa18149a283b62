"""One scaffold for every service: its app, its lifespan, its Kafka stages and its ops endpoints.

A service states what it is in a `ServiceSpec`: how its runtime is opened (reference data loaded,
databases connected, background tasks started) and closed, which topics its consumer group reads
with which handler, which topics every instance follows in full, and what its readiness says
about the runtime. `build_app` does the rest, the same way for all four:

- the lifespan opens the runtime (the HTTP side answers `/healthz` meanwhile), starts the
  producer (`Bus`) and the consumer stages, and stops them in reverse order;
- `/readyz` is composed from parts: the runtime loaded, the producer connected, each stage
  polling with partitions assigned (a follower: caught up); 503 with every part's detail otherwise;
- routes reach the runtime through `runtime_dependency`, which answers 503 until it is loaded, and
  publish through `PublishDep`, which raises `PublishError` while the broker is away.

Cross-cutting HTTP concerns are added in `build_app`, once, for every service: authentication
(every route needs an API key with a role high enough, shared/auth.py; only /healthz, /readyz and
/metrics do not), for a service with browser pages their session sign-in, and shared/hygiene.py:
body limits, request timeouts, no stack traces in answers (503 for a dependency that is away, 500
with an error id otherwise), security headers.
docs/architecture.md says how to add a stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import io
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from shared import metrics, tracing
from shared.auth import PUBLIC_PATHS, BearerAuth, declare_roles, default_role
from shared.following import FollowingRunner
from shared.hygiene import BodyLimit, ErrorBoundary, RequestTimeout, SecurityHeaders
from shared.kafka import (
    ConsumerRunner,
    Handler,
    Outgoing,
    Publish,
    PublishError,
    make_producer,
    start_with_retry,
)
from shared.keystore import KeyStore
from shared.logging import configure_logging, exception_message
from shared.settings import Settings, load_settings

log = logging.getLogger("exportwatch.service")

R = TypeVar("R")
Detail = dict[str, Any]
ReadinessCheck = Callable[[], tuple[bool, Detail]]


# --- the producer ------------------------------------------------------------------------------


# How often each instance asks the broker for cluster metadata, how long it waits for an answer,
# and after how long without one it says it is not ready (a probe that timed out, and a second
# interval: no flapping on a busy machine): a consumer whose broker is gone keeps
# polling an empty fetcher, and a producer stays "started", so only asking tells.
BROKER_PROBE_INTERVAL_S = 2.0
BROKER_PROBE_TIMEOUT_S = 5.0
BROKER_SILENCE_S = 8.0
# A shutdown still going after this long says where it waits: every task's stack in the log, then
# every thread's on stderr (a deployment's grace period is usually 30 s; the test harness waits 20 s).
SHUTDOWN_REPORT_S = 8.0
# How long a consumer stage may take to stop (its stages stop together) before it is cancelled.
STAGE_STOP_S = 12.0
STAGE_CANCEL_S = 3.0
PRODUCER_STOP_S = 5.0


class Bus:
    """A service's one producer (acks=all, idempotent): its consumer stages publish their outputs
    with it, and its HTTP commands through `publish`. It connects in the background, retrying while
    the broker is away, then asks the broker for metadata every few seconds: readiness follows the
    broker when it is lost after start-up, and comes back with it."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.settings = settings
        self.service = service
        self.producer: AIOKafkaProducer | None = None
        self.connected = asyncio.Event()
        self.last_contact = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.producer = make_producer(self.settings)
        self._task = asyncio.create_task(self._connect(), name=f"{self.service}-producer")

    async def _connect(self) -> None:
        assert self.producer is not None
        if await start_with_retry(
            self.producer,
            what="producer",
            stop=self._stop,
            backoff_max=self.settings.kafka_retry_backoff_max_s,
        ):
            self.last_contact = time.monotonic()
            self.connected.set()
            await self._watch_broker(self.producer)

    async def _watch_broker(self, producer: AIOKafkaProducer) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=BROKER_PROBE_INTERVAL_S)
                return
            try:
                answered = await asyncio.wait_for(
                    producer.client.force_metadata_update(), timeout=BROKER_PROBE_TIMEOUT_S
                )
            except (TimeoutError, KafkaError, OSError):
                answered = False
            if answered:
                self.last_contact = time.monotonic()

    def broker_reachable(self) -> bool:
        return self.connected.is_set() and time.monotonic() - self.last_contact < BROKER_SILENCE_S

    async def wait_connected(self, stop: asyncio.Event) -> bool:
        """True once connected; False if `stop` is set first."""
        connected = asyncio.create_task(self.connected.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({connected, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            stopped.cancel()
        return self.connected.is_set() and not stop.is_set()

    async def publish(self, outgoing: Outgoing) -> None:
        """Publish one event and wait for the broker's acknowledgement (used by HTTP commands)."""
        if self.producer is None or not self.connected.is_set():
            raise PublishError("Kafka is not connected")
        # An HTTP command's event continues the request's trace.
        headers = outgoing.headers or tracing.current_headers()
        try:
            await self.producer.send_and_wait(
                outgoing.topic, value=outgoing.value, key=outgoing.key.encode(), headers=list(headers) or None
            )
        except KafkaError as exc:
            raise PublishError(f"Kafka did not take the event: {type(exc).__name__}: {exc}") from exc
        metrics.EVENTS_OUT.labels(self.service, outgoing.topic).inc()

    def ready(self) -> tuple[bool, Detail]:
        reachable = self.broker_reachable()
        detail: Detail = {"producer_connected": self.connected.is_set(), "broker_reachable": reachable}
        if self.connected.is_set() and not reachable:
            detail["broker_silent_s"] = round(time.monotonic() - self.last_contact, 1)
        return reachable, detail

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is not None:
            # Also closes a producer that never connected, so no client is left unclosed. What it
            # still holds after PRODUCER_STOP_S (a broker that does not answer) was never
            # acknowledged, so its input was never committed: it is produced again after a restart.
            stopping = asyncio.ensure_future(self.producer.stop())
            await asyncio.wait({stopping}, timeout=PRODUCER_STOP_S)
            if not stopping.done():
                log.error(
                    "%s: the producer did not flush within %.0fs; closed unflushed",
                    self.service,
                    PRODUCER_STOP_S,
                )
                stopping.cancel()
            elif not stopping.cancelled() and (failure := stopping.exception()) is not None:
                log.warning(
                    "%s: the producer failed on stopping: %s", self.service, exception_message(failure)
                )
        self.connected.clear()


async def not_connected(outgoing: Outgoing) -> None:
    """The publisher of an app started without Kafka (tests, what-if use)."""
    raise PublishError("Kafka is not connected (the service runs without a broker)")


# --- background work ----------------------------------------------------------------------------


class Periodic:
    """`work` every `seconds` in the background until stopped; a failure is logged and the loop goes
    on (a runtime's periodic list refresh, its retry of unpublished announcements)."""

    def __init__(self, name: str, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.seconds = seconds
        self.work = work
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.seconds)
            if self._stop.is_set():
                return
            try:
                await self.work()
            except Exception:  # the loop must outlive any one run
                log.exception("%s failed; trying again in %.0fs", self.name, self.seconds)


# --- a consumer stage --------------------------------------------------------------------------


@dataclass
class KafkaStage:
    """A consumer loop on the service's producer: `topics` read in group `service` (or, with
    `follow`, in full on every instance), each message handed to `handler`, its outputs published."""

    settings: Settings
    service: str
    topics: Sequence[str]
    handler: Handler
    max_attempts: int | None = 8
    gather_ms: int = 0
    follow: bool = False
    # A follower sets this once it has read what was on its topics at start (FollowingRunner).
    caught_up: asyncio.Event | None = None
    bus: Bus | None = None
    runner: ConsumerRunner | None = None
    _own_bus: bool = False
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def producer_started(self) -> bool:
        return self.bus is not None and self.bus.connected.is_set()

    async def start(self) -> None:
        if self.bus is None:
            self.bus, self._own_bus = Bus(self.settings, self.service), True
            await self.bus.start()
        common: dict[str, Any] = {
            "settings": self.settings,
            "service": self.service,
            "topics": [self.settings.topic(t) for t in self.topics],
            "handler": self.handler,
            "producer": self.bus.producer,
            "max_attempts": self.max_attempts,
            "gather_ms": self.gather_ms,
            "stop_event": self._stop,
        }
        if self.follow:
            self.runner = FollowingRunner(**common, caught_up=self.caught_up or asyncio.Event())
        else:
            self.runner = ConsumerRunner(**common)
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-consumer")

    async def _run(self) -> None:
        assert self.bus is not None and self.runner is not None
        if not await self.bus.wait_connected(self._stop):
            return
        while not self._stop.is_set():
            try:
                await self.runner.run()
            except Exception:
                # The loop must outlive any single failure; log loudly and come back.
                log.exception("consumer loop failed; restarting in 2s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=2.0)

    async def publish(self, outgoing: Outgoing) -> None:
        if self.bus is None:
            raise PublishError("Kafka is not connected")
        await self.bus.publish(outgoing)

    async def stop(self) -> None:
        """Stop the loop: it lands the poll in flight and leaves its group. A loop still going after
        STAGE_STOP_S is cancelled, so that one stuck stage cannot hold the service's shutdown past
        its grace period; what it had not committed is read again by the next owner (at-least-once)."""
        self._stop.set()
        task = self._task
        if task is not None:
            # Not wait_for: it waits for a cancelled task without limit, and a task may go on awaiting
            # in its clean-up after the cancellation.
            await asyncio.wait({task}, timeout=STAGE_STOP_S)
            if not task.done():
                log.error(
                    "%s: the consumer loop did not stop within %.0fs; cancelled it",
                    self.service,
                    STAGE_STOP_S,
                )
                task.cancel()
                await asyncio.wait({task}, timeout=STAGE_CANCEL_S)
            if not task.done():
                log.error(
                    "%s: the consumer loop is still not done after its cancellation; left", self.service
                )
            elif not task.cancelled() and (failure := task.exception()) is not None:
                log.error("%s: the consumer loop ended with %s", self.service, exception_message(failure))
        if self._own_bus and self.bus is not None:
            await self.bus.stop()

    def ready(self) -> tuple[bool, Detail]:
        if self.runner is None:
            return False, {"kafka": "not started"}
        ok, detail = self.runner.ready()
        detail["producer_connected"] = self.producer_started
        return ok and self.producer_started, detail


# --- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consumes(Generic[R]):
    """Topics read in the service's consumer group, and the handler made from the runtime."""

    topics: Sequence[str]
    handler: Callable[[R], Handler]
    # None: retry a failing message forever (records: losing a trail step is worse than stalling).
    max_attempts: int | None = 8
    # Wait up to this long for a fuller fetch (shared/kafka.py make_consumer); 0: none.
    gather_ms: int = 0


@dataclass(frozen=True)
class Follows(Generic[R]):
    """Topics every instance reads in full (state it rebuilds), reported in /readyz under `name`."""

    name: str
    topics: Sequence[str]
    handler: Callable[[R], Handler]
    # The runtime's event to set once the follower has caught up (work that needs the full state
    # waits on it).
    caught_up: Callable[[R], asyncio.Event] | None = None


@dataclass(frozen=True)
class Pages:
    """Browser pages under `prefix`, signed in by the service's own session (a cookie) instead of a
    bearer key. `authenticate` is a dependency that puts the Identity in `request.state.identity`
    (or answers that the browser must sign in); every route of `router` gets it, and the same role
    rules as the API. `public` holds what must answer before sign-in: the sign-in page and static
    files, nothing read from a database. `headers` go on every response under `prefix`."""

    prefix: str
    router: APIRouter
    public: APIRouter
    authenticate: Callable[..., Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec(Generic[R]):
    """What a service is: its name and API, how its runtime opens, what it consumes and follows."""

    name: str
    title: str
    summary: str
    router: APIRouter
    # Opens the runtime (loads reference data, connects databases, starts background work) and
    # closes it; given the settings and how to publish (the producer, or a stand-in without Kafka).
    open_runtime: Callable[[Settings, Publish], AbstractAsyncContextManager[R]]
    # /readyz detail about the runtime; called with None while it is not loaded.
    describe: Callable[[R | None], Detail]
    # The 503 detail of a route called before the runtime is loaded.
    not_ready: str
    consumes: Consumes[R] | None = None
    follows: Sequence[Follows[R]] = ()
    pages: Pages | None = None
    # Work to finish on shutdown after the consumer stages stopped and before the producer stops
    # (records: anchoring the audit chain's head, so the last anchor still reaches the broker).
    before_stop: Callable[[R], Awaitable[None]] | None = None
    # Paths of operations that may take minutes (fetching and verifying reference data): exempt
    # from EXPORTWATCH_HTTP_REQUEST_TIMEOUT_S, they bound their own downloads.
    long_running: frozenset[str] = frozenset()


def compose(parts: Sequence[ReadinessCheck]) -> tuple[bool, Detail]:
    """Ready when every part is; the detail of every part, merged."""
    ok, detail = True, {}
    for part in parts:
        part_ok, part_detail = part()
        ok = ok and part_ok
        detail.update(part_detail)
    return ok, detail


def build_app(
    spec: ServiceSpec[R], settings: Settings, *, start_kafka: bool = True, publish: Publish | None = None
) -> FastAPI:
    """The service's app. Without Kafka (`start_kafka=False`: API tests, what-if use) HTTP commands
    publish with `publish` if given, else they answer that the broker is not connected."""
    bus = Bus(settings, spec.name) if start_kafka else None
    publisher: Publish = bus.publish if bus is not None else (publish or not_connected)
    stages: dict[str, KafkaStage] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with spec.open_runtime(settings, publisher) as runtime:
            app.state.runtime = runtime
            try:
                if bus is not None:
                    await bus.start()
                    stages.update(_stages(spec, settings, runtime, bus))
                    for stage in stages.values():
                        await stage.start()
                if getattr(app.state, "freeze_heap_after_start", False):
                    freeze_heap()
                yield
            finally:
                report = _report_slow_shutdown(spec.name)
                try:
                    await _shut_down(spec, runtime, stages, bus)
                finally:
                    app.state.runtime = None
                    report.cancel()
                    faulthandler.cancel_dump_traceback_later()

    def readiness() -> tuple[bool, Detail]:
        runtime = app.state.runtime
        parts: list[ReadinessCheck] = [lambda: (runtime is not None, spec.describe(runtime))]
        if bus is not None:
            parts.append(bus.ready)
            if not stages:
                parts.append(lambda: (False, {"kafka": "not started"}))
            parts.extend(_stage_readiness(spec, name, stage) for name, stage in stages.items())
        return compose(parts)

    app = FastAPI(title=spec.title, summary=spec.summary, lifespan=lifespan)
    app.state.runtime = None
    app.state.not_ready = spec.not_ready
    app.state.publish = publisher
    app.state.service_name = spec.name
    app.state.keys = keys = KeyStore(settings.api_keys_file)
    _report_keys(keys, spec.name)
    # Every route needs a key with at least `viewer`; one that changes something declares its role
    # (declare_roles refuses to build the app otherwise). The middleware authenticates before the
    # body is read; the ops routes, added last, are the only ones open.
    _include(app, spec.router, [default_role()], where=spec.name)
    session_prefixes: list[str] = []
    if spec.pages is not None:
        pages = spec.pages
        _include(app, pages.router, [Depends(pages.authenticate), default_role()], where=spec.name)
        app.include_router(pages.public)
        session_prefixes.append(pages.prefix)
    app.add_middleware(BearerAuth, store=keys, service=spec.name, session_prefixes=session_prefixes)
    _add_hygiene(app, spec, settings)
    # Outermost: a refused request is traced too, and the span covers authentication.
    app.add_middleware(tracing.TraceRequests, service=spec.name)
    add_ops_routes(app, spec.name, readiness)
    _document_bearer(app)
    return app


async def _shut_down(
    spec: ServiceSpec[R], runtime: R, stages: dict[str, KafkaStage], bus: Bus | None
) -> None:
    """The stages stopped together, the service's work before stopping, then its producer."""
    await asyncio.gather(*(stage.stop() for stage in stages.values()))
    stages.clear()
    if spec.before_stop is not None:
        try:
            await spec.before_stop(runtime)
        except Exception:  # shutting down must go on
            log.exception("%s: the work before stopping failed", spec.name)
    if bus is not None:
        await bus.stop()


def _report_slow_shutdown(service: str) -> asyncio.TimerHandle:
    """Arm the shutdown's report: the tasks' stacks after SHUTDOWN_REPORT_S (if the event loop
    still turns), the threads' a little later (if it does not)."""

    def tasks() -> None:
        out = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(limit=12, file=out)
        log.warning(
            "%s: still stopping after %.0fs; where each task waits:\n%s",
            service,
            SHUTDOWN_REPORT_S,
            out.getvalue(),
        )

    # An in-process app (tests) may run with a stderr that has no file descriptor: no thread dump.
    with contextlib.suppress(ValueError, OSError, AttributeError):
        faulthandler.dump_traceback_later(SHUTDOWN_REPORT_S + 4, exit=False, file=sys.stderr)
    return asyncio.get_running_loop().call_later(SHUTDOWN_REPORT_S, tasks)


def _add_hygiene(app: FastAPI, spec: ServiceSpec[R], settings: Settings) -> None:
    """shared/hygiene.py around everything, outermost last: the error boundary sees every failure,
    the security headers go on every answer (its own refusals included), a body is limited before
    anything reads it, and the timeout runs from there."""
    app.add_middleware(RequestTimeout, seconds=settings.http_request_timeout_s, exempt=spec.long_running)
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    docs = frozenset(p for p in (app.docs_url, app.redoc_url) if p is not None)
    extra = {spec.pages.prefix: spec.pages.headers} if spec.pages is not None and spec.pages.headers else {}
    app.add_middleware(SecurityHeaders, docs_paths=docs, extra=extra)
    app.add_middleware(ErrorBoundary, service=spec.name)


def _include(app: FastAPI, router: APIRouter, dependencies: list[Any], *, where: str) -> None:
    declare_roles(router.routes, where=where)
    app.include_router(router, dependencies=dependencies)


def _report_keys(keys: KeyStore, service: str) -> None:
    active = [k for k in keys.keys() if k.active]
    if keys.error is not None:
        log.error("%s: no API key is accepted: %s", service, keys.error)
    elif not active:
        log.warning(
            "%s: no API key in force in %s: every request but /healthz, /readyz and /metrics is "
            "refused; create one with `exportwatch keys create --name NAME --role ROLE`",
            service,
            keys.path,
        )


def _document_bearer(app: FastAPI) -> None:
    """The OpenAPI document says every operation but the ops endpoints takes a bearer key."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "ewk_<key id>_<secret>"}
            }
            for path, operations in schema.get("paths", {}).items():
                if path in PUBLIC_PATHS:
                    continue
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _stages(spec: ServiceSpec[R], settings: Settings, runtime: R, bus: Bus) -> dict[str, KafkaStage]:
    stages: dict[str, KafkaStage] = {}
    if spec.consumes is not None:
        consumes = spec.consumes
        stages["group"] = KafkaStage(
            settings,
            spec.name,
            consumes.topics,
            consumes.handler(runtime),
            max_attempts=consumes.max_attempts,
            gather_ms=consumes.gather_ms,
            bus=bus,
        )
    for follows in spec.follows:
        stages[follows.name] = KafkaStage(
            settings,
            spec.name,
            follows.topics,
            follows.handler(runtime),
            follow=True,
            caught_up=follows.caught_up(runtime) if follows.caught_up is not None else None,
            bus=bus,
        )
    return stages


def _stage_readiness(spec: ServiceSpec[R], name: str, stage: KafkaStage) -> ReadinessCheck:
    if name == "group":
        return stage.ready

    def follower() -> tuple[bool, Detail]:
        ok, detail = stage.ready()
        return ok, {name: detail}

    return follower


def runtime_dependency(kind: type[R]) -> Callable[[Request], R]:
    """A route dependency giving the service's runtime, or 503 while it is not loaded."""

    def runtime(request: Request) -> R:
        found = request.app.state.runtime
        if found is None:
            raise HTTPException(status_code=503, detail=request.app.state.not_ready)
        if not isinstance(found, kind):
            raise TypeError(f"the app's runtime is a {type(found).__name__}, not a {kind.__name__}")
        return found

    return runtime


def get_publish(request: Request) -> Publish:
    publish: Publish = request.app.state.publish
    return publish


PublishDep = Annotated[Publish, Depends(get_publish)]


def add_ops_routes(app: FastAPI, service: str, readiness: ReadinessCheck) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["ops"], summary="Readiness: broker connected and partitions assigned")
    async def readyz() -> JSONResponse:
        ok, detail = readiness()
        return JSONResponse({"ready": ok, "service": service, **detail}, status_code=200 if ok else 503)

    # Documented as text (the Prometheus exposition format), which it is, not as JSON.
    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)


def freeze_heap() -> None:
    """What the service built while starting (its modules, schemas, reference data and indexes)
    lives as long as the process: moved out of the collector's sight, a full collection no longer
    walks it. Objects it frees later are still freed (by reference counting)."""
    gc.collect()
    gc.freeze()


def run_service(service: str, create_app: Callable[[Settings], FastAPI]) -> None:
    """`python -m services.<name>`: settings from the environment, JSON logs, uvicorn."""
    settings = load_settings(service)
    configure_logging(service, settings.log_level, personal_data=settings.log_personal_data)
    tracing.configure(service=service, exporter=settings.otel_exporter, endpoint=settings.otel_endpoint)
    if settings.gc_young_threshold:
        # The collector ran several times per consumed event at the default of 700 (a fifth of
        # records' CPU in bench/pipeline's profile); the older generations keep their defaults.
        _, middle, old = gc.get_threshold()
        gc.set_threshold(settings.gc_young_threshold, middle, old)
    app = create_app(settings)
    app.state.freeze_heap_after_start = True
    try:
        # log_config=None: uvicorn keeps the JSON handler configured above instead of its own.
        # loop="auto": uvloop (a pinned dependency) where it is installed, asyncio's own loop elsewhere.
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, loop="auto")
    finally:
        tracing.shutdown()
