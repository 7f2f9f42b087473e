"""Upgrading a database that an earlier release made and filled, on SQLite and PostgreSQL, as an
operator does it (`isales migrate`): afterwards the database has exactly the schema a new one
gets, and the service answers on it as on a new one, old campaigns included. Downgrades keep
the data, or are refused, naming what the older schema has no place for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import inspect, text

from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to, revisions
from tests.conftest import FixedClock, ServerFactory, fresh_postgres_database
from tests.examples import ivr_campaign
from tests.processes import isales, isales_started
from tests.service.helpers import (
    EXECUTING,
    IVR,
    PAUSED,
    SKILL_QUEUE,
    TODAY,
    add,
    campaign,
    delete,
    get,
    listed_ids,
    not_found,
    pause,
    refused,
    replacement,
    resume,
    update,
    usage,
)
from tests.service.old_revisions import FILLED_AT, Filled, OldCampaign, fill
from tests.service.schema_snapshot import Snapshot, id_sequence_of, schema_of

EARLIER = revisions()[:-1]
HEAD = revisions()[-1]

Client = Callable[[str], CampaignServiceStub]


@pytest.fixture
def new_database_url(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Another empty database of the kind `database_url` is."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    yield from fresh_postgres_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def client_of(make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]) -> Client:
    """A client of a server of this release on a database already migrated, on the clock of the
    old release's adds (their idempotency keys are fresh)."""

    def connect(url: str) -> CampaignServiceStub:
        running = make_server(url, seed=False, migrate=False, clock=FixedClock(FILLED_AT))
        return CampaignServiceStub(channel_to(running.port))

    return connect


def migrated_schema(url: str, revision: str = "head") -> Snapshot:
    """The schema a new database gets at `revision`."""
    engine = create_database_engine(url, pool_size=1)
    try:
        migrate_to(engine, revision)
    finally:
        engine.dispose()
    return schema_of(url)


def migrate(url: str, *options: str) -> None:
    result = isales("migrate", *options, database_url=url)
    assert result.returncode == 0, result.stderr


# -- upgrades ----------------------------------------------------------------------------------


@pytest.mark.parametrize("revision", EARLIER)
def test_an_upgraded_database_behaves_like_a_new_one(
    revision: str, database_url: str, new_database_url: str, client_of: Client
) -> None:
    filled = fill(revision, database_url)
    migrate(database_url)
    assert schema_of(database_url) == migrated_schema(new_database_url)
    check_the_lifecycle(client_of(database_url), filled)


