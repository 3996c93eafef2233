"""The assistant's state (SQLAlchemy 2, Alembic migrations); see tables for what is kept."""

from assistant.store.database import Store

__all__ = ["Store"]
