"""Which checklist rows are worth asking: only those whose answers could change the format.

Rows nobody knows count for neither side, so before asking, the checklist's own arithmetic
tells whether any answers could change the recommendation. The answers most able to change
it are all the asked rows going the other way, and the scoring is monotone (an A never makes
a meeting less in person), so a set of rows can change the format exactly when that one
assignment does. Rows count alike except row 1, which also breaks ties; so for each size it
is enough to try the likeliest rows, and the likeliest rows with row 1 among them.

The rows tried first are those likeliest to go the other way, judged from how the organiser
and the organisation answered each row before (even odds without a history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from assistant.checklist import Checklist, Row
from assistant.models import Format, HardFacts, Provenance, RowAnswer, Side
from assistant.scoring import TIE_BREAK_ROW, recommend, recommended_format

EVEN = 0.5
# How many of the organisation's answers an organiser's own history must outweigh: with two,
# a single earlier answer of their own moves their odds only part of the way.
ORGANISATION_WEIGHT = 2.0


@dataclass(frozen=True)
class AnswerCounts:
    """How often a row was answered A and B."""

    a: int = 0
    b: int = 0


def odds_of_a(own: Mapping[str, AnswerCounts],
              everyone: Mapping[str, AnswerCounts]) -> dict[str, float]:
    """Each row's chance of an A answer: the organiser's own answers, shrunk towards the
    organisation's, which are shrunk towards even odds (Laplace's rule of succession)."""
    odds = {}
    for key in {*own, *everyone}:
        all_ = everyone.get(key, AnswerCounts())
        organisation = (all_.a + 1) / (all_.a + all_.b + 2)
        mine = own.get(key, AnswerCounts())
        odds[key] = ((mine.a + ORGANISATION_WEIGHT * organisation)
                     / (mine.a + mine.b + ORGANISATION_WEIGHT))
    return odds


def decisive_questions(
    checklist: Checklist,
    known: Mapping[str, RowAnswer],
    hard: HardFacts = HardFacts(),
    *,
    max_questions: int,
    odds_of_a_by_row: Mapping[str, float] | None = None,
) -> tuple[int, ...]:
    """The row numbers to ask, in checklist order: the fewest open rows whose answers could
    change the recommended format, the likeliest to go the other way first.

    () when no answers to at most max_questions open rows could change it: the format is
    settled by a hard fact, or by a lead no few answers can overturn.
    """
    current = recommend(checklist, known, hard)
    if current.decided_by.is_hard:
        return ()
    against = Side.B if current.format is Format.IN_PERSON else Side.A
    odds = odds_of_a_by_row or {}

    def going_against(row: Row) -> float:
        chance_of_a = odds.get(row.key, EVEN)
        return chance_of_a if against is Side.A else 1 - chance_of_a

    open_rows = sorted((row for row in checklist if _open(known, row.key)),
                       key=going_against, reverse=True)  # stable: checklist order on ties
    for size in range(1, min(max_questions, len(open_rows)) + 1):
        for chosen in _candidates(open_rows, size):
            if _changes(known, hard, chosen, against, current.format):
                return tuple(sorted(row.number for row in chosen))
    return ()


def _open(known: Mapping[str, RowAnswer], key: str) -> bool:
    answer = known.get(key)
    return answer is None or answer.side is None


def _candidates(ranked: list[Row], size: int) -> list[list[Row]]:
    """The size likeliest rows; and, when row 1 is open but not among them, row 1 with the
    size - 1 likeliest others (row 1 also breaks ties, so it can change more than others)."""
    likeliest = ranked[:size]
    tie_break = [row for row in ranked if row.key == TIE_BREAK_ROW]
    if not tie_break or tie_break[0] in likeliest:
        return [likeliest]
    others = [row for row in ranked if row.key != TIE_BREAK_ROW]
    return [likeliest, [tie_break[0], *others[: size - 1]]]


def _changes(known: Mapping[str, RowAnswer], hard: HardFacts, chosen: list[Row],
             against: Side, current: Format) -> bool:
    answered = {**known, **{row.key: RowAnswer(against, Provenance.ORGANISER)
                            for row in chosen}}
    return recommended_format(answered, hard) is not current
