"""The rules of a conversation: when to ask, when to decide at once, when to write again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from assistant.annotate import applied
from assistant.assess import Assessor
from assistant.config import Policy
from assistant.conversation import Opening, changes_made, rewrite_needed, start
from assistant.models import Format, HardFacts
from assistant.store.codec import meeting_from_json, meeting_to_json
from tests.factories import NOW, make_meeting

SOON = NOW + timedelta(days=3)


@pytest.fixture()
def assessor(config, checklist, renderer):
    return Assessor(config, checklist, renderer)


def begin(assessor, meeting, now=NOW, **facts):
    assessment = assessor.assess(meeting, now=now, organiser_facts=HardFacts(**facts))
    return start(assessment, now, Policy()), assessment


def test_a_customer_meeting_ahead_is_asked_with_a_deadline_a_day_before(assessor):
    opening, _ = begin(assessor, make_meeting(start=SOON, organizer_is_owner=True))
    assert opening.opening is Opening.ASK
    assert opening.deadline == SOON - timedelta(hours=24)


@pytest.mark.parametrize(("meeting", "why"), [
    (make_meeting(attendees=("alice@example.com", "bob@example.com"), start=SOON,
                  organizer_is_owner=True), "inside the organisation"),
    (make_meeting(start=SOON), "someone else organises"),
    (make_meeting(start=NOW - timedelta(days=7), organizer_is_owner=True), "in the past"),
    (make_meeting(start=NOW - timedelta(minutes=10), organizer_is_owner=True), "already started"),
    (make_meeting(start=SOON, organizer_is_owner=True, series_id="master", event_id="master_1"),
     "one occurrence of a series"),
])
def test_meetings_that_are_not_ours_to_ask_about_are_skipped_with_a_reason(assessor, meeting,
                                                                           why):
    opening, _ = begin(assessor, meeting)
    assert opening.opening is Opening.SKIP and why in opening.why


def test_a_series_itself_is_asked_about(assessor):
    meeting = make_meeting(start=SOON, organizer_is_owner=True, series_id="master",
                           event_id="master")
    assert begin(assessor, meeting)[0].opening is Opening.ASK


def test_too_close_to_the_meeting_to_ask_means_deciding_at_once(assessor):
    meeting = make_meeting(start=NOW + timedelta(hours=20), organizer_is_owner=True)
    opening, _ = begin(assessor, meeting)
    assert opening.opening is Opening.DECIDE and "too close" in opening.why


def test_our_own_write_read_back_needs_no_rewrite(assessor):
    meeting = make_meeting(start=SOON, organizer_is_owner=True)
    _, assessment = begin(assessor, meeting, organiser_choice=Format.VIRTUAL)
    # As the provider returns it: with the video link it was asked to create.
    written = replace(applied(meeting, assessment.plan), video_link="https://meet.example/x")
    again = assessor.assess(written, now=NOW,
                            organiser_facts=HardFacts(organiser_choice=Format.VIRTUAL))
    assert rewrite_needed(meeting, assessment.plan)
    assert not rewrite_needed(written, again.plan)


def test_a_length_a_person_set_back_is_not_rewritten_while_the_format_stays(assessor):
    meeting = make_meeting(start=SOON, organizer_is_owner=True)
    facts = HardFacts(organiser_choice=Format.VIRTUAL)
    plan = assessor.assess(meeting, now=NOW, organiser_facts=facts).plan
    undone = replace(applied(meeting, plan), end=meeting.end)  # back to the full hour
    assert not rewrite_needed(undone, assessor.assess(undone, now=NOW,
                                                      organiser_facts=facts).plan)
    in_person = HardFacts(organiser_choice=Format.IN_PERSON)
    assert rewrite_needed(undone, assessor.assess(undone, now=NOW,
                                                  organiser_facts=in_person).plan)


def test_the_confirmation_says_what_changed(assessor):
    meeting = make_meeting(start=SOON, organizer_is_owner=True)
    plan = assessor.assess(meeting, now=NOW,
                           organiser_facts=HardFacts(organiser_choice=Format.VIRTUAL)).plan
    assert changes_made(meeting, plan) == [
        "the invite now says which format and why", "shortened: 50 minutes instead of 60",
        "a video link was added"]


def test_a_stored_meeting_reads_back_the_same(assessor):
    meeting = make_meeting(start=SOON, organizer_is_owner=True, location="Hauptstr. 1",
                           description="<p>Agenda</p>", description_is_html=True)
    plan = assessor.assess(meeting, now=NOW,
                           organiser_facts=HardFacts(organiser_choice=Format.VIRTUAL)).plan
    written = applied(meeting, plan)
    assert meeting_from_json(meeting_to_json(written)) == written
    all_day = make_meeting(start=SOON, organizer_is_owner=True)
    all_day = replace(all_day, start=SOON.date(), end=SOON.date() + timedelta(days=1))
    assert meeting_from_json(meeting_to_json(all_day)) == all_day
