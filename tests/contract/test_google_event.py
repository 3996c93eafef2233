"""Google Calendar v3 event resources, shaped as the API returns them, read into Meetings."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from assistant.errors import UnreadableEvent
from assistant.models import EventRemoved, Meeting, Provider, Response
from integrations.google_event import read_google_event
from tests.factories import EVENTS

BERLIN = ZoneInfo("Europe/Berlin")


def load(name: str) -> Meeting | EventRemoved:
    return read_google_event(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def test_timed_customer_meeting():
    meeting = load("google-customer-pitch.json")
    assert isinstance(meeting, Meeting)
    assert meeting.provider is Provider.GOOGLE
    assert meeting.title == "Acme pitch"
    assert meeting.organizer.email == "alice@example.com"
    assert isinstance(meeting.start, datetime) and meeting.start.utcoffset() is not None
    assert meeting.end - meeting.start == timedelta(minutes=60)
    assert meeting.start.utcoffset() == BERLIN.utcoffset(meeting.start.replace(tzinfo=None))
    assert meeting.time_zone == "Europe/Berlin"
    assert "Friedrichstraße 43" in meeting.location
    assert not meeting.description_is_html
    assert meeting.video_link == ""
    assert meeting.etag.startswith('"')
    emails = {a.person.email: a for a in meeting.attendees}
    assert emails["carol@acme.com"].response is Response.NEEDS_ACTION
    rooms = [a for a in meeting.attendees if a.is_resource]
    assert len(rooms) == 1 and rooms[0].person.domain == "resource.calendar.google.com"


def test_recurring_instance_with_meet_link_and_html_description():
    meeting = load("google-weekly-sync-meet.json")
    assert isinstance(meeting, Meeting)
    assert meeting.series_id and meeting.series_id != meeting.event_id
    assert meeting.video_link.startswith("https://meet.google.com/")
    assert meeting.description_is_html


def test_series_master_is_its_own_series():
    meeting = load("google-series-master.json")
    assert isinstance(meeting, Meeting)
    assert meeting.series_id == meeting.event_id
    assert meeting.end - meeting.start == timedelta(minutes=90)


def test_all_day_event_has_dates():
    meeting = load("google-all-day.json")
    assert isinstance(meeting, Meeting) and meeting.all_day
    assert isinstance(meeting.start, date) and not isinstance(meeting.start, datetime)


def test_cancelled_entry_of_an_incremental_sync_is_a_removal():
    removed = load("google-cancelled.json")
    assert isinstance(removed, EventRemoved) and removed.provider is Provider.GOOGLE


def test_date_time_without_offset_is_read_in_its_time_zone():
    meeting = read_google_event({
        "id": "x", "start": {"dateTime": "2026-12-03T10:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-12-03T11:00:00", "timeZone": "Europe/Berlin"}})
    assert isinstance(meeting, Meeting)
    assert meeting.start == datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"start": {"date": "2026-12-03"}}, "no 'id'"),
        ({"id": "x", "end": {"date": "2026-12-04"}}, "start has neither 'date' nor 'dateTime'"),
        ({"id": "x", "start": {"dateTime": "2026-12-03T10:00:00"},
          "end": {"dateTime": "2026-12-03T11:00:00"}}, "has no time zone"),
        ({"id": "x", "start": {"date": "2026-12-03"},
          "end": {"dateTime": "2026-12-03T11:00:00Z"}}, "both be dates or both be date-times"),
        ({"id": "x", "start": {"dateTime": "2026-12-03T10:00:00", "timeZone": "Mars/Olympus"},
          "end": {"dateTime": "2026-12-03T11:00:00Z"}}, "unknown time zone 'Mars/Olympus'"),
        ({"id": "x", "start": {"date": "2026-12-03"}, "end": {"date": "2026-12-04"},
          "attendees": "everyone"}, "'attendees' should be a list of objects"),
        ({"id": 7}, "'id' should be a string"),
    ],
)
def test_broken_resources_say_which_field(event, message):
    with pytest.raises(UnreadableEvent, match=message):
        read_google_event(event)
