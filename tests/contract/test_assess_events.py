"""Each API-shaped fixture through the whole pure pipeline: detect, infer, recommend, plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from assistant import block
from assistant.annotate import applied
from assistant.assess import Assessor
from assistant.config import config_for_domains
from assistant.event_files import read_event
from assistant.models import Format, Meeting
from tests.factories import EVENTS

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

# file, customer meeting?, row 1 as inferred (or None), recommended format (or None)
CASES = [
    ("google-customer-pitch.json", True, "A", Format.IN_PERSON),
    ("google-weekly-sync-meet.json", True, "B", Format.VIRTUAL),
    ("google-internal.json", False, None, None),
    ("google-all-day.json", False, None, None),
    ("google-series-master.json", True, "B", Format.IN_PERSON),  # workshop, one person
    ("graph-customer-teams.json", True, "A", None),
    ("graph-in-person-address.json", True, "A", Format.IN_PERSON),
    ("graph-cancelled.json", False, None, None),
    ("graph-occurrence.json", True, "B", Format.VIRTUAL),
    ("graph-all-day.json", False, None, None),
]


@pytest.fixture()
def assessor(checklist, renderer):
    return Assessor(config_for_domains(["example.com"]), checklist, renderer)


def load(name: str) -> Meeting:
    meeting = read_event(json.loads((EVENTS / name).read_text(encoding="utf-8")))
    assert isinstance(meeting, Meeting), name
    return meeting


@pytest.mark.parametrize(("name", "customer", "row_1", "format_"), CASES)
def test_fixture_through_the_pipeline(assessor, name, customer, row_1, format_):
    meeting = load(name)
    result = assessor.assess(meeting, now=NOW)
    assert result.detection.is_customer_meeting is customer, result.detection.why
    if not customer:
        assert result.plan is None and result.recommendation is None
        return
    inferred = result.inference.answers.get("importance")
    assert (inferred.side.value if inferred else None) == row_1
    if format_ is not None:
        assert result.recommendation.format is format_
    plan = result.plan
    assert block.remove_block(plan.description, meeting.description_is_html) == meeting.description
    again = assessor.assess(applied(meeting, plan), now=NOW)
    assert again.plan.description == plan.description and again.plan.end is None


def test_outlook_html_body_keeps_the_teams_block_and_gets_ours_first(assessor):
    meeting = load("graph-customer-teams.json")
    plan = assessor.assess(meeting, now=NOW).plan
    body_at = plan.description.index("<body>") + len("<body>")
    assert plan.description[body_at:].startswith(block.HTML_START)
    assert "Click here to join the meeting" in plan.description
    assert not plan.add_video_link  # the Teams link is already there


def test_google_html_description_gets_an_html_block(assessor):
    meeting = load("google-weekly-sync-meet.json")
    plan = assessor.assess(meeting, now=NOW).plan
    assert plan.description.startswith(block.HTML_START)
    assert plan.description.endswith(meeting.description)
    assert "<li>Status</li>" in meeting.description
    assert plan.end == meeting.start + timedelta(minutes=50)


def test_crlf_text_body_of_outlook_gets_a_crlf_block(assessor):
    meeting = load("graph-in-person-address.json")
    plan = assessor.assess(meeting, now=NOW).plan
    assert plan.description.endswith("\r\n\r\n" + meeting.description)
    assert "\n" not in plan.description.replace("\r\n", "")


def test_occurrence_keeps_its_thirty_minutes(assessor):
    meeting = load("graph-occurrence.json")
    assert assessor.assess(meeting, now=NOW).plan.end is None
