"""Asking only what can change the decision: the selection is checked against brute force."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.checklist import load_checklist
from assistant.decisive import AnswerCounts, decisive_questions, odds_of_a
from assistant.models import Format, HardFacts, Provenance, RowAnswer, Side
from assistant.scoring import recommend, recommended_format

KEYS = ["importance", "priorities", "number", "stakeholders", "values", "location",
        "rapport", "stability", "discussion", "power", "type", "enablers"]
A, B = Side.A, Side.B


def known(**sides: Side) -> dict[str, RowAnswer]:
    return {key: RowAnswer(side, Provenance.INFERRED) for key, side in sides.items()}


def test_a_first_pitch_with_six_rows_in_person_asks_nothing(checklist):
    """Six B answers to the six open rows would only tie, and row 1 breaks the tie in person."""
    rows = known(importance=A, stakeholders=A, values=A, rapport=A, stability=A, power=A)
    assert decisive_questions(checklist, rows, max_questions=4) == ()
    assert decisive_questions(checklist, rows, max_questions=12) == ()


def test_a_lead_of_two_is_asked_three_rows_or_none_under_a_lower_cap(checklist):
    rows = known(importance=A, stakeholders=A, priorities=B, location=A)  # 3 to 1
    assert len(decisive_questions(checklist, rows, max_questions=4)) == 3
    assert decisive_questions(checklist, rows, max_questions=2) == ()


def test_nothing_known_asks_row_one_alone(checklist):
    """A tie goes virtual while row 1 is unknown; row 1 answered A alone makes it in person."""
    assert recommend(checklist, {}).format is Format.VIRTUAL
    assert decisive_questions(checklist, {}, max_questions=4) == (1,)


def test_a_hard_fact_settles_it(checklist):
    assert decisive_questions(checklist, {}, HardFacts(travel_ruled_out="policy"),
                              max_questions=12) == ()
    assert decisive_questions(checklist, {}, HardFacts(organiser_choice=Format.IN_PERSON),
                              max_questions=12) == ()


def test_the_rows_likeliest_to_go_the_other_way_are_asked_first(checklist):
    rows = known(importance=A, stakeholders=A, location=A)  # 3 to 0; 3 to 3 stays in person
    even = decisive_questions(checklist, rows, max_questions=4)
    assert even == (2, 3, 5, 7)  # checklist order when nothing is known of the organiser
    leaning_b = odds_of_a({"enablers": AnswerCounts(a=0, b=4), "type": AnswerCounts(b=3)},
                          {"discussion": AnswerCounts(a=1, b=30)})
    assert decisive_questions(checklist, rows, max_questions=4,
                              odds_of_a_by_row=leaning_b) == (2, 9, 11, 12)


def test_odds_shrink_an_organisers_few_answers_towards_the_organisations():
    odds = odds_of_a({"values": AnswerCounts(a=1)}, {"values": AnswerCounts(a=0, b=20)})
    assert 0.3 < odds["values"] < 0.5  # one A of their own against twenty Bs of everyone's
    assert odds_of_a({}, {})  == {}


# -- the property: sound and minimal over the checklist's possible states -------------------

def outcome(checklist, answers, hard) -> Format:
    return recommend(checklist, answers, hard).format


def can_change(checklist, rows, hard, keys, current) -> bool:
    """Brute force: some answers (A, B or none) to keys change the format."""
    for sides in itertools.product((A, B, None), repeat=len(keys)):
        trial = {**rows, **{key: RowAnswer(side, Provenance.ORGANISER)
                            for key, side in zip(keys, sides, strict=True) if side}}
        if outcome(checklist, trial, hard) is not current:
            return True
    return False


states = st.lists(st.sampled_from([A, B, None]), min_size=12, max_size=12).filter(
    lambda sides: sides.count(None) <= 6)  # brute force stays fast: at most 3^6 trials
hards = st.sampled_from([HardFacts(), HardFacts(), HardFacts(), HardFacts(on_site_equipment=True),
                         HardFacts(travel_ruled_out="the customer's policy")])


@settings(max_examples=200, deadline=None)
@given(states, hards, st.integers(min_value=1, max_value=6),
       st.dictionaries(st.sampled_from(KEYS), st.floats(0.0, 1.0)))
def test_the_selection_is_sound_minimal_and_each_question_counts(checklist, sides, hard,
                                                                 most, odds):
    rows = {key: RowAnswer(side, Provenance.INFERRED)
            for key, side in zip(KEYS, sides, strict=True) if side}
    open_keys = [key for key, side in zip(KEYS, sides, strict=True) if side is None]
    current = outcome(checklist, rows, hard)
    asked = decisive_questions(checklist, rows, hard, max_questions=most, odds_of_a_by_row=odds)
    asked_keys = [checklist.find(number).key for number in asked]

    assert len(asked) <= most and set(asked_keys) <= set(open_keys)
    smaller = range(1, (len(asked) or most + 1))
    # Nothing smaller than what is asked (nothing at all, within the cap, when nothing is
    # asked) could change the format.
    assert not any(can_change(checklist, rows, hard, list(keys), current)
                   for size in smaller if size <= len(open_keys)
                   for keys in itertools.combinations(open_keys, size))
    if asked:
        assert can_change(checklist, rows, hard, asked_keys, current)
        for left_out in asked_keys:  # every question is needed by the others
            assert not can_change(checklist, rows, hard,
                                  [key for key in asked_keys if key != left_out], current)


@given(states | st.lists(st.sampled_from([A, B, None]), min_size=12, max_size=12),
       hards | st.sampled_from([HardFacts(organiser_choice=Format.VIRTUAL),
                                HardFacts(organiser_choice=Format.IN_PERSON)]))
def test_the_format_alone_is_the_whole_recommendations_format(state, hard):
    """decisive_questions asks recommended_format, not recommend, for speed: they agree."""
    checklist = load_checklist()
    known = {key: RowAnswer(side, Provenance.INFERRED)
             for key, side in zip(KEYS, state, strict=True) if side is not None}
    assert recommended_format(known, hard) is recommend(checklist, known, hard).format
