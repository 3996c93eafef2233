"""Microsoft Graph v1.0 event resources, shaped as the API returns them, read into Meetings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from assistant.errors import UnreadableEvent
from assistant.models import EventRemoved, Meeting, Provider, Response
from integrations.graph_event import read_graph_event
from tests.factories import EVENTS


def load(name: str) -> Meeting | EventRemoved:
    return read_graph_event(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def test_teams_meeting_with_html_body():
    meeting = load("graph-customer-teams.json")
    assert isinstance(meeting, Meeting)
    assert meeting.provider is Provider.MICROSOFT
    assert meeting.title == "Globex QBR"
    assert meeting.organizer.email == "alice@example.com"
    assert meeting.description_is_html and "<body" in meeting.description
    assert meeting.video_link.startswith("https://teams.microsoft.com/")
    assert meeting.etag.startswith('W/"')
    assert meeting.start.tzinfo is not None and meeting.end - meeting.start == timedelta(hours=1)
    by_email = {a.person.email: a for a in meeting.attendees}
    assert by_email["erin@globex.com"].response is Response.NEEDS_ACTION
    assert by_email["bob@example.com"].optional
    assert any(a.is_resource for a in meeting.attendees)
    assert not meeting.has_physical_address


def test_windows_time_zone_and_street_address():
    meeting = load("graph-in-person-address.json")
    assert isinstance(meeting, Meeting)
    assert meeting.time_zone == "W. Europe Standard Time"
    assert meeting.start.utcoffset() == timedelta(hours=1)  # Berlin in December
    assert meeting.end - meeting.start == timedelta(minutes=90)
    assert meeting.has_physical_address and meeting.location
    assert not meeting.description_is_html


def test_seven_fractional_digits_in_utc():
    meeting = read_graph_event({
        "id": "x", "start": {"dateTime": "2026-12-03T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-03T10:30:00.0000000", "timeZone": "UTC"}})
    assert isinstance(meeting, Meeting)
    assert meeting.start == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_iana_zone_names_are_accepted_too():
    meeting = read_graph_event({
        "id": "x", "start": {"dateTime": "2026-07-03T10:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-07-03T11:00:00", "timeZone": "America/New_York"}})
    assert isinstance(meeting, Meeting)
    assert meeting.start.utcoffset() == timedelta(hours=-4)
    assert meeting.start.tzinfo == ZoneInfo("America/New_York")


def test_cancelled_meeting_is_read_as_cancelled():
    meeting = load("graph-cancelled.json")
    assert isinstance(meeting, Meeting) and meeting.cancelled


def test_removed_entry_of_a_delta_is_a_removal():
    removed = load("graph-removed.json")
    assert isinstance(removed, EventRemoved) and removed.provider is Provider.MICROSOFT


def test_occurrence_belongs_to_its_series():
    meeting = load("graph-occurrence.json")
    assert isinstance(meeting, Meeting)
    assert meeting.series_id and meeting.series_id != meeting.event_id
    assert meeting.end - meeting.start == timedelta(minutes=30)


def test_all_day_event_has_dates():
    meeting = load("graph-all-day.json")
    assert isinstance(meeting, Meeting) and meeting.all_day
    assert meeting.start == date(2026, 12, 10)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"subject": "x"}, "no 'id'"),
        ({"id": "x", "start": {"timeZone": "UTC"}}, "start has no 'dateTime'"),
        ({"id": "x", "start": {"dateTime": "2026-12-03T10:00:00", "timeZone": "Nowhere Time"},
          "end": {"dateTime": "2026-12-03T11:00:00", "timeZone": "UTC"}},
         "unknown time zone 'Nowhere Time'"),
        ({"id": "x", "isAllDay": "yes"}, "'isAllDay' should be true or false"),
        ({"id": "x", "start": {"dateTime": "2026-12-03T10:00:00", "timeZone": "UTC"},
          "end": {"dateTime": "2026-12-03T11:00:00", "timeZone": "UTC"}, "body": ["html"]},
         "'body' should be an object"),
    ],
)
def test_broken_resources_say_which_field(event, message):
    with pytest.raises(UnreadableEvent, match=message):
        read_graph_event(event)


def test_times_in_utc_keep_the_organisers_own_zone_for_people_to_read():
    meeting = load("graph-customer-teams.json")
    assert meeting.time_zone == "W. Europe Standard Time"
    assert meeting.start.utcoffset() == timedelta(0)  # the times themselves stay as sent
