"""The seed file: read strictly (a key it does not know is refused, naming its line), and the
changes it makes, decided before any is made; only what the file says is changed. On SQLite
and PostgreSQL where the database is involved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.db.tenant_config import Change, ChangeKind, Tenant
from isales_campaign.service.errors import SeedError
from isales_campaign.service.seed import apply_seed, load_seed, parse_seed, plan
from tests.service.helpers import seeded_rows

#: A tenant as an operator's file lists it.
SEED = """\
[[tenants]]
vdn_id = 7
time_zone = "Europe/Berlin"
[[tenants.app_keys]]
access_key = "ak-7"
secret_key = "sk-7"
[[tenants.skill_queues]]
id = 2
name = "defaultAudioSkill"
"""

#: VDN 7 as SEED leaves it.
SEEDED = {7: Tenant(7, "Europe/Berlin", {"ak-7": "sk-7"}, {2: "defaultAudioSkill"})}


def load(tmp_path: Path, text: str) -> Any:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(text)
    return load_seed(seed_file)


@pytest.mark.parametrize(
    ("misspelt", "message"),
    [
        # The file: `[[tenants.app_key]]` for `app_keys`, `timezone` for `time_zone`.
        (
            SEED.replace("tenants.app_keys", "tenants.app_key"),
            "seed.toml:4: unknown key 'app_key' in tenants[0]; did you mean 'app_keys'?",
        ),
        (
            SEED.replace("time_zone =", "timezone ="),
            "seed.toml:3: unknown key 'timezone' in tenants[0]; did you mean 'time_zone'?",
        ),
        (
            SEED.replace("[[tenants]]", "[[tenant]]").replace("[[tenants.", "[[tenant."),
            "seed.toml:1: unknown key 'tenant'; did you mean 'tenants'?",
        ),
        (
            SEED.replace("secret_key =", "secret ="),
            "seed.toml:6: unknown key 'secret' in tenants[0].app_keys[0]; did you mean "
            "'secret_key'?",
        ),
        (
            SEED + "[[tenants]]\nvdn_id = 8\nskill_queues = [{id = 2, nmae = 'x'}]\n",
            "seed.toml:12: unknown key 'nmae' in tenants[1].skill_queues[0]; did you mean 'name'?",
        ),
        (
            SEED.replace("vdn_id = 7", "vdn_id = 7\ncolour = 'blue'"),
            "seed.toml:3: unknown key 'colour' in tenants[0]; the keys are vdn_id, time_zone, "
            "app_keys, skill_queues",
        ),
        (SEED.replace("vdn_id = 7", "vdn_id = 0"), "seed.toml:2: tenants[0].vdn_id must be"),
        (SEED + "[[tenants]]\nvdn_id = 7\n", "seed.toml:11: VDN 7 is listed twice"),
        (
            SEED + "[[tenants.skill_queues]]\nid = 2\nname = 'again'\n",
            "seed.toml:11: tenants[0].skill_queues[1]: skill queue 2 is listed twice",
        ),
        (
            SEED.replace(
                "[[tenants.skill",
                "[[tenants.app_keys]]\naccess_key = 'ak-7'\nsecret_key = 'other'\n[[tenants.skill",
            ),
            "seed.toml:8: tenants[0].app_keys[1]: access key 'ak-7' is listed twice",
        ),
    ],
)
def test_a_file_with_a_key_it_does_not_know_is_refused_naming_the_line(
    tmp_path: Path, misspelt: str, message: str
) -> None:
    with pytest.raises(SeedError) as refused:
        load(tmp_path, misspelt)
    assert str(refused.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(refused.value)


def test_what_the_file_leaves_out_is_kept() -> None:
    [seed] = parse_seed({"tenants": [{"vdn_id": 7}]})
    assert plan(SEEDED, [seed]) == []


def test_a_new_tenant_without_a_time_zone_runs_on_utc() -> None:
    [seed] = parse_seed({"tenants": [{"vdn_id": 8}]})
    assert plan(SEEDED, [seed]) == [Change(8, ChangeKind.TENANT_ADDED, after="UTC")]


def test_lists_given_are_whole_and_only_a_list_written_empty_removes_the_last() -> None:
    [seed] = parse_seed(
        {"tenants": [{"vdn_id": 7, "time_zone": "UTC", "app_keys": [], "skill_queues": []}]}
    )
    assert [change.as_dict() for change in plan(SEEDED, [seed])] == [
        {"vdn_id": 7, "change": "time_zone_changed", "before": "Europe/Berlin", "after": "UTC"},
        {"vdn_id": 7, "change": "app_key_revoked", "access_key": "ak-7"},
        {
            "vdn_id": 7,
            "change": "skill_queue_removed",
            "skill_queue": 2,
            "before": "defaultAudioSkill",
            "after": None,
        },
    ]


def test_each_change_is_said_once_and_never_with_a_secret() -> None:
    [seed] = parse_seed(
        {
            "tenants": [
                {
                    "vdn_id": 7,
                    "app_keys": [
                        {"access_key": "ak-7", "secret_key": "sk-7-new"},
                        {"access_key": "ak-7b", "secret_key": "sk-7b"},
                    ],
                    "skill_queues": [{"id": 2, "name": "renamed"}, {"id": 3, "name": "third"}],
                }
            ]
        }
    )
    changes = plan(SEEDED, [seed])
    assert [change.as_dict() for change in changes] == [
        {"vdn_id": 7, "change": "secret_key_changed", "access_key": "ak-7"},
        {"vdn_id": 7, "change": "app_key_added", "access_key": "ak-7b"},
        {
            "vdn_id": 7,
            "change": "skill_queue_renamed",
            "skill_queue": 2,
            "before": "defaultAudioSkill",
            "after": "renamed",
        },
        {
            "vdn_id": 7,
            "change": "skill_queue_added",
            "skill_queue": 3,
            "before": None,
            "after": "third",
        },
    ]
    assert "sk-7" not in repr(changes)


def test_a_key_moves_only_from_a_tenant_whose_list_leaves_it_out() -> None:
    moved = {"access_key": "ak-7", "secret_key": "sk-7"}
    taken = parse_seed({"tenants": [{"vdn_id": 8, "app_keys": [moved]}]})
    with pytest.raises(SeedError, match="'ak-7' \\(VDN 8 in the file\\) belongs to VDN 7"):
        plan(SEEDED, taken)  # VDN 7 keeps what the file does not list
    released = parse_seed(
        {"tenants": [{"vdn_id": 8, "app_keys": [moved]}, {"vdn_id": 7, "app_keys": []}]}
    )
    assert [(c.vdn_id, c.kind) for c in plan(SEEDED, released)] == [
        (8, ChangeKind.TENANT_ADDED),
        (8, ChangeKind.APP_KEY_ADDED),
        (7, ChangeKind.APP_KEY_REVOKED),
    ]


def test_a_dry_run_changes_nothing_and_says_what_the_seed_then_does(
    database_url: str, tmp_path: Path
) -> None:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine)
        assert len(apply_seed(engine, load(tmp_path, SEED))) == 3
        before = seeded_rows(database_url)
        edited = load(
            tmp_path,
            SEED.replace('"sk-7"', '"sk-7-new"').replace("Europe/Berlin", "Asia/Tokyo")
            + "[[tenants]]\nvdn_id = 8\napp_keys = []\n",
        )
        would = apply_seed(engine, edited, dry_run=True)
        assert seeded_rows(database_url) == before
        assert [change.kind for change in would] == [
            ChangeKind.TIME_ZONE_CHANGED,
            ChangeKind.SECRET_KEY_CHANGED,
            ChangeKind.TENANT_ADDED,
        ]
        assert apply_seed(engine, edited) == would
        assert apply_seed(engine, edited, dry_run=True) == []
    finally:
        engine.dispose()
    assert seeded_rows(database_url) == {
        "tenants": {(7, "Asia/Tokyo", 0), (8, "UTC", 0)},
        "app_keys": {("ak-7", 7, "sk-7-new")},
        "skill_queues": {(7, 2, "defaultAudioSkill")},
    }


def test_a_refused_seed_changes_nothing(database_url: str, tmp_path: Path) -> None:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine)
        apply_seed(engine, load(tmp_path, SEED))
        before = seeded_rows(database_url)
        # Adds VDN 8 and its queue, then finds ak-7 still VDN 7's: none of it is made.
        taking = "[[tenants]]\nvdn_id = 8\nskill_queues = [{id = 1, name = 'q'}]\n"
        taking += "app_keys = [{access_key = 'ak-7', secret_key = 'x'}]\n"
        with pytest.raises(SeedError, match="belongs to VDN 7"):
            apply_seed(engine, load(tmp_path, taking))
    finally:
        engine.dispose()
    assert seeded_rows(database_url) == before
