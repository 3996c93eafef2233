"""Score the checklist: hard reasons first, then the count of A against B, then the tie-break.

The order is the checklist's own: the organiser's explicit choice beats everything, the
customer's equipment on site beats a travel ban, a travel ban beats the count, and a tied
count goes to row 1 (a moment of truth is met in person), or to virtual when row 1 is unknown.

Reasons are Phrases: English where read as text (the CLI, the audit log), and said in the
organiser's or the customer's language where an email or the invite shows them.
"""

from __future__ import annotations

from collections.abc import Mapping

from assistant.checklist import Checklist, Row
from assistant.language import N_
from assistant.language.phrases import Phrase
from assistant.models import (
    DecidedBy,
    Format,
    HardFacts,
    Provenance,
    Recommendation,
    RowAnswer,
    Side,
    Totals,
)

TIE_BREAK_ROW = "importance"


def recommend(
    checklist: Checklist, answers: Mapping[str, RowAnswer], hard: HardFacts = HardFacts()
) -> Recommendation:
    """The format for a meeting, with its reasons; rows missing from answers are unknown."""
    for key in answers:
        checklist.row(key)  # a KeyError here is a programming error, not a user's
    known = {key: answer for key, answer in answers.items() if answer.side is not None}
    totals = Totals(
        in_person=sum(answer.side is Side.A for answer in known.values()),
        virtual=sum(answer.side is Side.B for answer in known.values()),
    )
    format_, decided_by, reasons, invite_reasons = _decide(checklist, known, totals, hard)
    return Recommendation(
        format=format_,
        totals=totals,
        decided_by=decided_by,
        reasons=tuple(reasons),
        invite_reasons=tuple(invite_reasons),
        answered=_keys_from(checklist, known, Provenance.ORGANISER),
        inferred=_keys_from(checklist, known, Provenance.INFERRED),
        defaulted=_keys_from(checklist, known, Provenance.DEFAULT),
        remembered=_keys_from(checklist, known, Provenance.REMEMBERED),
        unknown=tuple(row.key for row in checklist if row.key not in known),
    )


def recommended_format(answers: Mapping[str, RowAnswer], hard: HardFacts = HardFacts()
                       ) -> Format:
    """recommend(...).format alone, the reasons left unwritten: decisive_questions asks it
    for every set of answers that could turn a meeting, hundreds of times per meeting."""
    if hard.organiser_choice is not None:
        return hard.organiser_choice
    if hard.on_site_equipment:
        return Format.IN_PERSON
    if hard.travel_ruled_out:
        return Format.VIRTUAL
    sides = [answer.side for answer in answers.values() if answer.side is not None]
    in_person, virtual = sides.count(Side.A), sides.count(Side.B)
    if in_person != virtual:
        return Format.IN_PERSON if in_person > virtual else Format.VIRTUAL
    deciding = answers.get(TIE_BREAK_ROW)
    return deciding.side.favours if deciding and deciding.side else Format.VIRTUAL


def _decide(
    checklist: Checklist, known: Mapping[str, RowAnswer], totals: Totals, hard: HardFacts
) -> tuple[Format, DecidedBy, list[Phrase], list[str]]:
    if hard.organiser_choice is not None:
        choice = hard.organiser_choice
        chose = Phrase(N_("The organiser chose in person.") if choice is Format.IN_PERSON
                       else N_("The organiser chose virtual."))
        return choice, DecidedBy.ORGANISER_CHOICE, [chose], []
    if hard.on_site_equipment:
        return (
            Format.IN_PERSON,
            DecidedBy.ON_SITE_EQUIPMENT,
            [Phrase(N_("The work needs the customer's equipment on site."))],
            [Phrase(N_("the work needs to happen on site"))],
        )
    if hard.travel_ruled_out:
        why = hard.travel_ruled_out
        return (
            Format.VIRTUAL,
            DecidedBy.TRAVEL_POLICY,
            [Phrase(N_("Travel is ruled out: {why}."),
                    why=why if isinstance(why, Phrase) else why.rstrip("."))],
            [Phrase(N_("travel isn't possible for this meeting"))],
        )
    if totals.in_person != totals.virtual:
        winner = Side.A if totals.in_person > totals.virtual else Side.B
        reasons, invite = _row_reasons(checklist, known, winner)
        return winner.favours, DecidedBy.COUNT, reasons, invite
    return _break_tie(checklist, known, totals)


def _break_tie(
    checklist: Checklist, known: Mapping[str, RowAnswer], totals: Totals
) -> tuple[Format, DecidedBy, list[Phrase], list[str]]:
    tie = {"in_person": totals.in_person, "virtual": totals.virtual}
    deciding = known.get(TIE_BREAK_ROW)
    if deciding is None:
        reason = Phrase(N_("The checklist is tied {in_person} to {virtual} and the meeting's "
                           "importance is unknown, so virtual."), **tie)
        _, invite = _row_reasons(checklist, known, Side.B)
        return Format.VIRTUAL, DecidedBy.TIE_BREAK, [reason], invite
    winner = deciding.side
    assert winner is not None  # known rows have a side
    row = checklist.row(TIE_BREAK_ROW)
    reason = Phrase(N_("The checklist is tied {in_person} to {virtual}; the meeting's "
                       "importance decides it: {wording}."), **tie, wording=row.said(winner))
    reasons, invite = _row_reasons(checklist, known, winner)
    return winner.favours, DecidedBy.TIE_BREAK, [reason, *reasons], invite


def _row_reasons(
    checklist: Checklist, known: Mapping[str, RowAnswer], side: Side
) -> tuple[list[Phrase], list[str]]:
    """Plain-words reasons from the rows on `side`, for the organiser and for customers."""
    rows = [row for row in checklist if row.key in known and known[row.key].side is side]
    reasons = [_reason(row, side, known[row.key]) for row in rows]
    invite = [row.said(side, invite=True) for row in rows if row.invite_wording(side)]
    return reasons, invite


def _reason(row: Row, side: Side, answer: RowAnswer) -> Phrase:
    wording = row.said(side, capitalised=True)
    if answer.provenance is not Provenance.ORGANISER and answer.why:
        return Phrase(N_("{wording} (row {number}: {why})."), wording=wording,
                      number=row.number, why=answer.why)
    return Phrase(N_("{wording} (row {number})."), wording=wording, number=row.number)


def _keys_from(
    checklist: Checklist, known: Mapping[str, RowAnswer], provenance: Provenance
) -> tuple[str, ...]:
    return tuple(
        row.key for row in checklist if row.key in known and known[row.key].provenance is provenance
    )
