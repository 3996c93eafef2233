"""Reading then planning never crashes, whatever JSON a provider, a user (or an attacker) sends.

Events are built by mutating real API-shaped events: a field replaced by arbitrary JSON, or
removed. The only acceptable failure is UnreadableEvent, which the sync loop reports.
"""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import resources
from assistant.answers import parse_answer_document
from assistant.assess import Assessor
from assistant.config import config_for_domains
from assistant.errors import InputError, UnreadableEvent
from assistant.event_files import read_event
from integrations.google_event import read_google_event
from integrations.graph_event import read_graph_event
from tests.factories import EVENTS, read_and_assess

EXAMPLE = resources.config_dir() / "examples" / "google-event.json"
SOURCES = [*sorted(EVENTS.glob("*.json")), EXAMPLE]
BASES = [json.loads(path.read_text(encoding="utf-8")) for path in SOURCES]
NOW = datetime(2026, 12, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["2026-12-03T10:00:00", "2026-12-03", "UTC", "Pacific Standard Time",
                       "cancelled", "html", "resource", "<b>x</b>", "a@b.c", "@", "Mars/Olympus"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_events(draw):
    event = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        parent = event
        while True:
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = parent[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                parent = child
                continue
            if isinstance(parent, dict) and draw(st.booleans()):
                del parent[key]
            else:
                parent[key] = draw(json_values)
            break
    return event


@pytest.mark.fuzz
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(event=mutated_events())
def test_reading_then_planning_never_crashes(checklist, renderer, event):
    read_and_assess(event, Assessor(config_for_domains(["example.com"]), checklist, renderer), NOW)


@pytest.mark.fuzz
@given(value=json_values)
def test_arbitrary_json_is_unreadable_not_a_crash(value):
    for reader in (read_event, read_google_event, read_graph_event):
        with contextlib.suppress(UnreadableEvent):
            reader(value)


@given(value=json_values)
def test_any_answers_document_is_read_or_refused_cleanly(checklist, value):
    with contextlib.suppress(InputError):
        parse_answer_document(value, checklist)
