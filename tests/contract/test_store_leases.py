"""Leases against real databases: two workers (two engines) never claim the same row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from assistant.store import Store
from assistant.store.tables import Outbox

ROWS = 60


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leases.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_two_workers_claiming_at_once_split_the_rows_between_them(url):
    now = datetime.now(UTC)
    first, second = Store.open(url), Store(url)
    try:
        with first.transaction() as session:
            session.add_all(Outbox(idempotency_key=f"k{n}", kind="email", payload={},
                                   next_attempt_at=now, created_at=now) for n in range(ROWS))
        claimed: dict[str, list[int]] = {"a": [], "b": []}
        start = threading.Barrier(2)

        def claim_all(store: Store, owner: str) -> None:
            start.wait()
            while True:
                with store.transaction() as session:
                    rows = Store.claim(session, Outbox, owner=owner, now=now,
                                       lease=timedelta(minutes=5), limit=3)
                    if not rows:
                        return
                    claimed[owner].extend(row.id for row in rows)

        workers = [threading.Thread(target=claim_all, args=(store, owner))
                   for store, owner in ((first, "a"), (second, "b"))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not set(claimed["a"]) & set(claimed["b"])
        assert sorted(claimed["a"] + claimed["b"]) == list(range(1, ROWS + 1))
    finally:
        first.close()
        second.close()


def test_a_lapsed_lease_is_free_again_and_a_live_one_is_not(url):
    now = datetime.now(UTC)
    store = Store.open(url)
    try:
        with store.transaction() as session:
            session.add(Outbox(idempotency_key="k", kind="email", payload={},
                               next_attempt_at=now, created_at=now))
        with store.transaction() as session:
            assert len(Store.claim(session, Outbox, owner="dead", now=now,
                                   lease=timedelta(seconds=30), limit=5)) == 1
        with store.transaction() as session:
            assert Store.claim(session, Outbox, owner="same-worker", now=now,
                               lease=timedelta(seconds=30), limit=5) == []
        later = now + timedelta(seconds=31)
        with store.transaction() as session:
            [row] = Store.claim(session, Outbox, owner="alive", now=later,
                                lease=timedelta(seconds=30), limit=5)
            assert row.lease_owner == "alive"
    finally:
        store.close()
