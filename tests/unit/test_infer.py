"""Inference: what the meeting and the organiser's calendar tell, each with a one-line why."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from assistant.config import Config, Customer, Organisation, Policy
from assistant.detect import CustomerMeetingDetector
from assistant.infer import Inferrer
from assistant.models import Provenance, Side
from tests.factories import NOW, make_meeting


def infer(checklist, meeting, *, history=None, config=None, now=NOW):
    config = config or Config(organisation=Organisation(domains=["example.com"]))
    detector = CustomerMeetingDetector(config.organisation.domains, config.detection)
    inference = Inferrer(checklist, config, detector).infer(
        meeting, detector.detect(meeting), history, now
    )
    return inference


def sides(inference) -> dict[str, str]:
    return {key: answer.side.value for key, answer in inference.answers.items()}


def test_title_words_answer_rows_1_and_9(checklist):
    result = infer(checklist, make_meeting("Acme kick-off workshop"))
    assert result.answers["importance"].side is Side.A
    assert result.answers["importance"].why == "the title says 'kick-off'"
    assert result.answers["discussion"].side is Side.A


def test_tactical_title_is_row_1_b(checklist):
    assert sides(infer(checklist, make_meeting("Acme weekly sync")))["importance"] == "B"


def test_conflicting_signals_leave_the_row_to_the_organiser(checklist):
    result = infer(checklist, make_meeting("Weekly pitch rehearsal with Acme"))
    assert "importance" not in result.answers
    assert "importance" not in result.configured


def test_recurring_meeting_is_tactical(checklist):
    result = infer(checklist, replace(make_meeting("Acme"), series_id="series-1"))
    assert result.answers["importance"].why == "it is part of a recurring series"


def test_first_meeting_with_a_domain_means_moment_of_truth_and_rapport_to_build(checklist):
    earlier_other = make_meeting("Globex", attendees=("alice@example.com", "erin@globex.com"),
                                 start=NOW - timedelta(days=40))
    result = infer(checklist, make_meeting("Acme"), history=[earlier_other])
    assert result.answers["importance"].why == "first meeting with acme.com"
    assert result.answers["rapport"].side is Side.A


def test_many_earlier_meetings_mean_rapport_exists(checklist):
    meeting = make_meeting("Acme")
    history = [make_meeting("Acme", start=meeting.start - timedelta(days=30 * n))
               for n in range(1, 8)]
    result = infer(checklist, meeting, history=history)
    assert result.answers["rapport"].side is Side.B
    assert "importance" not in result.answers


def test_without_history_nothing_is_inferred_from_it(checklist):
    result = infer(checklist, make_meeting("Acme"))
    assert "rapport" not in result.answers and "number" not in result.answers


def test_busy_weeks_mean_efficiency(checklist):
    meeting = make_meeting("Acme")
    nearby = [make_meeting(f"Customer {n}", attendees=("alice@example.com", f"x@c{n}.com"),
                           start=meeting.start + timedelta(days=n % 13 - 6, hours=n))
              for n in range(10)]
    result = infer(checklist, meeting, history=nearby)
    assert result.answers["number"].side is Side.B
    assert result.answers["number"].why == "10 other customer meetings within two weeks"
    quiet = infer(checklist, meeting, history=nearby[:2])
    assert quiet.answers["number"].side is Side.A


def test_internal_meetings_do_not_count_as_customer_meetings(checklist):
    meeting = make_meeting("Acme")
    internal = [make_meeting(f"Team {n}", attendees=("alice@example.com", "bob@example.com"),
                             start=meeting.start + timedelta(hours=n)) for n in range(12)]
    assert infer(checklist, meeting, history=internal).answers["number"].side is Side.A


def test_stakeholders_by_people_and_organisations(checklist):
    small = infer(checklist, make_meeting(attendees=("alice@example.com", "c@acme.com")))
    assert small.answers["stakeholders"].side is Side.A
    two_orgs = infer(checklist, make_meeting(attendees=("c@acme.com", "e@globex.com")))
    assert two_orgs.answers["stakeholders"].why == "2 people from 2 domains"
    crowd = infer(checklist, make_meeting(attendees=tuple(f"p{n}@acme.com" for n in range(5))))
    assert crowd.answers["stakeholders"].side is Side.B
    four = infer(checklist, make_meeting(attendees=tuple(f"p{n}@acme.com" for n in range(4))))
    assert "stakeholders" not in four.answers


def test_meeting_soon_means_timing_matters(checklist):
    meeting = make_meeting(start=NOW + timedelta(hours=30))
    assert infer(checklist, meeting).answers["priorities"].why == "it starts in 30 hours"
    for later in (timedelta(days=9), timedelta(hours=-1)):
        assert "priorities" not in infer(checklist, make_meeting(start=NOW + later)).answers


def test_address_or_video_link_tell_the_location(checklist):
    address = replace(make_meeting(), location="Friedrichstraße 43, 10117 Berlin")
    assert infer(checklist, address).answers["location"].side is Side.A
    zoom_location = replace(make_meeting(), location="https://acme.zoom.us/j/123")
    assert infer(checklist, zoom_location).answers["location"].side is Side.B
    teams = replace(make_meeting(), location="Microsoft Teams Meeting")
    assert infer(checklist, teams).answers["location"].why == "the location is a video call"
    hybrid = replace(address, location=address.location + "; https://acme.zoom.us/j/123")
    assert "location" not in infer(checklist, hybrid).answers


def test_a_video_link_alone_says_nothing_about_the_location(checklist):
    # Google and Outlook add one to most meetings automatically.
    video = replace(make_meeting(), video_link="https://meet.google.com/abc-defg-hij")
    assert "location" not in infer(checklist, video).answers


def test_customer_facts_from_config_are_defaults(checklist):
    config = Config(
        organisation=Organisation(domains=["example.com"]),
        customers={"ACME.com": Customer(name="Acme", values="virtual", competitors_active=True,
                                        power="customer")},
    )
    result = infer(checklist, make_meeting(), config=config)
    assert sides(result).items() >= {"values": "B", "stability": "A", "power": "B"}.items()
    assert result.answers["values"].provenance is Provenance.DEFAULT
    assert result.answers["values"].why == "Acme values meeting virtually"


def test_customer_facts_cover_subdomains(checklist):
    config = Config(organisation=Organisation(domains=["example.com"]),
                    customers={"acme.com": Customer(values="in_person")})
    meeting = make_meeting(attendees=("alice@example.com", "carol@uk.acme.com"))
    assert infer(checklist, meeting, config=config).answers["values"].side is Side.A
    lookalike = make_meeting(attendees=("alice@example.com", "mallory@notacme.com"))
    assert "values" not in infer(checklist, lookalike, config=config).answers


def test_travel_policies_become_hard_facts(checklist):
    org_ban = Config(organisation=Organisation(domains=["example.com"]),
                     policy=Policy(travel="not_allowed", travel_note="no travel until March"))
    assert infer(checklist, make_meeting(), config=org_ban).hard.travel_ruled_out == \
        "no travel until March"
    customer_ban = Config(organisation=Organisation(domains=["example.com"]),
                          customers={"acme.com": Customer(travel="not_allowed")})
    assert infer(checklist, make_meeting(), config=customer_ban).hard.travel_ruled_out == \
        "acme.com's travel policy"


def test_progress_review_is_tactical_but_business_review_is_not(checklist):
    assert sides(infer(checklist, make_meeting("Globex progress review")))["importance"] == "B"
    assert sides(infer(checklist, make_meeting("Globex business review")))["importance"] == "A"
