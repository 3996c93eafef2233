"""Customer-meeting detection: organiser inside, a non-resource attendee outside, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from assistant.config import Detection as Rules
from assistant.detect import CustomerMeetingDetector, contains_words
from assistant.models import Attendee, Person
from tests.factories import make_meeting


def detector(**rules) -> CustomerMeetingDetector:
    return CustomerMeetingDetector(["example.com", "example.co.uk"], Rules(**rules))


def test_customer_meeting_names_the_customer_domains():
    meeting = make_meeting(attendees=("alice@example.com", "carol@ACME.com", "erin@globex.com"))
    result = detector().detect(meeting)
    assert result.is_customer_meeting
    assert result.customer_domains == ("acme.com", "globex.com")
    assert result.why == "organised from example.com, with attendees from acme.com, globex.com"


def test_several_organisation_domains_and_subdomains_are_inside():
    meeting = make_meeting(
        organizer="alice@sales.example.com",
        attendees=("bob@example.co.uk", "dave@uk.example.com"),
    )
    result = detector().detect(meeting)
    assert not result.is_customer_meeting
    assert result.why == "every attendee is inside the organisation"


def test_external_organiser_is_not_ours():
    result = detector().detect(make_meeting(organizer="carol@acme.com"))
    assert not result.is_customer_meeting
    assert "acme.com is outside the organisation (example.com, example.co.uk)" in result.why


def test_lookalike_domain_is_not_inside():
    # notexample.com ends with "example.com" but is somebody else.
    meeting = make_meeting(attendees=("alice@example.com", "mallory@notexample.com"))
    assert detector().detect(meeting).customer_domains == ("notexample.com",)


def test_rooms_and_ignored_domains_are_not_customers():
    meeting = make_meeting(attendees=("alice@example.com",))
    room = Attendee(Person("room-1@rooms.example.net"), is_resource=True)
    group = Attendee(Person("team@group.calendar.google.com"))
    result = detector().detect(replace(meeting, attendees=(*meeting.attendees, room, group)))
    assert not result.is_customer_meeting
    assert "group.calendar.google.com, rooms.example.net" in result.why


def test_customer_allow_list_limits_who_counts():
    meeting = make_meeting(attendees=("alice@example.com", "x@partner.org", "carol@acme.com"))
    result = detector(customer_domains=["acme.com"]).detect(meeting)
    assert result.customer_domains == ("acme.com",)
    only_partner = make_meeting(attendees=("alice@example.com", "x@partner.org"))
    assert not detector(customer_domains=["acme.com"]).detect(only_partner).is_customer_meeting


def test_ignore_domains_from_config():
    meeting = make_meeting(attendees=("alice@example.com", "bot@notes.ai"))
    assert not detector(ignore_domains=["notes.ai"]).detect(meeting).is_customer_meeting


def test_cancelled_and_all_day_events_are_never_customer_meetings():
    cancelled = replace(make_meeting(), cancelled=True)
    all_day = replace(make_meeting(), start=date(2026, 12, 3), end=date(2026, 12, 4))
    assert detector().detect(cancelled).why == "the meeting is cancelled"
    assert detector().detect(all_day).why == "all-day events are not meetings"


def test_title_keywords_exclude_and_include():
    interview = make_meeting("Interview: senior engineer")
    assert "excluded keyword 'interview'" in detector(
        exclude_title_keywords=["interview"]).detect(interview).why
    rules = detector(include_title_keywords=["customer", "sales call"])
    assert not rules.detect(make_meeting("Acme lunch")).is_customer_meeting
    assert rules.detect(make_meeting("Acme Sales-Call")).is_customer_meeting


@pytest.mark.parametrize(
    ("text", "phrase", "found"),
    [
        ("Acme kick off", "kick-off", True),
        ("Acme kickoff", "kick-off", True),
        ("Weekly check-in", "check-in", True),
        ("Pitching session", "pitch", False),
        ("Acme QBR", "qbr", True),
        ("Q&A with Acme", "q&a", True),
        ("Status", "  ", False),
    ],
)
def test_title_words_match_whole_words(text, phrase, found):
    assert contains_words(text, phrase) is found


def test_an_address_listed_twice_counts_once():
    meeting = make_meeting(attendees=("alice@example.com", "carol@acme.com", "Carol@ACME.com"))
    assert len(detector().detect(meeting).customers) == 1
