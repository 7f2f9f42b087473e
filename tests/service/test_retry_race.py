"""A retry that arrives while its first attempt still waits for the tenant's lock.

The first attempt passes the time rules before midnight, then waits for the lock
(held here by another writer); the retry comes after midnight, when its start day
has passed. It must wait for the first attempt and answer with its campaign.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from isales.campaign.v2.campaign_service_pb2 import AddCampaignResponse
from sqlalchemy import bindparam, select

from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import tenants
from isales_campaign.service.db.store import CampaignStore
from tests.conftest import FixedClock, seed_database
from tests.examples import add_request, example_campaign
from tests.waiting import wait_for

#: Long enough for the retry to reach the lock, usually. If it comes later, it finds the
#: first attempt's key instead; the answer must be the same either way.
SETTLE_SECONDS = 0.5


def test_a_retry_after_midnight_waits_for_its_first_attempt(database_url: str) -> None:
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=4)
    clock = FixedClock(datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC))
    service = CampaignService(CampaignStore(engine), clock=clock)
    request = add_request(example_campaign(today=date(2026, 11, 26)))
    request.idempotency_key = "first-attempt"
    lock_tenant = select(tenants.c.vdn_id).where(tenants.c.vdn_id == bindparam("v"))
    try:
        with ThreadPoolExecutor(2) as pool:
            blocker = engine.connect()
            transaction = blocker.begin()  # BEGIN IMMEDIATE on SQLite
            blocker.execute(lock_tenant.with_for_update(), {"v": 1})
            first = pool.submit(service.add, request)
            wait_for(lambda: clock.reads > 0, "the first attempt to pass the time rules")
            clock.now = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
            retry = pool.submit(service.add, request)
            time.sleep(SETTLE_SECONDS)
            transaction.commit()
            blocker.close()
            stored: AddCampaignResponse = first.result(timeout=30)
            answered: AddCampaignResponse = retry.result(timeout=30)
    finally:
        engine.dispose()
    assert not stored.replayed
    assert (answered.id, answered.replayed) == (stored.id, True)
