"""policy.dry_run: the whole flow, except that no invite is written and no email is sent.

The service runs as usual (meetings detected, questions composed, decisions made, each in the
audit log), but its two kinds of effect go through these stand-ins: a calendar that reads the
event and plans the change without writing it, and a mailer that only logs. So an admin can
point the assistant at real calendars and read what it would have done before letting it.
Effects a dry run "delivered" stay delivered: turning dry_run off later does not send them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import timedelta
from email.message import EmailMessage

from assistant.conversation import changes_made
from assistant.models import EventRemoved, Meeting
from assistant.ports import (
    CalendarChanges,
    CalendarPort,
    Channel,
    Planner,
    SyncFailed,
    WriteOutcome,
    WriteResult,
)
from assistant.redaction import redacted

log = logging.getLogger(__name__)


class DryRunMail:
    """A mailer that logs what it would send."""

    def send(self, message: EmailMessage) -> None:
        log.info("dry run: would send %r to %s", str(message["Subject"]),
                 redacted(str(message["To"])))


class DryRunCalendar:
    """Reads (sync, read, push channels) go to the real calendar; writes are only planned."""

    def __init__(self, port: CalendarPort) -> None:
        self._port = port
        self.provider = port.provider

    def sync(self, cursors: Mapping[str, str | None]) -> Iterator[CalendarChanges | SyncFailed]:
        return self._port.sync(cursors)

    def read(self, calendar: str, event_id: str) -> Meeting | EventRemoved:
        return self._port.read(calendar, event_id)

    def update(self, calendar: str, event_id: str, planner: Planner) -> WriteOutcome:
        current = self._port.read(calendar, event_id)
        if isinstance(current, EventRemoved) or current.cancelled:
            return WriteOutcome(WriteResult.GONE, None)
        plan = planner(current)
        if plan is None:
            return WriteOutcome(WriteResult.LEFT_ALONE, current)
        log.info("dry run: would write to %r in %s: %s", current.title, redacted(calendar),
                 "; ".join(changes_made(current, plan)))
        # The stored event stays as read: nothing was written, so it is not ours yet.
        return WriteOutcome(WriteResult.WRITTEN, None)

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> Channel:
        return self._port.watch(calendar, address, token, ttl)

    def renew(self, channel: Channel, ttl: timedelta) -> Channel:
        return self._port.renew(channel, ttl)

    def unwatch(self, channel: Channel) -> None:
        self._port.unwatch(channel)
