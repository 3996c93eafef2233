"""The team report's figures, from a store filled row by row: exact counts, weeks and times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event

from assistant.models import AssistantMark, Format
from assistant.store import Store
from assistant.store.codec import meeting_to_json
from assistant.store.tables import (
    Answer,
    Conversation,
    Outbox,
    RecommendationRecord,
    SeenMeeting,
    State,
    WatchedCalendar,
)
from assistant.team_report import TeamReport, default_since, gather, percentile, report_json
from tests.factories import make_meeting

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)  # a Thursday in 2026-W11
SINCE = date(2026, 2, 23)  # the Monday of 2026-W09
ALICE, BOB = "alice@sales.example.com", "bob@eu.sales.example.com"
CAROL, EVE = "carol@support.example.com", "eve@badsales.example.com"
ALL_ROWS = ["importance", "priorities", "number", "stakeholders", "values", "location",
            "rapport", "stability", "discussion", "power", "type", "enablers"]


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def rows(answered=(), inferred=(), defaulted=()) -> dict[str, list[str]]:
    known = {*answered, *inferred, *defaulted}
    return {"answered": list(answered), "inferred": list(inferred),
            "defaulted": list(defaulted), "unknown": [k for k in ALL_ROWS if k not in known]}


def record(at_: datetime, format_: str = "virtual", *, by: str = "count", without=True,
           totals=(0, 1), **row_kinds) -> RecommendationRecord:
    return RecommendationRecord(
        format=format_, decided_by=by, without_answer=without, at=at_,
        detail={"format": format_, "totals": {"in_person": totals[0], "virtual": totals[1]},
                "decided_by": by, "reasons": ["..."], "rows": rows(**row_kinds)})


class Filler:
    """Adds calendars, meetings and their conversations the way the service leaves them."""

    def __init__(self, session) -> None:
        self.session = session
        self.calendars: dict[str, WatchedCalendar] = {}

    def calendar(self, address: str) -> WatchedCalendar:
        if address not in self.calendars:
            self.calendars[address] = WatchedCalendar(provider="google", address=address,
                                                      sync_due=NOW)
            self.session.add(self.calendars[address])
        return self.calendars[address]

    def meeting(self, organiser: str, start: datetime, *, minutes: int = 60,
                mark: AssistantMark | None = None, state: State = State.ANNOTATED,
                round_: int = 1, questions=(), asked_at=None, answered_at=None,
                reminded_at=None, choice=None, left_alone=False,
                records=(), answers=()) -> Conversation:
        meeting = make_meeting(f"Meeting {start:%m%d%H}", organizer=organiser,
                               attendees=(organiser, "erin@northwind.example"), start=start,
                               minutes=minutes, mark=mark, organizer_is_owner=True)
        seen = SeenMeeting(calendar=self.calendar(organiser), event_id=meeting.event_id,
                           organiser=organiser, title=meeting.title, start_at=start,
                           snapshot=meeting_to_json(meeting), first_seen_at=start - timedelta(
                               days=20), last_seen_at=NOW)
        talk = Conversation(meeting=seen, state=state, round=round_, questions=list(questions),
                            detected_at=start - timedelta(days=14), asked_at=asked_at,
                            answered_at=answered_at, reminded_at=reminded_at,
                            organiser_choice=choice, left_alone=left_alone)
        self.session.add(talk)
        self.session.flush()
        for rec in records:
            rec.conversation_id = talk.id
            self.session.add(rec)
        for key in answers:
            self.session.add(Answer(conversation_id=talk.id, row_key=key, side="A",
                                    provenance="organiser", why="the organiser's reply",
                                    at=answered_at or NOW))
        self.session.flush()
        return talk

    def email(self, kind: str, recipient: str, talk: Conversation | None, *,
              state: str = "done", created: datetime = at(1)) -> None:
        self.session.add(Outbox(
            idempotency_key=f"{kind}:{recipient}:{talk.id if talk else created}:{state}",
            kind="email", email_kind=kind, recipient=recipient,
            conversation_id=talk.id if talk else None, payload={}, state=state,
            next_attempt_at=created, created_at=created))


def shortened(minutes_set: int, before: int, fmt=Format.VIRTUAL, **fields) -> AssistantMark:
    return AssistantMark(format=fmt, block_hash="x", minutes_set=minutes_set,
                         minutes_before=before, **fields)


@pytest.fixture()
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'assistant.sqlite3'}")
    with store.transaction() as session:
        fill(Filler(session))
    yield store
    store.close()


def fill(f: Filler) -> None:
    # W10: Alice's hour, asked, answered in 2 hours, shortened to 50 minutes; she also
    # overwrote row 7 (rapport), which the email showed as inferred.
    m1 = f.meeting(ALICE, at(2), minutes=50, mark=shortened(50, 60), questions=[2, 5, 9],
                   asked_at=at(25, 9, month=2), answered_at=at(25, 11, month=2),
                   answers=["priorities", "rapport"],
                   records=[record(at(25, 11, month=2), without=False,
                                   answered=["priorities", "rapport"],
                                   inferred=["importance", "stakeholders", "location"])])
    # W10: Alice's 90 minutes decided at once (nothing to ask) and shortened to 80.
    f.meeting(ALICE, at(3), minutes=80, mark=shortened(80, 90), state=State.ANNOTATED,
              records=[record(at(20, month=2), inferred=ALL_ROWS)])
    # W10: Carol never answered; decided at the deadline; a person set the hour back.
    m4 = f.meeting(CAROL, at(4), minutes=60, mark=shortened(50, 60), questions=[1, 2],
                   asked_at=at(1, 8), reminded_at=at(2, 8),
                   records=[record(at(3), inferred=["number"], defaulted=["values"])])
    # W11: Bob (a subdomain of sales) chose in person against a count of 1 to 3, in 24 hours
    # (first answer), and changed his mind later (which moved answered_at, not the first).
    f.meeting(BOB, at(10), mark=AssistantMark(format=Format.IN_PERSON, block_hash="x"),
              questions=[1, 3], asked_at=at(5, 8), answered_at=at(7, 8), choice="in_person",
              records=[record(at(6, 8), "in_person", by="organiser_choice", without=False,
                              totals=(1, 3), inferred=["priorities", "location"]),
                       record(at(7, 8), "in_person", by="organiser_choice", without=False,
                              totals=(1, 3), inferred=["priorities", "location"])])
    # W11: Carol's next one, asked and waiting.
    m5 = f.meeting(CAROL, at(12), state=State.ASKED, questions=[1], asked_at=at(9, 8))
    # W11: Bob's note edited by a person: left alone since.
    f.meeting(BOB, at(11), mark=AssistantMark(format=Format.VIRTUAL, block_hash="x"),
              left_alone=True, records=[record(at(1), inferred=["importance"])])
    # W11: Eve (badsales: not sales) decided at once, then answered row 1 on the confirmation.
    f.meeting(EVE, at(13), mark=AssistantMark(format=Format.IN_PERSON, block_hash="x"),
              answered_at=at(8), answers=["importance"],
              records=[record(at(2), inferred=["importance", "location"]),
                       record(at(8), "in_person", without=False, totals=(1, 0),
                              answered=["importance"], inferred=["location"])])
    # W12: Alice's cancelled meeting.
    f.meeting(ALICE, at(16), state=State.CANCELLED)
    # Left out: before the first day; never a customer meeting.
    f.meeting(ALICE, at(10, month=1), records=[record(at(1, month=1), inferred=ALL_ROWS)])
    f.meeting(ALICE, at(5), state=State.SKIPPED, round_=0)
    f.email("question", ALICE, m1)
    f.email("confirmation", ALICE, m1)
    f.email("reminder", CAROL, m4)
    f.email("question", CAROL, m5, state="pending")
    f.email("digest", CAROL, None)
    f.email("digest", CAROL, None, created=at(1, month=1))  # before the first day


def report(store, teams=(), since=SINCE) -> TeamReport:
    with store.transaction() as session:
        return gather(session, since=since, teams=list(teams), now=NOW)


def test_meetings_and_formats_are_counted_once_each(store):
    meetings = report(store).meetings
    assert (meetings.detected, meetings.decided, meetings.in_person, meetings.virtual) == (
        8, 6, 2, 4)
    assert (meetings.waiting, meetings.cancelled, meetings.dropped) == (1, 1, 0)
    assert meetings.virtual_share == pytest.approx(4 / 6)


def test_weeks_run_from_the_first_day_to_the_last_meeting_by_start(store):
    weeks = report(store).weeks
    assert [w.label for w in weeks] == ["2026-W09", "2026-W10", "2026-W11", "2026-W12"]
    assert [(w.detected, w.in_person, w.virtual) for w in weeks] == [
        (0, 0, 0), (3, 0, 3), (4, 2, 1), (1, 0, 0)]
    assert [(w.asked, w.answered) for w in weeks] == [(0, 0), (2, 1), (2, 1), (0, 0)]
    assert [w.minutes_given_back for w in weeks] == [0, 20, 0, 0]


def test_answer_rate_and_time_use_the_first_answer(store):
    answering = report(store).answering
    assert (answering.asked, answering.answered, answering.answer_rate) == (4, 2, 0.5)
    assert (answering.reminded, answering.decided_without_answer, answering.waiting) == (1, 1, 1)
    assert answering.median_hours == pytest.approx(13.0)  # 2 h and 24 h
    assert answering.p90_hours == pytest.approx(21.8)
    assert dict(answering.buckets) == {"under 1 h": 0, "1-4 h": 1, "4-24 h": 0,
                                       "1-3 days": 1, "over 3 days": 0}


def test_rows_say_how_each_was_filled(store):
    by_key = {row.key: row for row in report(store).rows}
    assert [row.number for row in by_key.values()] == list(range(1, 13))
    importance = by_key["importance"]
    # Inferred for m1, m2, m9; answered for Eve; asked of Carol and Bob (both decided).
    assert (importance.inferred, importance.answered, importance.asked) == (3, 1, 2)
    assert (importance.unknown, importance.defaulted) == (2, 0)
    assert by_key["values"].defaulted == 1
    assert by_key["rapport"].answered == 1
    for row in by_key.values():
        assert row.inferred + row.answered + row.defaulted + row.unknown == 6


def test_minutes_given_back_count_only_shortenings_still_in_place(store):
    given = report(store).given_back
    assert (given.meetings, given.minutes) == (2, 20)


def test_overrides_count_choices_overwritten_rows_and_peoples_edits(store):
    overrides = report(store).overrides
    assert (overrides.format_chosen, overrides.chose_in_person, overrides.chose_virtual) == (
        1, 1, 0)
    assert overrides.chose_against_count == 1
    # Alice's rapport (not asked), Eve's importance (inferred by the earlier decision).
    assert (overrides.rows_overwritten, overrides.meetings_with_rows_overwritten) == (2, 2)
    by_key = {row.key: row for row in report(store).rows}
    assert (by_key["rapport"].overwritten, by_key["importance"].overwritten,
            by_key["priorities"].overwritten) == (1, 1, 0)
    assert (overrides.notes_edited, overrides.lengths_restored) == (1, 1)


def test_a_team_is_a_domain_with_its_subdomains_not_a_lookalike(store):
    sales = report(store, ["sales.example.com"])
    assert sales.meetings.detected == 5  # Alice's three in range and Bob's two; not Eve's
    assert (sales.meetings.in_person, sales.meetings.virtual) == (1, 3)
    assert sales.given_back.minutes == 20
    assert sales.calendars == 2


def test_a_team_is_a_calendar_too_and_several_teams_add_up(store):
    carol = report(store, ["Carol@Support.example.com"])
    assert carol.meetings.detected == 2
    assert (carol.answering.asked, carol.answering.answered) == (2, 0)
    assert carol.overrides.lengths_restored == 1
    both = report(store, [CAROL, EVE])
    assert both.meetings.detected == 3
    assert both.unknown_calendars == ()


def test_an_unknown_calendar_is_named_and_matches_nothing(store):
    nobody = report(store, ["nobody@example.com"])
    assert nobody.empty and nobody.unknown_calendars == ("nobody@example.com",)


def test_since_moves_the_first_week(store):
    late = report(store, since=date(2026, 3, 11))
    assert [w.label for w in late.weeks] == ["2026-W11", "2026-W12"]
    assert late.meetings.detected == 4  # from 11 March on: Carol's 12th, Bob's 11th, Eve, W12
    early = report(store, since=date(2026, 1, 1))
    assert early.meetings.detected == 9


def test_emails_sent_count_deliveries_about_the_teams_meetings(store):
    assert dict(report(store).emails_sent) == {"question": 1, "digest": 1, "reminder": 1,
                                               "clarification": 0, "confirmation": 1}
    assert dict(report(store, [ALICE]).emails_sent)["digest"] == 0


def test_the_json_has_every_figure_and_says_how_each_is_computed(store):
    data = report_json(report(store))
    assert data["meetings"]["virtual_share"] == 0.667
    assert data["answers"]["median_hours"] == 13.0 and data["answers"]["answer_rate"] == 0.5
    assert data["weeks"][1] == {"week": "2026-W10", "start": "2026-03-02", "detected": 3,
                                "in_person": 0, "virtual": 3, "asked": 2, "answered": 1,
                                "answer_rate": 0.5, "shortened": 2, "minutes_given_back": 20}
    assert data["minutes_given_back"] == {"meetings": 2, "minutes": 20}
    assert data["overrides"]["rows_overwritten"] == 2
    assert "Minutes given back" in data["definitions"]


def test_an_empty_store_gives_an_empty_report_of_zeros(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        empty = report(store)
    finally:
        store.close()
    assert empty.empty and empty.answering.median_hours is None
    assert empty.meetings.in_person_share is None
    assert [w.label for w in empty.weeks] == ["2026-W09", "2026-W10", "2026-W11"]
    assert report_json(empty)["answers"]["p90_hours"] is None


def test_the_queries_are_a_handful_however_many_meetings(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'many.sqlite3'}")
    try:
        with store.transaction() as session:
            filler = Filler(session)
            for n in range(300):
                filler.meeting(ALICE if n % 2 else CAROL, at(2) + timedelta(hours=n),
                               minutes=50, mark=shortened(50, 60), questions=[1],
                               asked_at=at(1), answered_at=at(1, 12), answers=["importance"],
                               records=[record(at(1, 12), without=False,
                                               answered=["importance"])])
        statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        big = report(store, ["sales.example.com", CAROL])
    finally:
        store.close()
    assert big.meetings.detected == 300 and big.given_back.minutes == 3000
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 6


def test_default_since_is_twelve_weeks_of_mondays():
    assert default_since(NOW) == date(2025, 12, 22)
    assert default_since(NOW).weekday() == 0


def test_percentile_interpolates_between_ranks():
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)


def test_each_chart_is_an_inline_svg_with_its_alt_text(store):
    from assistant.report_charts import charts

    drawn = charts(report(store, since=date(2025, 10, 1)))  # 24 weeks: labels thinned
    assert [c.title for c in drawn] == [
        "In person or virtual, by week", "How often and how fast organisers answer",
        "Which checklist rows the calendar answers",
        "Minutes given back by shorter virtual meetings", "Where people overrode the assistant"]
    for chart in drawn:
        assert chart.svg.startswith("<svg") and chart.svg.endswith("</svg>")
        assert 'width="100%"' in chart.svg and 'role="img"' in chart.svg
        assert f"<title>{chart.alt_text.replace(chr(39), '&#x27;')}</title>" in chart.svg
        assert "no meetings yet" not in chart.alt_text
    assert "20 minutes in all, from 2 meetings" in drawn[3].alt_text
    assert "2 of 4 answered (50%); median 13.0 h, 90% within 21.8 h" in drawn[1].alt_text


def test_charts_of_no_meetings_say_so_instead_of_failing(store):
    from assistant.report_charts import charts

    drawn = charts(report(store, ["nobody@example.com"]))
    assert len(drawn) == 5 and all("no meetings yet" in c.alt_text for c in drawn)


def test_the_burden_counts_questions_asked_meetings_decided_unasked_and_emails(store):
    burden = report(store).burden
    # Asked: Alice 3 rows, Carol 2 and 1, Bob 2; the other four meetings were never asked.
    assert (burden.asked, burden.median_questions) == (4, 2)
    assert burden.p90_questions == pytest.approx(2.7)
    assert burden.median_questions_per_meeting == 0.5
    # Decided without a question: Alice's 90 minutes, Bob's edited note, Eve's.
    assert (burden.decided_unasked, burden.decided, burden.unasked_share) == (3, 6, 0.5)
    assert (burden.emails, burden.meetings, burden.emails_per_meeting) == (4, 8, 0.5)
    assert report_json(report(store))["burden"]["unasked_share"] == 0.5
