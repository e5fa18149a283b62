"""records gathers its fetches (EXPORTWATCH_RECORDS_GATHER_MS): its consumer asks the broker to wait
for a fuller fetch, so that a moderate load is written in fewer, larger transactions; the stages
before it read as soon as anything arrives."""

from __future__ import annotations

from services.records.app import spec as records_spec
from services.risk.app import spec as risk_spec
from shared.kafka import GATHER_BYTES, ConsumerRunner, make_consumer
from shared.settings import Settings


def test_records_consumes_with_the_configured_gathering_and_the_stages_before_it_without() -> None:
    records = records_spec(Settings(records_gather_ms=250)).consumes
    risk = risk_spec(Settings(records_gather_ms=250)).consumes
    assert records is not None and records.gather_ms == 250
    assert risk is not None and risk.gather_ms == 0


async def test_a_gathering_consumer_asks_the_broker_to_wait_for_a_fuller_fetch() -> None:
    settings = Settings()
    runner = ConsumerRunner(
        settings=settings,
        service="records",
        topics=["t"],
        handler=None,  # type: ignore[arg-type]
        producer=None,
        gather_ms=250,
    )
    gathering = runner._make_consumer()
    plain = make_consumer(settings, group_id="g", client_id="c")
    try:
        assert (gathering._fetch_min_bytes, gathering._fetch_max_wait_ms) == (GATHER_BYTES, 250)
        assert plain._fetch_min_bytes == 1
    finally:
        await gathering.stop()
        await plain.stop()
