"""Push: a Google channel or Graph subscription per watched calendar, kept open and renewed.

A notification only ever makes its calendar due for a sync (the webhooks are in
assistant.web); polling stays the safety net, so a channel that could not be opened costs
latency, never a meeting. Channels need `service.public_url`, the https address at which
Google and Microsoft reach the web app.

Each channel is one HTTP request (events.watch, POST /subscriptions, which Graph validates
against the web app before it answers), so the requests run concurrently, a few per provider:
ten thousand calendars one after the other would keep push waiting for a quarter of an hour.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.orm import contains_eager

from assistant.errors import ProviderError
from assistant.models import Provider
from assistant.ports import CalendarPort, Channel, ChannelLookup
from assistant.redaction import redacted
from assistant.store import Store
from assistant.store.tables import PushChannel, WatchedCalendar

if TYPE_CHECKING:
    from assistant.service import Service
    from assistant.store.database import JobTurn

log = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)  # Google's default, and inside Outlook's 10,080 minutes
RENEW_BEFORE = timedelta(days=1)
# Requests under way at once, per provider. Every one is for a different calendar, so none
# comes near a per-calendar limit: Graph allows 4 concurrent requests per mailbox, Google counts
# queries per user; 16 keeps a worker's start well inside the per-app limits as well. A provider
# whose adapter keeps fewer connections (its `max_connections`, which also sizes the Graph
# adapter's connection pool) gets that many: more requests than pooled connections would open
# and throw away a connection per request.
CALLS_AT_ONCE = 16


@dataclass(frozen=True)
class _Due:
    """A calendar whose channel is to be opened (existing None) or renewed."""

    calendar_id: int
    calendar: str
    provider: Provider
    existing: tuple[int, Channel] | None  # the channel's row id, and the channel


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
            due = self._due()
            if due:
                self._open(due, public_url.rstrip("/"), turn)

    def _due(self) -> list[_Due]:
        """The watched calendars with no channel, or one about to expire (and a port)."""
        ports = self.service.outside.calendars
        with self.store.transaction() as session:
            calendars = session.scalars(select(WatchedCalendar).where(
                WatchedCalendar.watched())).all()
            # As Channels, read while the session is open (a row's calendar loads lazily).
            existing = {row.calendar_id: (row.id, channel_of(row, Provider(
                row.calendar.provider))) for row in session.scalars(select(PushChannel))}
        now = self.service.clock()
        due = []
        for calendar in calendars:
            provider, known = Provider(calendar.provider), existing.get(calendar.id)
            if provider in ports and (known is None or known[1].expires - now <= RENEW_BEFORE):
                due.append(_Due(calendar.id, calendar.address, provider, known))
        return due

    def _open(self, due: list[_Due], public_url: str, turn: JobTurn) -> None:
        """Open or renew the channels, CALLS_AT_ONCE per provider, storing them as they come.

        Each time a request finishes, everything finished by then is written in one
        transaction (while the database writes, the next answers come in, so the batches grow
        when writing is what is slow). A channel open at the provider but not yet written is
        what a crash loses: at most the requests under way and one batch. Such a channel is
        harmless: its notifications name a channel we do not know and are refused, it lapses by
        itself within CHANNEL_TTL, and the calendar, still without a row (or with its old one),
        gets a new channel (or its renewal again) at the next keep_open; polling covers the
        meantime. For the same reason a failure here stops new requests but still writes the
        answers of those under way before it is raised.
        """
        ports, config = self.service.outside.calendars, self.service.config
        queues: dict[Provider, deque[_Due]] = {}
        for job in due:
            queues.setdefault(job.provider, deque()).append(job)
        limits = {provider: min(CALLS_AT_ONCE, getattr(config, provider.value).max_connections)
                  for provider in queues}
        pools = {provider: ThreadPoolExecutor(limit, thread_name_prefix=f"push-{provider.value}")
                 for provider, limit in limits.items()}
        under_way: dict[Future[Channel | ProviderError], _Due] = {}
        submitted: Counter[Provider] = Counter()  # and not yet answered
        failure: Exception | None = None
        renewed = self.service.clock()
        try:
            while True:
                if failure is not None or self.service.stopping:
                    queues.clear()  # start nothing new; what runs is answered and kept
                    for future in under_way:
                        future.cancel()  # only those still waiting for a thread
                for provider, queue in queues.items():
                    # Twice what runs, so that the calls go on while this thread writes.
                    while queue and submitted[provider] < 2 * limits[provider]:
                        job = queue.popleft()
                        url = f"{public_url}/push/{provider.value}"
                        under_way[pools[provider].submit(_call, ports[provider], job, url)] = job
                        submitted[provider] += 1
                if not under_way:
                    break
                finished, _ = wait(under_way, return_when=FIRST_COMPLETED)
                made: list[tuple[_Due, Channel]] = []
                for future in finished:
                    job = under_way.pop(future)
                    submitted[job.provider] -= 1
                    if future.cancelled():
                        continue
                    try:
                        answer = future.result()
                    except Exception as err:  # a bug, not the provider: raised at the end
                        failure = failure or err
                        continue
                    if isinstance(answer, ProviderError):
                        log.warning("push for %s could not be set up: %s",
                                    redacted(job.calendar), answer)
                        self.service.metrics.error("push")
                    else:
                        made.append((job, answer))
                self._store(made)
                now = self.service.clock()
                if queues and now - renewed >= self.service.lease / 3:  # a long run
                    renewed = now
                    if not turn.renew(now):  # lapsed, and another run took the job
                        log.warning("the channels job was taken over; it opens the rest")
                        queues.clear()
        finally:
            for pool in pools.values():
                pool.shutdown(cancel_futures=True)
        if failure is not None:
            raise failure

    def _store(self, made: list[tuple[_Due, Channel]]) -> None:
        """Keep the channels made, in place of those they renew, in one transaction."""
        if not made:
            return
        with self.store.transaction() as session:
            for job, _ in made:
                if job.existing is not None and (
                        old := session.get(PushChannel, job.existing[0])) is not None:
                    session.delete(old)
            session.flush()  # a renewed Graph subscription keeps its id, which is unique
            session.add_all(PushChannel(calendar_id=job.calendar_id, channel_id=c.channel_id,
                                        resource_id=c.resource_id, token=c.token,
                                        address=c.address, expires=c.expires)
                            for job, c in made)

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

    def live(self, provider: Provider) -> Mapping[str, Channel]:
        """The channels of a provider, by channel id (read from the store as they are used)."""
        return _StoredChannels(self.store, provider)

    def lookup(self, provider: Provider) -> ChannelLookup:
        """How a webhook finds the channels a notification names: one query for them all,
        whatever the number of items (an unauthenticated caller chooses it)."""
        def channels(ids: Collection[str]) -> Mapping[str, Channel]:
            if not ids:
                return {}
            with self.store.reading() as session:
                rows = session.scalars(
                    _channels_of(provider).where(PushChannel.channel_id.in_(list(ids)))
                    .options(contains_eager(PushChannel.calendar)))
                return {row.channel_id: channel_of(row, provider) for row in rows}
        return channels


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


class _StoredChannels(Mapping[str, Channel]):
    """A provider's channels, read one id at a time, without taking the write lock.

    A notification names one channel: reading all ten thousand for each of them (Google
    greets every new channel with one) would make push slower the more calendars there are.
    """

    def __init__(self, store: Store, provider: Provider) -> None:
        self.store, self.provider = store, provider

    def __getitem__(self, channel_id: str) -> Channel:
        with self.store.reading() as session:
            row = session.scalars(self._select().where(
                PushChannel.channel_id == channel_id)).first()
            if row is None:
                raise KeyError(channel_id)
            return channel_of(row, self.provider)

    def __iter__(self) -> Iterator[str]:
        with self.store.reading() as session:
            return iter(list(session.scalars(self._select().with_only_columns(
                PushChannel.channel_id))))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _select(self) -> Select[tuple[PushChannel]]:
        return _channels_of(self.provider)


def _channels_of(provider: Provider) -> Select[tuple[PushChannel]]:
    return select(PushChannel).join(WatchedCalendar).where(
        WatchedCalendar.provider == provider.value)


def channel_of(row: PushChannel, provider: Provider) -> Channel:
    return Channel(provider, row.calendar.address, row.channel_id, row.resource_id, row.token,
                   row.expires, row.address)


def _call(port: CalendarPort, job: _Due, address: str) -> Channel | ProviderError:
    """Open or renew one channel (on a pool thread); the provider's refusal is returned."""
    try:
        if job.existing is None:
            return port.watch(job.calendar, address, uuid.uuid4().hex, CHANNEL_TTL)
        return port.renew(job.existing[1], CHANNEL_TTL)
    except ProviderError as err:
        return err
