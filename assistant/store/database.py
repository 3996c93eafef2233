"""Opening the store: the engine, migrations on start, transactions and leases.

SQLite (a file, nothing to install) for one worker; PostgreSQL for several, where rows are
claimed with `SELECT ... FOR UPDATE SKIP LOCKED` so two workers never take the same calendar
or outbox row, and a lease that expires (its worker died) makes the row free again.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import tenacity
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Select,
    Table,
    any_,
    bindparam,
    column,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from assistant.errors import AssistantError
from assistant.secret_files import create_owner_only, readable_by_others
from assistant.store.tables import Base, JobLease

log = logging.getLogger(__name__)

# UPDATE ... FROM came with 3.33, JSON functions built in with 3.38; an older library (as some
# systems' Pythons link) gets a slower path to the same result.
SQLITE_HAS_JSON = sqlite3.sqlite_version_info >= (3, 38)
IN_AT_ONCE = 500  # values in one IN (...): well inside SQLite's limit on bound parameters


def in_chunks(values: Sequence[Any], size: int = IN_AT_ONCE) -> Iterator[list[Any]]:
    """values in runs of size: by default, for statements with an IN (...) of them."""
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def ids_in(session: Session, column: Any, ids: Sequence[int]) -> Iterator[ColumnElement[bool]]:
    """Conditions that between them match column to every one of ids, for one statement each.

    PostgreSQL takes them all as one array (`= ANY(...)`): psycopg parses a statement's text
    afresh when it is too long to cache, and an IN of thousands of parameters cost a worker
    more CPU than the rest of the statement. SQLite gets runs of IN_AT_ONCE.
    """
    if not ids:
        return
    if _is_postgresql(session):
        yield column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))
        return
    for chunk in in_chunks(ids):
        yield column.in_(chunk)


def update_each(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *,
                key: Sequence[str], also: Mapping[str, Any] | None = None) -> None:
    """For each row, UPDATE table SET its other columns (and also's, the same for every row)
    WHERE its key columns are equal to its values. Every row has the same columns, and their
    values are numbers, strings or None.

    The rows go as one JSON document, joined to the table in one statement (PostgreSQL's
    json_to_recordset, SQLite's json_each): an executemany cost the worker more CPU than the
    database's work, and on PostgreSQL ran thousands of statements on the server.
    """
    if not rows:
        return
    names = list(rows[0])
    per_row: list[dict[str, Any]] | None = None  # an executemany's parameters
    if _is_postgresql(session):
        each = (func.json_to_recordset(bindparam("each", list(rows), type_=JSON))
                .table_valued(*(column(name, table.c[name].type) for name in names))
                .render_derived(name="each", with_types=True))
        fields = {name: each.c[name] for name in names}
    elif SQLITE_HAS_JSON:
        each = func.json_each(bindparam("each", list(rows), type_=JSON)).table_valued(
            "value").alias("each")
        fields = {name: func.json_extract(each.c.value, f"$.{name}") for name in names}
    else:  # an old SQLite: one statement per row, run by the driver
        fields = {name: bindparam(f"each_{name}") for name in names}
        per_row = [{f"each_{name}": row[name] for name in names} for row in rows]
    statement = (update(table).where(*(table.c[name] == fields[name] for name in key))
                 .values({**{name: fields[name] for name in names if name not in key},
                          **(also or {})}))
    session.execute(statement, per_row)


def insert_new(session: Session, model: type[Base], values: Mapping[str, Any], *,
               unique: Sequence[str]) -> None:
    """INSERT a row of model unless one with the same values in unique is there already.

    One statement (ON CONFLICT DO NOTHING): the database, not a read before the write,
    decides, so two workers adding the same row at once leave one and no error. Nothing
    else the session holds is flushed for it: its changes go out together at the end.
    """
    insert = postgresql_insert if _is_postgresql(session) else sqlite_insert
    with session.no_autoflush:
        session.execute(insert(model.__table__).values(values)
                        .on_conflict_do_nothing(index_elements=unique))


def insert_or_replace(session: Session, model: type[Base], values: Mapping[str, Any], *,
                      unique: Sequence[str]) -> None:
    """INSERT a row of model, or replace the values of the one with the same values in unique.

    One statement (ON CONFLICT DO UPDATE), so two workers writing the same row at once leave
    the later one and no error.
    """
    insert = postgresql_insert if _is_postgresql(session) else sqlite_insert
    statement = insert(model.__table__).values(values)
    replaced = {name: statement.excluded[name] for name in values if name not in unique}
    with session.no_autoflush:
        session.execute(statement.on_conflict_do_update(index_elements=unique, set_=replaced))


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class StoreUnavailable(AssistantError):
    """The database cannot be reached or opened (the message never shows a password).

    `for_now` when the server was not there to ask (refused, starting up, shutting down):
    unlike a wrong password or a missing database, that may pass by itself.
    """

    def __init__(self, message: str, *, for_now: bool = False) -> None:
        super().__init__(message)
        self.for_now = for_now


# What libpq says of a server that is not there to ask yet. psycopg gives a failed connection
# no SQLSTATE, so its words are all there is; a message in another language is taken as
# lasting, which only means failing at once, as before there was any waiting.
_NOT_THERE_YET = re.compile(
    r"connection refused|the database system is (starting up|shutting down|in recovery mode|"
    r"not yet accepting connections)|"
    r"server closed the connection unexpectedly|timeout expired|no such file or directory",
    re.IGNORECASE)


# How long a worker starting up waits for a database server that is not up yet: it may be
# starting beside the worker, or restarting.
STARTUP_PATIENCE_SECONDS = 60.0
T = TypeVar("T")


def waiting_for_the_server(action: Callable[[], T], patience_seconds: float) -> T:
    """action(), tried again with backoff while the database server is not there yet (refused,
    starting up, shutting down), for up to patience_seconds; any other failure at once.

    For a worker's first steps (opening the store, reconciling its calendars): later on, its
    jobs simply run again at their next turn.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(patience_seconds),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=5),
        retry=tenacity.retry_if_exception(_not_there_yet),
        before_sleep=lambda state: log.warning(
            "%s; trying again in %.1f s", state.outcome.exception() if state.outcome else "",
            state.next_action.sleep if state.next_action else 0.0),
        reraise=True)
    return retrying(action)


