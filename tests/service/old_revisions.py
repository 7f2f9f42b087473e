"""Databases as the releases of earlier schema revisions left them, for the upgrade tests.

Releases at 0001 and 0002 could only add campaigns. Their store wrote one row per add: the
family of the device type (1 skill queue: 2, 5, 6; 2 IVR: 1, 3), status 3 for a campaign
added paused and 2 otherwise, the begin and end in UTC without zone (converted from the
tenant's zone), `config` the requested Campaign serialized deterministically, version 1, the
add's time as created and updated, and at 0002 the idempotency key (or NULL). The rows below
are written the same way (checked against those releases running on both databases).

From 0003 on the releases write what this code writes: it fills the database through the
service itself, with a deleted and an archived campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import DateTime, Engine, bindparam, text

from isales_campaign.config import Settings
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.seed import apply_seed, parse_seed
from isales_campaign.service.server import start_server
from tests.conftest import DEFAULT_SEED, FixedClock
from tests.examples import add_request, example_campaign, ivr_campaign

#: The day the old releases ran, and the time of their adds (the keys are still fresh when the
#: upgraded service answers their retries an hour later).
FILL_DAY = date(2026, 11, 26)
FILLED_AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ZONES = {1: "UTC", 2: "Asia/Shanghai"}


@dataclass(frozen=True)
class OldCampaign:
    """One campaign an old release added: its id is its position in `OLD_CAMPAIGNS`."""

    vdn_id: int
    name: str
    ivr: bool = False
    paused: bool = False
    #: The idempotency key of its add, where the revision keeps keys.
    key: str | None = None

    def campaign(self) -> pb.Campaign:
        make = ivr_campaign if self.ivr else example_campaign
        found = make(self.name, today=FILL_DAY)
        if self.paused:
            found.init_status = pb.INIT_STATUS_PAUSED
        if self.ivr:
            found.cc_id = 7
        return found

    def request(self) -> rpc.AddCampaignRequest:
        request = add_request(self.campaign(), self.vdn_id)
        if self.key:
            request.idempotency_key = self.key
        return request


#: Ids 1 to 12, in the order of their adds: both families, executing and paused, keyed and not.
OLD_CAMPAIGNS = (
    OldCampaign(1, "old skill 1"),
    OldCampaign(1, "old skill 2", paused=True),
    OldCampaign(1, "old skill 3", key="order-3"),
    OldCampaign(1, "old ivr 4", ivr=True),
    OldCampaign(1, "old ivr 5", ivr=True, paused=True, key="order-5"),
    OldCampaign(1, "old skill 6", paused=True),
    OldCampaign(1, "old skill 7"),
    OldCampaign(1, "old ivr 8", ivr=True),
    OldCampaign(1, "old skill 9", paused=True),
    OldCampaign(1, "old skill 10", paused=True),
    OldCampaign(2, "old skill 11", key="order-11"),
    OldCampaign(1, "old skill 12", paused=True),
)


@dataclass
class Filled:
    """What a filled database holds, as the upgraded service must answer it."""

    #: Live campaigns by id.
    live: dict[int, OldCampaign] = field(default_factory=dict)
    archived: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    #: Ids of keyed adds whose retry must answer the same campaign.
    keyed: dict[int, OldCampaign] = field(default_factory=dict)


def fill(revision: str, url: str) -> Filled:
    """A new database at `url`, brought to `revision` and filled as that revision's release
    filled it."""
    engine = create_database_engine(url, pool_size=1)
    try:
        if revision in ("0001", "0002"):
            migrate_to(engine, revision)
            apply_seed(engine, parse_seed(DEFAULT_SEED))  # as since 0001
            return _insert_as_added(engine, keys=revision == "0002")
        # This code writes the rows of 0003 and later (no later revision adds a column it
        # writes); it runs on a database at head, which then goes back to `revision` (the
        # downgrades keep every row: see test_upgrades).
        migrate_to(engine)
        apply_seed(engine, parse_seed(DEFAULT_SEED))
        filled = _add_through_the_service(url)
        if revision < "0006":  # the releases before 0006 recorded no history
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM campaign_changes"))
        migrate_to(engine, revision)
        return filled
    finally:
        engine.dispose()


_INSERT_AT_0001 = (
    "INSERT INTO campaigns (vdn_id, name, family, device_type, status, begin_at, end_at, config,"
    " version, created_at, updated_at) VALUES (:vdn_id, :name, :family, :device_type, :status,"
    " :begin_at, :end_at, :config, 1, :now, :now) RETURNING id"
)
_INSERT_AT_0002 = (
    "INSERT INTO campaigns (vdn_id, name, family, device_type, status, begin_at, end_at, config,"
    " version, created_at, updated_at, idempotency_key) VALUES (:vdn_id, :name, :family,"
    " :device_type, :status, :begin_at, :end_at, :config, 1, :now, :now, :key) RETURNING id"
)


def _insert_as_added(engine: Engine, *, keys: bool) -> Filled:
    filled = Filled()
    # Typed as the releases' table definitions typed them (on SQLite: text with microseconds).
    statement = text(_INSERT_AT_0002 if keys else _INSERT_AT_0001).bindparams(
        *(bindparam(name, type_=DateTime) for name in ("begin_at", "end_at", "now"))
    )
    with engine.begin() as connection:
        for expected_id, old in enumerate(OLD_CAMPAIGNS, start=1):
            campaign = old.campaign()
            begin_at, end_at = (
                _utc(value, ZONES[old.vdn_id])
                for value in (campaign.str_begin_time, campaign.str_end_time)
            )
            new_id = connection.scalar(
                statement,
                {
                    "vdn_id": old.vdn_id,
                    "name": old.name,
                    "family": 2 if old.ivr else 1,
                    "device_type": int(campaign.device_type),
                    "status": 3 if old.paused else 2,
                    "begin_at": begin_at,
                    "end_at": end_at,
                    "config": campaign.SerializeToString(deterministic=True),
                    "now": FILLED_AT.replace(tzinfo=None),
                    "key": old.key,
                },
            )
            assert new_id == expected_id
            filled.live[new_id] = old
            if keys and old.key:
                filled.keyed[new_id] = old
    return filled


def _utc(local: str, zone: str) -> datetime:
    moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC).replace(tzinfo=None)


def _add_through_the_service(url: str) -> Filled:
    """The release at 0003 adds the twelve, archives 10 and deletes 12 (the largest id)."""
    settings = replace(Settings(), database_url=url, grpc_listen="127.0.0.1:0")
    running = start_server(settings, migrate=False, clock=FixedClock(FILLED_AT))
    filled = Filled()
    try:
        _add_and_delete(running.port, filled)
    finally:
        running.stop(0)
    return filled


def _add_and_delete(port: int, filled: Filled) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = CampaignServiceStub(channel)
        for expected_id, old in enumerate(OLD_CAMPAIGNS, start=1):
            assert client.AddCampaign(old.request(), timeout=10).id == expected_id
            filled.live[expected_id] = old
            if old.key:
                filled.keyed[expected_id] = old
        for campaign_id, archive in ((10, True), (12, False)):
            client.DeleteCampaign(
                rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, archive=archive),
                timeout=10,
            )
            del filled.live[campaign_id]
            (filled.archived if archive else filled.deleted).add(campaign_id)
