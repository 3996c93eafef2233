"""The demo's meetings in the sandbox calendars: booking, cancelling and reading them back.

What the demo shows of an invite is read from the emulators (the event as Google or Graph
returns it), never from the service's own idea of what it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bs4 import BeautifulSoup

from assistant import block
from assistant.models import Provider
from integrations.sandbox.environment import SandboxEnvironment

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Booking:
    """One meeting of the demo week, and what the demo does with it."""

    key: str
    provider: Provider
    organiser: str
    title: str
    day: int  # working days from today
    hour: int
    minutes: int
    guests: tuple[str, ...]
    reply: str = ""  # what the organiser answers, if asked
    cancel: bool = False  # the organiser cancels it after the first sync
    fields: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""
    before: dict[str, Any] = field(default_factory=dict)


def when_on(workday: int, hour: int) -> datetime:
    """hour o'clock in Berlin on the workday-th working day from today (1: the next one)."""
    date = datetime.now(UTC).astimezone(BERLIN)
    while workday > 0:
        date += timedelta(days=1)
        workday -= date.weekday() < 5
    return date.replace(hour=hour, minute=0, second=0, microsecond=0)


def book(sandbox: SandboxEnvironment, booking: Booking, start: datetime | None = None) -> None:
    start = start or when_on(booking.day, booking.hour)
    end = start + timedelta(minutes=booking.minutes)
    if booking.provider is Provider.GOOGLE:
        event = sandbox.google.create_event(
            booking.organiser, summary=booking.title, description="Agenda to follow.",
            start={"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
            end={"dateTime": end.isoformat(), "timeZone": "Europe/Berlin"},
            attendees=[{"email": booking.organiser},
                       *({"email": guest} for guest in booking.guests)], **booking.fields)
    else:
        event = sandbox.graph.create_event(
            booking.organiser, subject=booking.title,
            body={"contentType": "html", "content": "<p>Agenda to follow.</p>"},
            start={"dateTime": _utc(start), "timeZone": "UTC"},
            end={"dateTime": _utc(end), "timeZone": "UTC"},
            attendees=[{"emailAddress": {"address": guest}, "type": "required"}
                       for guest in booking.guests], **booking.fields)
    booking.event_id = event["id"]
    booking.before = event_of(sandbox, booking)


def cancel(sandbox: SandboxEnvironment, booking: Booking) -> None:
    if booking.provider is Provider.GOOGLE:
        sandbox.google.cancel_event(booking.organiser, booking.event_id)
    else:
        sandbox.graph.cancel_event(booking.organiser, booking.event_id)


def event_of(sandbox: SandboxEnvironment, booking: Booking) -> dict[str, Any]:
    if booking.provider is Provider.GOOGLE:
        return sandbox.google.event(booking.organiser, booking.event_id)
    return sandbox.graph.event(booking.organiser, booking.event_id)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def minutes_of(event: dict[str, Any]) -> int:
    start, end = (datetime.fromisoformat(event[k]["dateTime"][:19]) for k in ("start", "end"))
    return int((end - start).total_seconds() // 60)


def video_link_of(provider: Provider, event: dict[str, Any]) -> str:
    if provider is Provider.GOOGLE:
        return str(event.get("hangoutLink") or "")
    return str((event.get("onlineMeeting") or {}).get("joinUrl") or "")


def _description(provider: Provider, event: dict[str, Any]) -> tuple[str, bool]:
    if provider is Provider.GOOGLE:
        return str(event.get("description") or ""), False
    return str(event["body"]["content"]), event["body"].get("contentType") == "html"


def own_text(provider: Provider, event: dict[str, Any]) -> str:
    """The organiser's own words in the description, around the assistant's note."""
    description, is_html = _description(provider, event)
    rest = block.remove_block(description, is_html)
    return BeautifulSoup(rest, "html.parser").get_text(" ", strip=True) if is_html else rest.strip()


def note_of(provider: Provider, event: dict[str, Any]) -> str:
    description, is_html = _description(provider, event)
    span = block.find_block(description, is_html)
    if span is None:
        return "(no note)"
    note = description[span[0] : span[1]]
    return BeautifulSoup(note, "html.parser").get_text("\n", strip=True) if is_html else note
