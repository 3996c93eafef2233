"""Push: a Google channel or Graph subscription per watched calendar, kept open and renewed.

A notification only ever makes its calendar due for a sync (the webhooks are in
assistant.web); polling stays the safety net, so a channel that could not be opened costs
latency, never a meeting. Channels need `service.public_url`, the https address at which
Google and Microsoft reach the web app.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from assistant.errors import ProviderError
from assistant.models import Provider
from assistant.ports import CalendarPort, Channel
from assistant.redaction import redacted
from assistant.store import Store
from assistant.store.tables import PushChannel, WatchedCalendar

if TYPE_CHECKING:
    from assistant.service import Service

log = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)  # Google's default, and inside Outlook's 10,080 minutes
RENEW_BEFORE = timedelta(days=1)


class PushChannels:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store

    def keep_open(self) -> None:
        """Open a channel for each watched calendar, and renew those about to expire."""
        service = self.service
        public_url = service.config.service.public_url
        if public_url is None:
            return
        with self.store.turn("channels", service.worker, service.clock(),
                             service.lease) as turn:
            if turn is None:
                return
            stop_unwatched(self.store, lambda: service.outside.calendars)
            with self.store.transaction() as session:
                calendars = session.scalars(select(WatchedCalendar).where(
                    WatchedCalendar.watched())).all()
                # As Channels, read while the session is open (a row's calendar loads lazily).
                existing = {row.calendar_id: (row.id, channel_of(row, Provider(
                    row.calendar.provider))) for row in session.scalars(select(PushChannel))}
            for calendar in calendars:
                self._keep(calendar, existing.get(calendar.id), public_url)

    def _keep(self, calendar: WatchedCalendar, existing: tuple[int, Channel] | None,
              public_url: str) -> None:
        provider = Provider(calendar.provider)
        port = self.service.outside.calendars.get(provider)
        channel = existing[1] if existing else None
        if port is None or (channel and channel.expires - self.service.clock() > RENEW_BEFORE):
            return
        address = f"{public_url.rstrip('/')}/push/{provider.value}"
        try:
            if channel is None:
                made = port.watch(calendar.address, address, uuid.uuid4().hex, CHANNEL_TTL)
            else:
                made = port.renew(channel, CHANNEL_TTL)
        except ProviderError as err:
            log.warning("push for %s could not be set up: %s", redacted(calendar.address), err)
            self.service.metrics.error("push")
            return
        with self.store.transaction() as session:
            if existing is not None:
                old = session.get(PushChannel, existing[0])
                if old is not None:
                    session.delete(old)
                    session.flush()
            session.add(PushChannel(calendar_id=calendar.id, channel_id=made.channel_id,
                                    resource_id=made.resource_id, token=made.token,
                                    address=made.address, expires=made.expires))

    def lost(self, channel: Channel, *, renew: bool) -> None:
        """The provider asked for a renewal, or dropped the channel: the next keep_open
        renews or reopens it."""
        with self.store.transaction() as session:
            row = session.scalars(select(PushChannel).where(
                PushChannel.channel_id == channel.channel_id)).first()
            if row is None:
                return
            if renew:
                row.expires = self.service.clock()  # due for renewal
            else:
                session.delete(row)  # gone at the provider: opened anew

    def live(self, provider: Provider) -> dict[str, Channel]:
        """The channels of a provider, by channel id, to check notifications against."""
        with self.store.transaction() as session:
            rows = session.scalars(select(PushChannel).join(WatchedCalendar).where(
                WatchedCalendar.provider == provider.value)).all()
            return {row.channel_id: channel_of(row, provider) for row in rows}


def stop_unwatched(store: Store,
                   ports: Callable[[], Mapping[Provider, CalendarPort]]) -> int:
    """Stop the channels of calendars paused or removed; how many were stopped.

    ports is called only when there is a channel to stop (making adapters signs in).
    """
    with store.transaction() as session:
        rows = session.execute(select(PushChannel, WatchedCalendar.provider)
                               .join(WatchedCalendar).where(~WatchedCalendar.watched())).all()
        stale = [(row.id, channel_of(row, Provider(provider))) for row, provider in rows]
    stopped = 0
    for row_id, channel in stale:
        port = ports().get(channel.provider)
        if port is None:
            continue
        try:
            port.unwatch(channel)
        except ProviderError as err:
            # It expires by itself; meanwhile its notifications only make a paused calendar
            # due, which syncs nothing.
            log.warning("the push channel of %s could not be stopped now: %s",
                        redacted(channel.calendar), err)
            continue
        with store.transaction() as session:
            if (gone := session.get(PushChannel, row_id)) is not None:
                session.delete(gone)
        stopped += 1
    return stopped


def channel_of(row: PushChannel, provider: Provider) -> Channel:
    return Channel(provider, row.calendar.address, row.channel_id, row.resource_id, row.token,
                   row.expires, row.address)