def _not_there_yet(err: BaseException) -> bool:
    if isinstance(err, StoreUnavailable):
        return err.for_now
    return isinstance(err, OperationalError) and _for_now(err)


def _for_now(err: OperationalError) -> bool:
    if isinstance(err.orig, sqlite3.Error):
        return False
    return _NOT_THERE_YET.search(str(err.orig or err)) is not None


MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 72_431_001  # any constant: serialises workers migrating at the same start
_CALENDAR_LIST_LOCK = 72_431_002  # serialises changes to which calendars exist (see below)
Leased = TypeVar("Leased")


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._jobs_made: set[str] = set()
        # SQLite has one write lock for everyone; PostgreSQL locks rows, and needs no queue.
        self._writers: AbstractContextManager[None] = (
            nullcontext() if self.is_postgresql else _TakingTurns())

    @classmethod
    def open(cls, url: str) -> Store:
        """The store at url, migrated to the newest schema; StoreUnavailable if unreachable."""
        store = cls(url)
        try:
            store.migrate()
        except OperationalError as err:
            store.close()
            where = store.engine.url.render_as_string(hide_password=True)
            raise StoreUnavailable(f"cannot open the database {where}: "
                                   f"{str(err.orig or err).strip()}",
                                   for_now=_for_now(err)) from err
        return store

    @classmethod
    def open_waiting(cls, url: str, patience_seconds: float) -> Store:
        """Store.open, while the server is not there yet (see waiting_for_the_server)."""
        return waiting_for_the_server(lambda: cls.open(url), patience_seconds)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def is_current(self) -> bool:
        """True when the database has the newest schema (no migration is due)."""
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head

    def migrate(self) -> None:
        with self.engine.begin() as connection:
            if self.is_postgresql:
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            settings = AlembicConfig()
            settings.set_main_option("script_location", str(MIGRATIONS))
            settings.attributes["connection"] = connection
            command.upgrade(settings, "head")

    @staticmethod
    def lock_calendar_list(session: Session) -> None:
        """Hold, until session's transaction ends, the right to add calendar rows.

        Workers starting together each add the config's calendars, and an admin may add one
        meanwhile: read-then-insert would let two of them insert the same row. PostgreSQL
        takes an advisory lock; a SQLite transaction already holds the only write lock.
        """
        if _is_postgresql(session):
            session.execute(text(f"SELECT pg_advisory_xact_lock({_CALENDAR_LIST_LOCK})"))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or not at all."""
        with self._writers, self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads (status, reports, the admin page's views).

        On SQLite it takes no write lock, so a long report never holds up the workers; on
        PostgreSQL it is a read-only transaction. Its snapshot is consistent either way.
        """
        with self.engine.connect().execution_options(read_only=True) as connection:
            if self.is_postgresql:
                connection.exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with Session(connection, expire_on_commit=False) as session:
                yield session
            connection.rollback()

    def read_row(self, statement: Select[Any]) -> Row[Any] | None:
        """The first row statement reads, outside any write transaction.

        As reading(), but for a single statement, which sees one snapshot whatever the
        isolation level: on PostgreSQL it runs in autocommit, with no BEGIN and ROLLBACK
        around it, two round trips less for every row delivered.
        """
        options: dict[str, Any] = {"read_only": True}
        if self.is_postgresql:
            options["isolation_level"] = "AUTOCOMMIT"
        with self.engine.connect().execution_options(**options) as connection:
            row = connection.execute(statement).first()
            connection.rollback()
        return row

    def close(self) -> None:
        self.engine.dispose()

    # -- leases ----------------------------------------------------------------------------------

    @staticmethod
    def claim(session: Session, model: type[Leased], *, owner: str, now: datetime,
              lease: timedelta, limit: int, where: Sequence[Any] = (),
              order_by: Sequence[Any] = ()) -> list[Leased]:
        """Rows of model matching where and free, leased to owner until now + lease.

        A row under a live lease is not free, even to its owner: a worker runs several jobs
        at once, and two of its threads must not deliver the same row. Rows another
        transaction is claiming are skipped, not waited for (SKIP LOCKED); on SQLite every
        transaction begins IMMEDIATE, so it is the one writer from its first read.
        """
        rows = list(session.scalars(_free(select(model), model, now, limit, where, order_by)))
        values = _lease(session, model, [row.id for row in rows],  # type: ignore[attr-defined]
                        owner, now, lease)
        for row in rows:  # as written, so that the session has nothing left to flush
            for name, value in values.items():
                set_committed_value(row, name, value)
        return rows

    @staticmethod
    def claim_columns(session: Session, model: type[Base], columns: Sequence[Any], *,
                      owner: str, now: datetime, lease: timedelta, limit: int,
                      where: Sequence[Any] = (), order_by: Sequence[Any] = (),
                      also: Mapping[str, Any] | None = None) -> list[Row[Any]]:
        """As claim, but only columns (the first one the id) are read, as plain rows, and the
        columns in also are set with the lease, the same for every row: a worker claims
        thousands of calendars at a time, and objects cost more to make than the SQL does."""
        table = model.__table__
        plain = [table.c[column.key] for column in columns]  # Core rows: no ORM loading
        rows = list(session.execute(_free(select(*plain), model, now, limit, where, order_by)))
        _lease(session, model, [row[0] for row in rows], owner, now, lease, also)
        return rows

    @contextmanager
    def turn(self, name: str, worker: str, now: datetime, lease: timedelta
             ) -> Iterator[JobTurn | None]:
        """This worker's turn at job name, or None while another run of it holds the job.

        The turn's owner is new each time, so two threads of one worker exclude each other
        too; it is given back when the block ends, and lapses after lease if the worker dies.
        """
        owner = f"{worker}/{uuid.uuid4().hex[:12]}"
        if not self.hold_job(name, owner, now, lease):
            yield None
            return
        try:
            yield JobTurn(self, name, owner, lease)
        finally:
            self.release_job(name, owner)

    def hold_job(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """True if owner may run job name now (and holds it until now + lease)."""
        self._ensure_job(name)
        with self.transaction() as session:
            row = session.scalars(select(JobLease).where(JobLease.name == name)
                                  .with_for_update(skip_locked=True)).first()
            if row is None:  # another worker is taking it this very moment
                return False
            if row.owner not in (None, owner) and row.expires and row.expires > now:
                return False
            row.owner, row.expires = owner, now + lease
            return True

    def release_job(self, name: str, owner: str) -> None:
        with self.transaction() as session:
            row = session.get(JobLease, name, with_for_update=True)
            if row is not None and row.owner == owner:
                row.owner, row.expires = None, None

    def _ensure_job(self, name: str) -> None:
        """The job's row exists (made once per store; several workers may make it at once)."""
        if name in self._jobs_made:
            return
        with self.transaction() as session:
            insert_new(session, JobLease, {"name": name}, unique=["name"])
        self._jobs_made.add(name)


@dataclass(frozen=True)
class JobTurn:
    store: Store
    name: str
    owner: str
    lease: timedelta

    def renew(self, now: datetime) -> bool:
        """Extend the turn for a long run; False if it lapsed and another run took the job."""
        return self.store.hold_job(self.name, self.owner, now, self.lease)


class _TakingTurns:
    """A lock handed to its waiters in the order they asked for it: one process's writers to
    a SQLite file, which has a single write lock.

    SQLite's own wait is a poll (the driver's busy handler sleeps and tries again), so a
    thread that commits and begins again at once can keep the lock for as long as it has
    work: during a burst, detection kept the outbox from claiming a single email for ten
    seconds. Python's Lock is no fairer. Other processes on the file still meet SQLite's
    busy timeout. Not re-entrant: a write transaction inside another on the same thread
    would deadlock on SQLite anyway, and here fails at once instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, threading.Lock]] = deque()  # (thread, its wake-up)
        self._holder: int | None = None

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._holder == me:
                raise RuntimeError("a write transaction was begun inside another")
            if self._holder is None:
                self._holder = me
                return
            turn = threading.Lock()
            turn.acquire()
            self._queue.append((me, turn))
        turn.acquire()  # the holder made us the holder, then released this

    def __exit__(self, *_: object) -> None:
        with self._lock:
            if self._queue:
                self._holder, turn = self._queue.popleft()
                turn.release()
            else:
                self._holder = None


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _create_owner_only(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _create_owner_only(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only: it holds sign-in tokens, channel
    secrets and emails with their answer links (SQLite gives its -wal and -shm files the
    same mode). An existing file keeps the mode an admin chose, with a warning if others may
    read it; a folder that is not there is SQLite's to report."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    with suppress(OSError):
        if not create_owner_only(path) and readable_by_others(path):
            log.warning("the database %s may be read by others (mode %o); it holds secrets: "
                        "run `chmod 600 %s`", path, path.stat().st_mode & 0o777, path)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _sqlite_begin_immediate).
    connection.isolation_level = None
    # WAL lets the web endpoints read while a job writes; foreign keys are off by default.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock when a transaction begins, not at its first write.

    SQLite has no SELECT ... FOR UPDATE: a claim reads, then writes, and two processes on one
    file (a worker and a cron `run --once`) could both read a row as free before either
    writes. Beginning IMMEDIATE makes each transaction the only writer from its first read.
    Store.reading's transactions write nothing, so they begin deferred and lock nothing.
    """
    read_only = connection.get_execution_options().get("read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _free(statement: Select[Any], model: type[Any], now: datetime, limit: int,
          where: Sequence[Any], order_by: Sequence[Any]) -> Select[Any]:
    """statement narrowed to the free rows of model matching where, locked as they are read."""
    free = or_(model.lease_expires.is_(None), model.lease_expires < now)
    return (statement.where(free, *where).order_by(*order_by).limit(limit)
            .with_for_update(skip_locked=True, of=model))


def _lease(session: Session, model: type[Any], ids: list[int], owner: str, now: datetime,
           lease: timedelta, also: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Lease the rows ids to owner, in as few UPDATEs as ids_in allows."""
    values = {"lease_owner": owner, "lease_expires": now + lease, **(also or {})}
    table = model.__table__
    for matching in ids_in(session, table.c.id, ids):
        session.execute(update(table).where(matching).values(values))
    return values
