"""policy.dry_run: the whole flow, except that no invite is written and no email is sent.

The service runs as usual (meetings detected, questions composed, decisions made, each in the
audit log), but its effects go through these stand-ins: a calendar that reads the event and
plans the change without writing it, a mailer that only logs, and an inbox whose replies are
read but not moved. So an admin can
point the assistant at real calendars and read what it would have done before letting it.
Effects a dry run "delivered" stay delivered: turning dry_run off later does not send them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from assistant.annotate import AnnotationPlan
from assistant.calendar_sync import BatchedCalendar, write_guarded
from assistant.conversation import changes_made
from assistant.models import EventRemoved, Meeting
from assistant.ports import (
    CalendarChanges,
    Channel,
    InboundMail,
    MailIn,
    MessageToSend,
    Planner,
    SyncFailed,
    WriteOutcome,
)
from assistant.redaction import redacted

log = logging.getLogger(__name__)


class DryRunMail:
    """A mailer that logs what it would send."""

    def send(self, message: MessageToSend) -> None:
        headers = message.headers()
        log.info("dry run: would send %r to %s", str(headers["Subject"]).strip(),
                 redacted(str(headers["To"])))


class DryRunCalendar:
    """Reads (sync, read, push channels) go to the real calendar; writes only go as far as
    the provider's patch body, through the same guarded loop a real write takes, so the
    outcome (not the organiser's event, unchanged, gone) is the one a real run would have."""

    def __init__(self, port: BatchedCalendar) -> None:
        self._port = port
        self.provider = port.provider

    def sync(self, cursors: Mapping[str, str | None]) -> Iterator[CalendarChanges | SyncFailed]:
        return self._port.sync(cursors)

    def read(self, calendar: str, event_id: str) -> Meeting | EventRemoved:
        return self._port.read(calendar, event_id)

    def update(self, calendar: str, event_id: str, planner: Planner) -> WriteOutcome:
        planned: list[tuple[Meeting, AnnotationPlan]] = []

        def noting(current: Meeting) -> AnnotationPlan | None:
            plan = planner(current)
            if plan is not None:
                planned.append((current, plan))
            return plan

        def pretend(resource: Any, body: dict[str, Any]) -> None:
            current, plan = planned[-1]
            log.info("dry run: would write to %r in %s: %s; %s", current.title,
                     redacted(calendar), plan.mark.format.words,
                     "; ".join(changes_made(current, plan)))
            return None  # the stored event stays as read: nothing was written

        return write_guarded(calendar, event_id, noting,
                             read=lambda: self._port.snapshot(calendar, event_id),
                             patch_body=self._port.patch_body, send=pretend, attempts=1)

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> Channel:
        return self._port.watch(calendar, address, token, ttl)

    def renew(self, channel: Channel, ttl: timedelta) -> Channel:
        return self._port.renew(channel, ttl)

    def unwatch(self, channel: Channel) -> None:
        self._port.unwatch(channel)

    def language(self, calendar: str) -> str | None:
        return self._port.language(calendar)  # a read: as in a real run


class DryRunInbox:
    """The real inbox, read but left as it is: replies are not moved to the processed folder
    (each is still handled once, by its Message-ID)."""

    def __init__(self, inbox: MailIn) -> None:
        self._inbox = inbox

    def messages(self) -> Iterator[InboundMail]:
        return self._inbox.messages()

    def mark_processed(self, uid: int) -> None:
        log.info("dry run: reply %d left in the inbox", uid)

    def mark_failed(self, uid: int) -> None:
        log.info("dry run: unhandled message %d left in the inbox", uid)

    def close(self) -> None:
        self._inbox.close()
