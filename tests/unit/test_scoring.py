"""Scoring follows the checklist's precedence: choice > equipment > travel > count > row 1."""

from __future__ import annotations

import json

import pytest

from assistant.models import DecidedBy, Format, HardFacts, Provenance, RowAnswer, Side, Totals
from assistant.presenting import recommendation_from_json, recommendation_json
from assistant.scoring import recommend


def answers(**sides: str) -> dict[str, RowAnswer]:
    return {key: RowAnswer(Side(side), Provenance.ORGANISER) for key, side in sides.items()}


def test_more_a_than_b_means_in_person(checklist):
    result = recommend(checklist, answers(importance="A", rapport="A", type="B"))
    assert result.format is Format.IN_PERSON
    assert result.decided_by is DecidedBy.COUNT
    assert result.totals == Totals(in_person=2, virtual=1)
    assert result.reasons == (
        "A moment of truth: first meeting, pitch, negotiation, onboarding or key business review"
        " (row 1).",
        "Trust and rapport still need building (or re-building) (row 7).",
    )


def test_more_b_than_a_means_virtual_with_the_b_rows_as_reasons(checklist):
    result = recommend(checklist, answers(importance="A", number="B", location="B"))
    assert (result.format, result.decided_by) == (Format.VIRTUAL, DecidedBy.COUNT)
    assert [reason.rsplit("(", 1)[1] for reason in result.reasons] == ["row 3).", "row 6)."]


def test_unknown_rows_count_for_neither_side(checklist):
    given = answers(importance="B")
    given["rapport"] = RowAnswer(None, Provenance.INFERRED)
    result = recommend(checklist, given)
    assert result.totals == Totals(0, 1)
    assert "rapport" in result.unknown and len(result.unknown) == 11


def test_tie_goes_to_row_1_when_it_says_in_person(checklist):
    result = recommend(checklist, answers(importance="A", rapport="B"))
    assert (result.format, result.decided_by) == (Format.IN_PERSON, DecidedBy.TIE_BREAK)
    assert result.reasons[0].startswith("The checklist is tied 1 to 1; the meeting's importance")


def test_tie_goes_to_row_1_when_it_says_virtual(checklist):
    result = recommend(checklist, answers(importance="B", rapport="A"))
    assert (result.format, result.decided_by) == (Format.VIRTUAL, DecidedBy.TIE_BREAK)


def test_tie_with_row_1_unknown_is_virtual(checklist):
    result = recommend(checklist, answers(rapport="A", type="B"))
    assert (result.format, result.decided_by) == (Format.VIRTUAL, DecidedBy.TIE_BREAK)
    assert "importance is unknown" in result.reasons[0]


def test_nothing_known_is_a_tie_decided_virtual(checklist):
    result = recommend(checklist, {})
    assert (result.format, result.decided_by, result.totals) == (
        Format.VIRTUAL, DecidedBy.TIE_BREAK, Totals(0, 0))
    assert len(result.unknown) == 12


@pytest.mark.parametrize("choice", list(Format))
def test_organiser_choice_beats_everything(checklist, choice):
    hard = HardFacts(organiser_choice=choice, on_site_equipment=True, travel_ruled_out="policy")
    lopsided = answers(importance="B", number="B", rapport="B") if choice is Format.IN_PERSON \
        else answers(importance="A", number="A", rapport="A")
    result = recommend(checklist, lopsided, hard)
    assert (result.format, result.decided_by) == (choice, DecidedBy.ORGANISER_CHOICE)
    assert result.totals == (Totals(0, 3) if choice is Format.IN_PERSON else Totals(3, 0))


def test_equipment_on_site_beats_travel_policy_and_count(checklist):
    hard = HardFacts(on_site_equipment=True, travel_ruled_out="no travel this quarter")
    result = recommend(checklist, answers(number="B", location="B"), hard)
    assert (result.format, result.decided_by) == (Format.IN_PERSON, DecidedBy.ON_SITE_EQUIPMENT)
    assert result.invite_reasons == ("the work needs to happen on site",)


def test_travel_policy_beats_the_count(checklist):
    hard = HardFacts(travel_ruled_out="no travel this quarter.")
    result = recommend(checklist, answers(importance="A", rapport="A"), hard)
    assert (result.format, result.decided_by) == (Format.VIRTUAL, DecidedBy.TRAVEL_POLICY)
    assert result.reasons == ("Travel is ruled out: no travel this quarter.",)


def test_provenance_is_reported_per_row(checklist):
    given = {
        "importance": RowAnswer(Side.A, Provenance.ORGANISER),
        "stakeholders": RowAnswer(Side.A, Provenance.INFERRED, "1 person from one organisation"),
        "values": RowAnswer(Side.A, Provenance.DEFAULT, "Acme values meeting in person"),
    }
    result = recommend(checklist, given)
    assert result.answered == ("importance",)
    assert result.inferred == ("stakeholders",)
    assert result.defaulted == ("values",)
    assert "(row 4: 1 person from one organisation)" in result.reasons[1]


def test_invite_reasons_leave_out_internal_rows(checklist):
    result = recommend(checklist, answers(stability="A", power="A", rapport="A"))
    assert result.format is Format.IN_PERSON
    assert result.invite_reasons == ("we would like to get to know each other",)
    assert len(result.reasons) == 3


def test_a_recommendation_comes_back_whole_from_the_json_it_is_stored_as(checklist):
    given = answers(importance="A", stakeholders="B", location="B")
    given["values"] = RowAnswer(Side.B, Provenance.DEFAULT, "config")
    given["rapport"] = RowAnswer(Side.A, Provenance.INFERRED, "first meeting")
    result = recommend(checklist, given, HardFacts(travel_ruled_out="the travel policy"))
    stored = json.loads(json.dumps(recommendation_json(result)))
    assert recommendation_from_json(stored) == result


def test_a_recommendation_stored_without_the_invite_reasons_is_not_guessed(checklist):
    stored = recommendation_json(recommend(checklist, answers(importance="A")))
    del stored["invite_reasons"]  # as earlier versions recorded it
    assert recommendation_from_json(stored) is None
