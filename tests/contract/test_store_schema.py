"""The Alembic migrations build exactly the schema the SQLAlchemy tables describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from assistant.store import Store
from assistant.store.tables import Base


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
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0001"
