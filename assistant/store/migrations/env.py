"""Alembic's environment: migrations run on the connection the store hands over.

The store calls `alembic upgrade head` itself on start (see assistant.store.database), passing
its open connection in `config.attributes["connection"]`, so no alembic.ini or URL is needed.
"""

from __future__ import annotations

from alembic import context

from assistant.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
