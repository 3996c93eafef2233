"""Store.reading: reports and status read without holding up the workers, and cannot write."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from assistant.store import Store
from assistant.store.tables import WatchedCalendar

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reading.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_a_long_read_does_not_hold_up_a_writer_in_another_process_or_thread(url):
    reader, writer = Store.open(url), Store(url)
    try:
        with reader.reading() as session:
            assert session.scalar(select(func.count()).select_from(WatchedCalendar)) == 0
            # SQLite would wait busy_timeout (30 s) here if the reader held the write lock.
            with writer.transaction() as writing:
                writing.add(WatchedCalendar(provider="google", address="a@example.com",
                                            sync_due=NOW))
            # The reader keeps its snapshot until it ends.
            assert session.scalar(select(func.count()).select_from(WatchedCalendar)) == 0
        with reader.reading() as session:
            assert session.scalar(select(func.count()).select_from(WatchedCalendar)) == 1
    finally:
        reader.close()
        writer.close()


def test_what_a_reading_session_changes_is_never_kept(url):
    store = Store.open(url)
    try:
        refused = pytest.raises(DBAPIError) if store.is_postgresql else nullcontext()
        with refused, store.reading() as session:
            session.add(WatchedCalendar(provider="google", address="b@example.com",
                                        sync_due=NOW))
            session.flush()
        with store.reading() as session:
            assert session.scalar(select(func.count()).select_from(WatchedCalendar)) == 0
    finally:
        store.close()
