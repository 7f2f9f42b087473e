"""The reference that makes the same writes as the service (`bench.reference`'s `same-writes`):
what `make bench` judges a REST add against must do what it says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import payloads
from bench.reference import Campaign, SameWritesStore


def _store(tmp_path: Path) -> SameWritesStore:
    path = str(tmp_path / "reference.db")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE app_keys (access_key TEXT, vdn_id INTEGER, secret_key TEXT)"
        )
        connection.execute("INSERT INTO app_keys VALUES ('ak', 1, 'sk')")
    return SameWritesStore(path)


def _rows(store: SameWritesStore, table: str) -> list[tuple[object, ...]]:
    return store._connection.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608


def test_an_add_keeps_its_key_and_a_change_record_and_a_retry_is_answered_with_it(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    body = payloads.example_body("first")
    campaign = Campaign.model_validate_json(body)

    first = store.add_keyed(1, campaign, body, key="k1", actor="ak")
    again = store.add_keyed(1, campaign, body, key="k1", actor="ak")
    other = payloads.example_body("second")
    second = store.add_keyed(1, Campaign.model_validate_json(other), other, key="k2", actor="ak")

    assert isinstance(first, int)
    assert again == first
    assert second != first
    assert len(_rows(store, "reference_campaigns")) == 2
    keys = [(row[0], row[1], row[3]) for row in _rows(store, "reference_keys")]
    assert keys == [(1, "k1", first), (1, "k2", second)]
    changes = [(row[0], row[1], row[2], row[4]) for row in _rows(store, "reference_changes")]
    assert changes == [(1, 1, first, "ak"), (1, 2, second, "ak")]


def test_a_key_used_for_another_campaign_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    body = payloads.example_body("first")
    store.add_keyed(1, Campaign.model_validate_json(body), body, key="k1", actor="ak")
    other = payloads.example_body("second")

    refused = store.add_keyed(1, Campaign.model_validate_json(other), other, key="k1", actor="ak")

    assert refused == "02000009"
    assert len(_rows(store, "reference_campaigns")) == 1
    assert len(_rows(store, "reference_changes")) == 1
