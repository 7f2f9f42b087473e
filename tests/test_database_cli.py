"""`isales seed [--dry-run]`, `isales migrate --status` and `isales tenants`, run as an operator
runs them, on SQLite and PostgreSQL: what they print, their exit codes, and that what only
looks changes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to, revisions
from tests.processes import isales
from tests.service.helpers import SEED, seeded_rows

BIN = Path(sys.executable).parent


def lines(output: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines()]


def logged(stderr: str, message: str) -> list[dict[str, Any]]:
    """The log lines of `message`, without their time, level and logger."""
    found = [entry for entry in lines(stderr) if entry["message"] == message]
    return [{k: v for k, v in e.items() if k not in ("time", "level", "logger")} for e in found]


def seeded(url: str, tmp_path: Path, content: str = SEED) -> Path:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(content)
    result = isales("seed", str(seed_file), database_url=url)
    assert result.returncode == 0, result.stderr
    return seed_file


def test_a_misspelt_file_is_refused_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    """The issue's file: `[[tenants.app_key]]` and `timezone`, once exit 0 and the tenant's
    keys, queues and zone gone."""
    seed_file = seeded(database_url, tmp_path)
    before = seeded_rows(database_url)
    for misspelt, line, hint, options in [
        (
            ("[[tenants.app_keys]]", "[[tenants.app_key]]"),
            4,
            "unknown key 'app_key' in tenants[0]; did you mean 'app_keys'?",
            (),
        ),
        (
            ("time_zone =", "timezone ="),
            3,
            "unknown key 'timezone' in tenants[0]; did you mean 'time_zone'?",
            ("--dry-run",),
        ),
    ]:
        seed_file.write_text(SEED.replace(*misspelt))
        result = isales("seed", str(seed_file), *options, database_url=database_url)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"isales seed: {seed_file}:{line}: {hint}\n"
    assert seeded_rows(database_url) == before


def test_a_tenant_keeps_what_the_file_leaves_out(database_url: str, tmp_path: Path) -> None:
    seed_file = seeded(database_url, tmp_path)
    before = seeded_rows(database_url)
    seed_file.write_text("[[tenants]]\nvdn_id = 7\n")  # no time_zone, app_keys, skill_queues
    result = isales("seed", str(seed_file), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert logged(result.stderr, "seed change") == []
    assert seeded_rows(database_url) == before
    # Only lists written empty take the last key and the queues away.
    seed_file.write_text("[[tenants]]\nvdn_id = 7\napp_keys = []\nskill_queues = []\n")
    result = isales("seed", str(seed_file), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert [e["change"] for e in logged(result.stderr, "seed change")] == [
        "app_key_revoked",
        "skill_queue_removed",
        "skill_queue_removed",
    ]
    assert seeded_rows(database_url)["app_keys"] == set()


def test_a_dry_run_prints_the_changes_a_seed_then_makes_and_logs(
    database_url: str, tmp_path: Path
) -> None:
    seed_file = seeded(database_url, tmp_path)
    before = seeded_rows(database_url)
    seed_file.write_text(
        SEED.replace("Europe/Berlin", "Asia/Tokyo")
        .replace('"sk-7"', '"sk-7-new"')
        .replace('name = "second"', 'name = "renamed"')
    )
    dry_run = isales("seed", str(seed_file), "--dry-run", database_url=database_url)
    assert dry_run.returncode == 0, dry_run.stderr
    expected = [
        {
            "vdn_id": 7,
            "change": "time_zone_changed",
            "before": "Europe/Berlin",
            "after": "Asia/Tokyo",
        },
        {"vdn_id": 7, "change": "secret_key_changed", "access_key": "ak-7"},
        {
            "vdn_id": 7,
            "change": "skill_queue_renamed",
            "skill_queue": 3,
            "before": "second",
            "after": "renamed",
        },
    ]
    assert lines(dry_run.stdout) == expected
    assert seeded_rows(database_url) == before
    applied = isales("seed", str(seed_file), database_url=database_url)
    assert applied.returncode == 0, applied.stderr
    assert logged(applied.stderr, "seed change") == [
        {"message": "seed change", **change} for change in expected
    ]
    [summary] = logged(applied.stderr, "seed applied")
    assert (summary["changes"], summary["revoked_keys"], summary["removed_skill_queues"]) == (
        3,
        0,
        0,
    )
    assert "sk-7" not in dry_run.stdout + dry_run.stderr + applied.stderr  # no secret, old or new
    again = isales("seed", str(seed_file), "--dry-run", database_url=database_url)
    assert (again.returncode, again.stdout) == (0, "")


def test_a_dry_run_on_a_database_never_migrated_creates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "var" / "isales.db"
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(SEED)
    result = isales("seed", str(seed_file), "--dry-run", database_url=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert [line["change"] for line in lines(result.stdout)] == [
        "tenant_added",
        "app_key_added",
        "skill_queue_added",
        "skill_queue_added",
    ]
    [note] = logged(result.stderr, "a seed migrates the database first")
    assert (note["revision"], note["pending"]) == (None, revisions())
    assert not database.parent.exists()


def test_migrate_status_says_what_is_pending(database_url: str) -> None:
    known = revisions()
    status = isales("migrate", "--status", database_url=database_url)
    assert status.returncode == 3, status.stderr
    assert orjson.loads(status.stdout) == {"revision": None, "head": known[-1], "pending": known}
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine, known[-3])
        status = isales("migrate", "--status", database_url=database_url)
        assert status.returncode == 3, status.stderr
        assert orjson.loads(status.stdout)["pending"] == known[-2:]
        migrate_to(engine)
        status = isales("migrate", "--status", database_url=database_url)
        assert (status.returncode, status.stderr) == (0, "")
        assert orjson.loads(status.stdout) == {
            "revision": known[-1],
            "head": known[-1],
            "pending": [],
        }
        with engine.begin() as connection:  # as a newer release leaves it
            connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        status = isales("migrate", "--status", database_url=database_url)
        assert status.returncode == 1
        assert orjson.loads(status.stdout) == {"revision": "0099", "head": known[-1], "pending": []}
        assert "the database is at revision 0099, which this release does not know" in status.stderr
    finally:
        engine.dispose()


def test_migrate_status_on_a_database_that_cannot_be_reached() -> None:
    status = isales("migrate", "--status", database_url="postgresql://nobody@127.0.0.1:1/none")
    assert (status.returncode, status.stdout) == (1, "")
    assert status.stderr.startswith("isales migrate --status: the database failed: ")
    assert len(status.stderr.splitlines()) == 1


def test_tenants_lists_access_keys_never_secrets(database_url: str, tmp_path: Path) -> None:
    listed = isales("tenants", database_url=database_url)
    assert (listed.returncode, listed.stdout) == (0, "")  # never migrated: none
    seeded(database_url, tmp_path, SEED + "[[tenants]]\nvdn_id = 3\n")
    listed = isales("tenants", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    seven = {
        "vdn_id": 7,
        "time_zone": "Europe/Berlin",
        "app_keys": ["ak-7"],
        "skill_queues": [{"id": 2, "name": "defaultAudioSkill"}, {"id": 3, "name": "second"}],
    }
    three = {"vdn_id": 3, "time_zone": "UTC", "app_keys": [], "skill_queues": []}
    assert lines(listed.stdout) == [three, seven]
    assert "sk-7" not in listed.stdout + listed.stderr
    some = isales("tenants", "7", "5", database_url=database_url)
    assert some.returncode == 1
    assert lines(some.stdout) == [seven]
    assert some.stderr == "isales tenants: VDN 5 is not configured\n"


README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_block(language: str, containing: str) -> str:
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", README, re.S)
    [block] = [b for b in blocks if containing in b]
    return block


def test_the_readme_dry_run_is_what_a_dry_run_prints(sqlite_url: str, tmp_path: Path) -> None:
    before = '[[tenants]]\nvdn_id = 1\ntime_zone = "UTC"\n'
    before += "app_keys = [{access_key = 'demo-old', secret_key = 'x'}]\n"
    before += "skill_queues = [{id = 2, name = 'defaultAudioSkill'}, {id = 3, name = 'second'}]\n"
    seed_file = seeded(sqlite_url, tmp_path, before)
    seed_file.write_text(
        before.replace("UTC", "Asia/Shanghai")
        .replace("demo-old", "demo-new")
        .replace(", {id = 3, name = 'second'}", "")
    )
    result = isales("seed", str(seed_file), "--dry-run", database_url=sqlite_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == readme_block("json", "time_zone_changed")


def test_the_readme_deploy_check_migrates_what_is_pending(sqlite_url: str) -> None:
    script = readme_block("sh", "isales migrate --status")
    env = {"ISALES_DATABASE_URL": sqlite_url, "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin"}
    for _ in range(2):  # pending, then up to date
        result = subprocess.run(
            ["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    status = isales("migrate", "--status", database_url=sqlite_url)
    assert status.returncode == 0, status.stderr
