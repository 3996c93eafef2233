"""Builders for test meetings, so each test states only what it is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.assess import Assessor
from assistant.errors import UnreadableEvent
from assistant.event_files import read_event
from assistant.models import Attendee, Meeting, Person, Provider, Response
from integrations.google_event import read_google_event
from integrations.graph_event import read_graph_event

EVENTS = Path(__file__).parent / "data" / "events"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def person(email: str, *, resource: bool = False, response=Response.NEEDS_ACTION) -> Attendee:
    return Attendee(Person(email), response=response, is_resource=resource)


def make_meeting(
    title: str = "Acme meeting",
    *,
    attendees: tuple[str, ...] = ("alice@example.com", "carol@acme.com"),
    organizer: str = "alice@example.com",
    start: datetime = datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
    minutes: int = 60,
    **fields,
) -> Meeting:
    meeting = Meeting(
        provider=Provider.GOOGLE,
        event_id=fields.pop("event_id", f"ev-{title}-{start:%Y%m%d%H%M}"),
        title=title,
        organizer=Person(organizer),
        attendees=tuple(person(address) for address in attendees),
        start=start,
        end=start + timedelta(minutes=minutes),
    )
    return replace(meeting, **fields)


def read_and_assess(event: Any, assessor: Assessor, now: datetime) -> None:
    """JSON through every event reader, and each meeting read through the whole assessment:
    what the fuzz targets run. UnreadableEvent is the one failure a reader may report."""
    for reader in (read_event, read_google_event, read_graph_event):
        try:
            meeting = reader(event)
        except UnreadableEvent:
            continue
        if isinstance(meeting, Meeting):
            assessor.assess(meeting, now=now, history=[meeting])
