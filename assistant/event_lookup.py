"""One real event of a watched calendar, read now, with its organiser's meetings as stored.

For `assistant preview --calendar ADDRESS --event ID`: the same reading and history the service
would use, so the preview shows exactly what it would ask and write, without doing either.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from assistant.config import Config
from assistant.errors import InputError, NotFound
from assistant.models import EventRemoved, Meeting, Provider
from assistant.service import History
from assistant.store import Store
from assistant.store.tables import SeenMeeting, WatchedCalendar


def read_watched_event(config: Config, store: Store, address: str, event_id: str,
                       now: datetime) -> tuple[Meeting, list[Meeting]]:
    """The event as its provider has it now, and the organiser's other stored meetings."""
    provider = _provider_of(store, config, address)
    from assistant.wiring import opened_calendar_ports  # the composition root: integrations

    with opened_calendar_ports(config) as ports:
        port = ports.get(provider)
        if port is None:
            raise InputError(f"the config has no {provider.value} sign-in to read {address} with")
        try:
            event = port.read(address, event_id)
        except NotFound:
            raise InputError(f"{address} has no event {event_id!r}") from None
    if isinstance(event, EventRemoved) or event.cancelled:
        raise InputError(f"event {event_id!r} of {address} is deleted or cancelled: nothing to do")
    return event, _history(store, address, event, now)


def _provider_of(store: Store, config: Config, address: str) -> Provider:
    """Whose calendar address is: the store's word, else the config's (not yet synced)."""
    with store.reading() as session:
        providers = [Provider(name) for name in session.scalars(
            select(WatchedCalendar.provider).where(
                func.lower(WatchedCalendar.address) == address.lower()))]
    listed = {Provider.GOOGLE: config.google.calendars,
              Provider.MICROSOFT: config.microsoft.calendars}
    providers += [provider for provider, addresses in listed.items()
                  if address.lower() in {a.lower() for a in addresses}]
    if not providers:
        raise InputError(f"{address} is not a watched calendar (`assistant calendars list` "
                         "shows them; `assistant calendars add` adds one)")
    return providers[0]


def _history(store: Store, address: str, meeting: Meeting, now: datetime) -> list[Meeting]:
    """The service's own history of the organiser, without this event's stored copy."""
    with store.reading() as session:
        seen_id = session.scalar(select(SeenMeeting.id).join(WatchedCalendar).where(
            func.lower(WatchedCalendar.address) == address.lower(),
            SeenMeeting.event_id == meeting.event_id))
        return History.of_session(session, now).of(meeting, seen_id or -1)