@pytest.mark.parametrize("revision", EARLIER)
def test_an_upgraded_database_counts_the_old_campaigns_in_its_quotas(
    revision: str,
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    """The counts an add reads (revision 0009) start from the campaigns already stored."""
    filled = fill(revision, database_url)
    migrate(database_url)
    skills = sum(1 for old in filled.live.values() if old.vdn_id == 1 and not old.ivr)
    running = make_server(
        database_url,
        seed=False,
        migrate=False,
        clock=FixedClock(FILLED_AT),
        max_campaigns_per_family=skills + 1,
        max_active_tasks=skills + 1,
    )
    client = CampaignServiceStub(channel_to(running.port))
    add(client, campaign("the last that fits"))
    failure = refused(
        client.AddCampaign, rpc.AddCampaignRequest(vdn_id=1, campaign=campaign("one too many"))
    )
    assert failure.reason == legacy_code(ResultCode.RESULT_CODE_SKILL_QUEUE_CAMPAIGN_LIMIT)
    delete(client, 2)  # a paused one
    add(client, campaign("fits again"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_database_that_0003_rebuilt_is_repaired(
    database_url: str, new_database_url: str, client_of: Client
) -> None:
    """0003 as first released rebuilt the table on PostgreSQL too: the new id sequence kept
    Alembic's temporary name and started at 1, and adds collided with the ids already given
    until it passed them. 0004 renames it and moves it past every id given, including those of
    the adds since, which failed (or were deleted) and must not be given again."""
    filled = fill("0002", database_url)
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine, "0003")
        with engine.begin() as connection:
            # What the first 0003 did: the same batch operation, rebuilding the table.
            operations = Operations(MigrationContext.configure(connection))
            with operations.batch_alter_table("campaigns", recreate="always"):
                pass
            assert id_sequence_of(connection) == "public._alembic_tmp_campaigns_id_seq"
            # Adds after that upgrade took ids 1 to 14 from the new sequence: 1 to 12 failed, 13
            # and 14 were given to campaigns deleted since.
            given = [
                connection.scalar(text("SELECT nextval('_alembic_tmp_campaigns_id_seq')"))
                for _ in range(14)
            ]
            assert given[-1] == 14
    finally:
        engine.dispose()
    migrate(database_url)
    assert schema_of(database_url) == migrated_schema(new_database_url)
    check_the_lifecycle(client_of(database_url), filled, next_id=15)


def test_replicas_migrating_at_once_take_turns(database_url: str, new_database_url: str) -> None:
    """Each replica migrates as it starts: several at once on a new database all succeed, one
    after another, and leave the schema of a new database."""
    commands = [isales_started("migrate", database_url=database_url) for _ in range(3)]
    for command in commands:
        _, errors = command.communicate(timeout=60)
        assert command.returncode == 0, errors
    assert schema_of(database_url) == migrated_schema(new_database_url)


# -- downgrades --------------------------------------------------------------------------------


@pytest.mark.parametrize("revision", EARLIER)
def test_a_downgrade_keeps_what_its_revision_can_hold(
    revision: str, database_url: str, new_database_url: str, client_of: Client
) -> None:
    """Data the older revision can hold goes back into its shape, row for row, and comes up
    again as from an upgrade."""
    filled = fill(revision, database_url)
    before = rows_of(database_url)
    migrate(database_url)
    migrate(database_url, "--to", revision)
    assert schema_of(database_url) == migrated_schema(new_database_url, revision)
    assert rows_of(database_url) == before
    migrate(database_url)
    check_the_lifecycle(client_of(database_url), filled)


def test_a_downgrade_that_would_lose_data_is_refused_and_changes_nothing(
    database_url: str, new_database_url: str, client_of: Client
) -> None:
    filled = fill(HEAD, database_url)  # campaign 10 archived
    client = client_of(database_url)
    pause(client, 3)
    delete(client, 3)  # its idempotency key answers retries for a day
    before = rows_of(database_url)
    for target in ("0005", "0002"):
        result = isales("migrate", "--to", target, database_url=database_url)
        assert result.returncode == 1
        assert "isales migrate: revision 0005 has no place for the change history" in (
            result.stderr
        )
        assert rows_of(database_url) == before
    forget_the_change_history(database_url)
    before = rows_of(database_url)
    for target, lost in (
        ("0002", "1 archived campaign(s) (the history) and 1 idempotency key(s) of deleted"),
        ("0001", "1 archived campaign(s)"),
    ):
        result = isales("migrate", "--to", target, database_url=database_url)
        assert result.returncode == 1
        assert f"isales migrate: revision 0002 has no place for {lost}" in result.stderr
        assert "nothing was changed" in result.stderr
        assert rows_of(database_url) == before
        assert schema_of(database_url) == migrated_schema(new_database_url)
    assert filled.archived == {10}


def run_sql(url: str, statement: str) -> None:
    engine = create_database_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def forget_the_change_history(url: str) -> None:
    """Empty the change history, as a database whose history was all pruned."""
    run_sql(url, "DELETE FROM campaign_changes")


def test_a_downgrade_to_0001_refuses_to_drop_idempotency_keys(
    database_url: str, new_database_url: str
) -> None:
    fill("0002", database_url)
    migrate(database_url)
    before = rows_of(database_url)
    result = isales("migrate", "--to", "0001", database_url=database_url)
    assert result.returncode == 1
    assert "revision 0001 has no place for the idempotency keys of 3 campaign(s)" in result.stderr
    assert rows_of(database_url) == before
    assert schema_of(database_url) == migrated_schema(new_database_url)


def test_a_database_of_a_newer_release_is_left_alone(sqlite_url: str, tmp_path: Path) -> None:
    """A server of an older release started after a newer one migrated the database."""
    migrate(sqlite_url)
    run_sql(sqlite_url, "UPDATE alembic_version SET version_num = '0099'")
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text('[[tenants]]\nvdn_id = 1\ntime_zone = "UTC"\n')
    for command in (("migrate",), ("grpc-server",), ("serve",), ("seed", str(seed_file))):
        result = isales(*command, database_url=sqlite_url)
        assert result.returncode == 1, command  # seed too: its file was fine
        assert "the database is at revision 0099, which this release does not know" in (
            result.stderr
        ), command
    unknown = isales("migrate", "--to", "0099", database_url=sqlite_url)
    assert unknown.returncode == 1
    assert f"unknown revision '0099': this release knows {', '.join(revisions())}" in (
        unknown.stderr
    )


def paged_ids(client: CampaignServiceStub) -> list[int]:
    """The tenant's live campaigns, three a page, following the page tokens."""
    found: list[int] = []
    token = ""
    while True:
        page = client.ListCampaigns(
            rpc.ListCampaignsRequest(vdn_id=1, page_size=3, page_token=token), timeout=10
        )
        found += [record.id for record in page.campaigns]
        token = page.next_page_token
        if not token:
            return found
        assert len(found) < 100, "the pages do not end"


def rows_of(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables that hold campaigns and keys, in a fixed order."""
    engine = create_database_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            queries = {"campaigns": "SELECT * FROM campaigns ORDER BY id"}
            if "idempotency_keys" in inspect(connection).get_table_names():
                queries["idempotency_keys"] = "SELECT * FROM idempotency_keys ORDER BY vdn_id, key"
            return {
                table: [tuple(row) for row in connection.execute(text(query))]
                for table, query in queries.items()
            }
    finally:
        engine.dispose()


def check_the_lifecycle(client: CampaignServiceStub, filled: Filled, next_id: int = 13) -> None:
    """Every call of the service on the old campaigns and new ones beside them."""
    old = {i: c for i, c in filled.live.items() if c.vdn_id == 1}

    def ids(where: Callable[[OldCampaign], bool]) -> set[int]:
        return {campaign_id for campaign_id, found in old.items() if where(found)}

    # Old campaigns read as their release stored them; deleted ones stay gone.
    for campaign_id, found in filled.live.items():
        record = get(client, campaign_id, found.vdn_id)
        assert record.campaign == found.campaign()
        assert record.status == (PAUSED if found.paused else EXECUTING)
        assert record.create_time.ToDatetime() == FILLED_AT.replace(tzinfo=None)
    assert all(not_found(client, campaign_id) for campaign_id in filled.deleted)
    # New ids continue after the largest ever given, deleted ones included.
    new_skill = add(client, campaign("new skill"))
    new_ivr = add(client, ivr_campaign("new ivr", today=TODAY))
    assert [new_skill, new_ivr] == [next_id, next_id + 1]
    # The list and its filters see old and new campaigns alike.
    assert set(listed_ids(client)) == set(old) | {new_skill, new_ivr}
    assert set(listed_ids(client, name_contains="old ")) == set(old)
    assert set(listed_ids(client, status=PAUSED)) == ids(lambda c: c.paused)
    assert set(listed_ids(client, device_type=pb.DEVICE_TYPE_AUTOMATIC_IVR)) == (
        ids(lambda c: c.ivr) | {new_ivr}
    )
    assert set(listed_ids(client, cc_id=7)) == ids(lambda c: c.ivr)
    assert set(listed_ids(client, archived=True)) == filled.archived
    assert paged_ids(client) == listed_ids(client)  # page tokens too
    skills, ivrs = len(ids(lambda c: not c.ivr)) + 1, len(ids(lambda c: c.ivr)) + 1
    assert usage(client) == {SKILL_QUEUE: (skills, skills), IVR: (ivrs, ivrs)}
    # Names stay unique among live campaigns; retries of old keyed adds answer their campaign.
    failure = refused(
        client.AddCampaign, rpc.AddCampaignRequest(vdn_id=1, campaign=campaign("old skill 1"))
    )
    assert failure.reason == "0200005"
    for campaign_id, found in filled.keyed.items():
        again = client.AddCampaign(found.request(), timeout=10)
        assert (again.id, again.replayed) == (campaign_id, True)
    # Old campaigns change as new ones do.
    changed = update(client, 1, replacement("old skill 1 changed"))
    assert (changed.version, changed.campaign.description) == (2, "replaced")
    assert pause(client, 1).status == PAUSED
    assert resume(client, 2).status == EXECUTING
    delete(client, 6)
    delete(client, 9, archive=True)
    assert not_found(client, 6)
    assert set(listed_ids(client, archived=True)) == filled.archived | {9}
    assert usage(client) == {SKILL_QUEUE: (skills - 2, skills - 2), IVR: (ivrs, ivrs)}
    assert add(client, campaign("old skill 6")) == next_id + 2  # the name is free again
