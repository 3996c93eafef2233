"""Leases against real databases: two workers (two engines) never claim the same row."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from assistant.emails import Sender
from assistant.outbox import Effects
from assistant.store import Store, database
from assistant.store.database import IN_AT_ONCE, update_each
from assistant.store.tables import Outbox, WatchedCalendar

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


def test_writers_of_one_process_take_turns_at_sqlites_write_lock(tmp_path):
    """A thread writing back to back (a burst's detection) must not starve another (the
    outbox): SQLite's busy wait alone let it keep the lock for seconds."""
    store = Store.open(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    now = datetime.now(UTC)
    busy_writes, stop = [0], threading.Event()

    def write_back_to_back() -> None:
        while not stop.is_set():
            with store.transaction() as session:
                session.add(Outbox(idempotency_key=f"busy{busy_writes[0]}", kind="email",
                                   payload={}, next_attempt_at=now, created_at=now))
            busy_writes[0] += 1

    busy = threading.Thread(target=write_back_to_back)
    busy.start()
    try:
        while busy_writes[0] < 5:
            time.sleep(0.01)
        before = busy_writes[0]
        for n in range(10):
            with store.transaction() as session:
                session.add(Outbox(idempotency_key=f"other{n}", kind="email", payload={},
                                   next_attempt_at=now, created_at=now))
        # Turn about: the busy thread wrote about once per write of ours, not hundreds of times.
        assert busy_writes[0] - before <= 30
    finally:
        stop.set()
        busy.join(timeout=30)
        store.close()


def test_a_nested_write_transaction_fails_at_once_on_sqlite(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nested.sqlite3'}")
    try:
        with (store.transaction(), pytest.raises(RuntimeError, match="inside another"),
              store.transaction()):
            pass
    finally:
        store.close()


def test_a_row_is_delivered_only_while_it_is_still_ours_and_pending(url):
    now = datetime.now(UTC)
    clock = [now]
    store = Store.open(url)
    effects = Effects(store, Sender("assistant@example.com", "Example"), lambda: clock[0],
                      lease=timedelta(seconds=120))
    try:
        with store.transaction() as session:
            session.add_all(Outbox(idempotency_key=f"k{n}", kind="email", payload={},
                                   next_attempt_at=now, created_at=now) for n in range(3))
        first, withdrawn, late = effects.claim("worker-a")
        assert effects.still_ours(first)  # early in its lease: only read
        with store.transaction() as session:
            session.get(Outbox, withdrawn.id).state = "cancelled"
        assert not effects.still_ours(withdrawn)
        clock[0] = now + timedelta(seconds=100)  # most of the lease gone: renewed
        assert effects.still_ours(late)
        with store.reading() as session:
            assert session.get(Outbox, late.id).lease_expires == clock[0] + timedelta(seconds=120)
        clock[0] = now + timedelta(seconds=121)  # first's lapsed, and another worker took it
        with store.transaction() as session:
            [taken] = Store.claim(session, Outbox, owner="worker-b", now=clock[0],
                                  lease=timedelta(seconds=120), limit=5,
                                  where=[Outbox.state == "pending"])
        assert taken.id == first.id and not effects.still_ours(first)
        assert effects.still_ours(late)
    finally:
        store.close()


def _calendars(store: Store, count: int, now: datetime) -> list[int]:
    with store.transaction() as session:
        rows = [WatchedCalendar(provider="google", address=f"u{n}@example.com", sync_due=now)
                for n in range(count)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_claiming_many_calendars_leases_each_one_once_with_the_values_asked_for(url):
    # More rows than one IN (...) takes on SQLite, so the runs of ids are crossed too.
    now, due_again = datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)
    store = Store.open(url)
    try:
        ids = _calendars(store, IN_AT_ONCE + 7, now)
        with store.transaction() as session:
            rows = Store.claim_columns(
                session, WatchedCalendar, (WatchedCalendar.id, WatchedCalendar.address),
                owner="w", now=now, lease=timedelta(minutes=5), limit=IN_AT_ONCE + 5,
                order_by=[WatchedCalendar.id], also={"sync_due": due_again})
        assert [row.id for row in rows] == ids[:IN_AT_ONCE + 5]
        with store.reading() as session:
            leased = session.execute(select(WatchedCalendar.id, WatchedCalendar.lease_owner,
                                            WatchedCalendar.sync_due)).all()
        assert {row.id for row in leased if row.lease_owner == "w"} == set(ids[:IN_AT_ONCE + 5])
        assert all(row.sync_due == due_again for row in leased if row.lease_owner == "w")
        assert all(row.sync_due == now for row in leased if row.lease_owner is None)
    finally:
        store.close()


def test_update_each_writes_each_rows_own_values_only_where_its_key_still_matches(url):
    _update_each_where_the_key_matches(url)


def test_update_each_does_the_same_with_an_sqlite_too_old_for_json(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "SQLITE_HAS_JSON", False)
    _update_each_where_the_key_matches(f"sqlite:///{tmp_path / 'old.sqlite3'}")


def _update_each_where_the_key_matches(url: str) -> None:
    now = datetime.now(UTC)
    store = Store.open(url)
    try:
        ids = _calendars(store, IN_AT_ONCE + 3, now)
        with store.transaction() as session:
            session.execute(update(WatchedCalendar).values(lease_owner="mine"))
            session.execute(update(WatchedCalendar).where(WatchedCalendar.id == ids[1])
                            .values(lease_owner="another worker"))
        with store.transaction() as session:
            update_each(session, WatchedCalendar.__table__,
                        [{"id": row_id, "lease_owner": "mine", "cursor": f"c{row_id}"}
                         for row_id in ids],
                        key=("id", "lease_owner"),
                        also={"last_synced_at": now, "lease_owner": None})
        with store.reading() as session:
            rows = {row.id: row for row in session.scalars(select(WatchedCalendar))}
        taken = rows[ids[1]]
        assert (taken.cursor, taken.lease_owner, taken.last_synced_at) == (
            None, "another worker", None)
        written = [rows[row_id] for row_id in ids if row_id != ids[1]]
        assert [row.cursor for row in written] == [f"c{row.id}" for row in written]
        assert {(row.lease_owner, row.last_synced_at) for row in written} == {(None, now)}
    finally:
        store.close()


def test_an_effect_added_twice_under_one_key_is_kept_once_in_one_transaction_or_two(url):
    store = Store.open(url)
    effects = Effects(store, Sender("assistant@example.com", "Example"),
                      lambda: datetime.now(UTC), lease=timedelta(seconds=120))
    try:
        with store.transaction() as session:
            effects.add(session, "question:1:1", "annotate", None, {"first": True})
            effects.add(session, "question:1:1", "annotate", None, {"first": False})
        with store.transaction() as session:
            effects.add(session, "question:1:1", "annotate", None, {"first": False})
            effects.add(session, "question:2:1", "annotate", None, {"first": True})
        with store.reading() as session:
            rows = session.execute(select(Outbox.idempotency_key, Outbox.payload)).all()
        assert sorted(rows) == [("question:1:1", {"first": True}),
                                ("question:2:1", {"first": True})]
    finally:
        store.close()
