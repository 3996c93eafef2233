"""The Alembic migrations build exactly the schema the SQLAlchemy tables describe."""

from __future__ import annotations

import os
import stat
import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from assistant.store import Store
from assistant.store.database import MIGRATIONS, StoreUnavailable, waiting_for_the_server
from assistant.store.tables import Base, WatchedCalendar
from integrations.sandbox.server import free_port


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'schema.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    opened = Store.open(url)
    yield opened
    opened.close()


def test_migrations_and_tables_agree(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_migrating_twice_changes_nothing(store):
    store.migrate()
    assert store.is_current()
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0005"


def test_a_database_of_the_first_release_is_upgraded_with_its_calendars_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        settings = AlembicConfig()
        settings.set_main_option("script_location", str(MIGRATIONS))
        settings.attributes["connection"] = connection
        command.upgrade(settings, "0001")
        connection.execute(text(
            "INSERT INTO calendars (provider, address, paused, source, sync_due) "
            "VALUES ('google', 'alice@example.com', 0, 'config', '2026-12-01 09:00:00')"))
    engine.dispose()
    store = Store.open(url)
    try:
        with store.transaction() as session:
            row = session.scalars(select(WatchedCalendar)).one()
            assert (row.address, row.removed_at, row.watching) == ("alice@example.com", None,
                                                                   True)
    finally:
        store.close()


def test_a_server_not_there_yet_is_waited_for_and_a_wrong_database_is_not(postgres_cluster,
                                                                         tmp_path):
    nobody_listens = f"postgresql+psycopg://test@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreUnavailable) as refused:
        Store.open(nobody_listens)
    assert refused.value.for_now
    for wrong in (postgres_cluster.url + "/no_such_database",
                  f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as missing:
            Store.open_waiting(wrong, patience_seconds=30)
        assert not missing.value.for_now and time.monotonic() - started < 5  # said at once


def test_a_first_step_is_tried_again_while_the_server_is_not_there_yet():
    refused = OperationalError("SELECT 1", {}, Exception('connection to server at "127.0.0.1" '
                                                       "failed: Connection refused"))
    # What PostgreSQL says while it replays its log after a crash (a chaos run met it).
    recovering = OperationalError("SELECT 1", {}, Exception(
        "FATAL:  the database system is not yet accepting connections"))
    failures = [refused, recovering]

    def reconcile() -> str:
        if failures:
            raise failures.pop()
        return "reconciled"

    assert waiting_for_the_server(reconcile, patience_seconds=30) == "reconciled"

    def broken() -> str:
        raise OperationalError("SELECT 1", {}, Exception('relation "calendars" does not exist'))

    started = time.monotonic()
    with pytest.raises(OperationalError):
        waiting_for_the_server(broken, patience_seconds=30)
    assert time.monotonic() - started < 1  # not a matter of waiting: said at once


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path):
    previous = os.umask(0o022)  # a usual umask would leave it readable by everyone
    try:
        store = Store.open(f"sqlite:///{tmp_path / 'assistant.sqlite3'}")
        with store.transaction():
            pass
        store.close()
    finally:
        os.umask(previous)
    files = sorted(tmp_path.iterdir())
    assert [path.name for path in files][0] == "assistant.sqlite3"
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == \
        dict.fromkeys((path.name for path in files), 0o600)
