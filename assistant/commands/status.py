"""`assistant status`: each calendar's health, what waits in the outbox, which workers run.

Read from the service's database (upgraded to the current schema first, as every command but
`report` does), so it works from any machine that reaches it, whether or not a worker runs
there; it does not reconcile the config's calendars, which is a worker's job. While a first
full sync is under way (calendars never synced yet), a terminal gets a progress bar until it
is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from assistant.calendar_admin import CalendarHealth, health
from assistant.commands.calendars import open_store
from assistant.commands.common import config_option, json_option, load_config_or_default, print_json
from assistant.commands.tables import calendar_table, console, health_json
from assistant.store import Store
from assistant.store.tables import JobLease, Outbox, WatchedCalendar
from assistant.time_words import span

POLL_SECONDS = 1.0
STALL_MARGIN = 30  # seconds, beyond two sync intervals, before saying no worker seems to run


@dataclass(frozen=True)
class Backlog:
    emails_waiting: int
    writes_waiting: int
    failed: int  # effects given up on (see the audit log for each)
    workers: tuple[str, ...]  # workers holding a lease right now


@click.command()
@config_option
@click.option("--wait/--no-wait", default=None,
              help="Show a progress bar until the first sync is done (default: in a terminal).")
@json_option
def status(config_path: Path | None, wait: bool | None, as_json: bool) -> None:
    """Each calendar's state, last sync, lag, meetings in flight and errors."""
    _, config = load_config_or_default(config_path)
    stalled = ""
    with open_store(config, reconciled=False) as store:
        if wait or (wait is None and not as_json and console().is_terminal):
            # Two sync intervals with no calendar done: nothing is syncing them.
            stall = timedelta(seconds=2 * config.service.sync_interval_seconds + STALL_MARGIN)
            stalled = _follow_first_sync(store, stall)
        now = datetime.now(UTC)
        with store.reading() as session:
            rows, backlog = health(session, now), _backlog(session, now)
    if as_json:
        print_json({"calendars": [health_json(row) for row in rows],
                    "outbox": {"emails_waiting": backlog.emails_waiting,
                               "invite_writes_waiting": backlog.writes_waiting,
                               "failed": backlog.failed},
                    "workers": list(backlog.workers), "dry_run": config.policy.dry_run})
        return
    out = console()
    if not rows:
        out.print("No calendars yet: `assistant calendars add ADDRESS --provider google`, "
                  "or list them in the config.")
    else:
        out.print(calendar_table(rows, now, title="Calendars"))
        first = _first_sync(rows)
        if first:
            out.print(f"First sync under way: {first[0]} of {first[1]} calendars done.")
        if stalled:
            out.print(stalled)
    out.print(_backlog_words(backlog))
    if config.policy.dry_run:
        out.print("Dry run (policy.dry_run): no invite is written and no email is sent.")


def _first_sync(rows: list[CalendarHealth]) -> tuple[int, int] | None:
    """(done, watched) while some watched calendar waits for its first sync; else None.
    A first sync that failed counts as done: its error is in the table, not worth waiting for."""
    watched = [row for row in rows if row.state in ("watching", "first sync", "failing")]
    pending = sum(1 for row in watched if row.state == "first sync")
    return (len(watched) - pending, len(watched)) if pending else None


def _follow_first_sync(store: Store, stall: timedelta) -> str:
    """A progress bar of the calendars synced, until none waits for its first sync, or
    nothing moved for `stall` (no worker running?); then what to say about it, if anything."""
    with store.reading() as session:
        first = _synced_counts(session)
    if first is None:
        return ""
    columns = (TextColumn("first sync"), BarColumn(), MofNCompleteColumn(),
               TextColumn("calendars"), TimeElapsedColumn())
    moved_at = time.monotonic()
    with Progress(*columns, console=console(), transient=True) as progress:
        task = progress.add_task("sync", total=first[1], completed=first[0])
        while first is not None:
            progress.update(task, completed=first[0], total=first[1])
            if time.monotonic() - moved_at > stall.total_seconds():
                return (f"No calendar finished its first sync in the last {span(stall)}: is a "
                        "worker running (`assistant run`)?")
            time.sleep(POLL_SECONDS)
            with store.reading() as session:
                now_at = _synced_counts(session)
            if now_at != first:
                moved_at = time.monotonic()
            first = now_at
    return ""


def _synced_counts(session: Session) -> tuple[int, int] | None:
    """_first_sync, counted by the database rather than row by row (many calendars)."""
    done = or_(WatchedCalendar.last_synced_at.is_not(None), WatchedCalendar.last_error.is_not(None))
    total, finished = session.execute(select(
        func.count(), func.count().filter(done)).where(WatchedCalendar.watched())).one()
    return (finished, total) if finished < total else None


def _backlog(session: Session, now: datetime) -> Backlog:
    waiting = dict(session.execute(select(Outbox.kind, func.count())
                                   .where(Outbox.state == "pending")
                                   .group_by(Outbox.kind)).all())
    failed = session.scalar(select(func.count()).where(Outbox.state == "failed")) or 0
    owners = session.scalars(select(JobLease.owner).where(
        JobLease.owner.is_not(None), JobLease.expires > now)).all()
    owners += session.scalars(select(WatchedCalendar.lease_owner).where(
        WatchedCalendar.lease_owner.is_not(None), WatchedCalendar.lease_expires > now)).all()
    workers = tuple(sorted({owner.partition("/")[0] for owner in owners if owner}))
    return Backlog(waiting.get("email", 0), waiting.get("annotate", 0), failed, workers)


def _backlog_words(backlog: Backlog) -> str:
    words = (f"Outbox: {backlog.emails_waiting} email(s) and {backlog.writes_waiting} invite "
             f"write(s) waiting, {backlog.failed} given up on")
    if backlog.failed:
        words += " (the audit log says why)"
    busy = ", ".join(backlog.workers) if backlog.workers else "none busy right now"
    return f"{words}.\nWorkers: {busy}."
