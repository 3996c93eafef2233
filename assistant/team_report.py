"""A team's figures from the store: what the assistant detected, asked, decided and gave back.

gather() reads the store in a handful of queries whatever the number of meetings
(assistant.report_queries) and counts in Python; everything it returns is a frozen
dataclass, so the CLI, the charts and the admin page read the same figures. DEFINITIONS says in
plain words how each figure is computed; the reports print it.

A meeting belongs to the report when its conversation was opened at least once (a customer
meeting the assistant took up), it starts on or after `since` (UTC), and it matches a team:
its organiser's domain (subdomains included) or the watched calendar it was read from.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.checklist import Checklist, load_checklist
from assistant.models import Format
from assistant.report_queries import (
    Decisions,
    TalkRow,
    calendars_named,
    decisions_in,
    emails_sent_in,
    organiser_rows_in,
    scope_of,
    talks_in,
)
from assistant.store.tables import State, WatchedCalendar

DEFAULT_WEEKS = 12  # how far back a report goes unless told
_DECIDED = {State.ANSWERED, State.DECIDED, State.ANNOTATED}
_OPEN = {State.DETECTED, State.ASKED, State.REMINDED}
# Hours to answer, in buckets a person reads at a glance: (upper bound in hours, label).
ANSWER_BUCKETS = ((1, "under 1 h"), (4, "1-4 h"), (24, "4-24 h"), (72, "1-3 days"),
                  (math.inf, "over 3 days"))

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Meetings", "customer meetings the assistant took up (a conversation was opened), "
                 "starting on or after the report's first day; weeks are ISO weeks (Monday "
                 "to Sunday, UTC) of the meeting's start."),
    ("In person / virtual", "the format of the latest recommendation of each decided "
                            "meeting (answered, decided or annotated; cancelled ones left out)."),
    ("Answer rate", "of the meetings whose organiser was asked, the share with an answer "
                    "from the organiser (by email or a one-click link), at any time."),
    ("Time to answer", "hours from the question email to the organiser's first answer "
                       "(the first recommendation made with an answer); median and 90th "
                       "percentile."),
    ("Rows", "for each checklist row, over the decided meetings: asked = in the question "
             "email; answered = the organiser's answer counts; inferred = read from the "
             "calendar; from config = a fact an admin set per customer; unknown = counted "
             "for neither side. The last four add up to the decided meetings."),
    ("Organisers' burden", "questions per asked meeting: how many checklist rows its question "
                           "email asked (median and 90th percentile); decided with no "
                           "question: the share of decided meetings whose organiser was never "
                           "asked, since no answer could change the format or it was too late "
                           "to ask; emails per meeting: every email to organisers about these "
                           "meetings (questions, reminders, clarifications, confirmations, "
                           "digests) over the meetings taken up."),
    ("Minutes given back", "for virtual meetings whose invite the assistant shortened and "
                           "that are still on the calendar: the length before it shortened "
                           "them (kept in its mark on the event) minus the length they have "
                           "now; a length a person set back gives nothing back."),
    ("Format chosen by the organiser", "meetings decided by the organiser's own choice "
                                       "(\"in person\", \"virtual\"); against the count = "
                                       "the checklist's rows favoured the other format."),
    ("Rows overwritten", "organiser answers to rows the assistant had already filled from "
                         "the calendar or config (rows it did not ask, or that an earlier "
                         "decision listed as inferred). The inferred side is not stored, so "
                         "an answer repeating it counts too."),
    ("Invites changed by a person", "notes a person edited or removed after the assistant "
                                    "wrote them (left alone since), and lengths a person set "
                                    "back after the assistant shortened the meeting."),
)


@dataclass(frozen=True)
class Week:
    """One ISO week's meetings, by the week of their start."""

    start: date  # the Monday
    detected: int = 0
    in_person: int = 0
    virtual: int = 0
    asked: int = 0
    answered: int = 0
    shortened: int = 0
    minutes_given_back: int = 0

    @property
    def label(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def decided(self) -> int:
        return self.in_person + self.virtual

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.asked if self.asked else None


@dataclass(frozen=True)
class Meetings:
    detected: int = 0
    decided: int = 0
    in_person: int = 0
    virtual: int = 0
    waiting: int = 0  # still waiting for the organiser's answer
    cancelled: int = 0
    dropped: int = 0  # taken up, then not ours any more (started before it was decided, ...)

    @property
    def in_person_share(self) -> float | None:
        return self.in_person / self.decided if self.decided else None

    @property
    def virtual_share(self) -> float | None:
        return self.virtual / self.decided if self.decided else None


@dataclass(frozen=True)
class Answering:
    asked: int = 0
    answered: int = 0
    reminded: int = 0
    decided_without_answer: int = 0  # asked, then decided at the deadline on what was known
    waiting: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None
    buckets: tuple[tuple[str, int], ...] = tuple((label, 0) for _, label in ANSWER_BUCKETS)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.asked if self.asked else None


@dataclass(frozen=True)
class Burden:
    """What the assistant asked of the organisers."""

    asked: int = 0  # meetings whose organiser got a question
    median_questions: float | None = None  # per meeting asked
    p90_questions: float | None = None
    median_questions_per_meeting: float | None = None  # a meeting never asked counts 0
    decided: int = 0
    decided_unasked: int = 0  # decided without the organiser ever being asked
    emails: int = 0
    meetings: int = 0

    @property
    def unasked_share(self) -> float | None:
        return self.decided_unasked / self.decided if self.decided else None

    @property
    def emails_per_meeting(self) -> float | None:
        return self.emails / self.meetings if self.meetings else None


@dataclass(frozen=True)
class RowUse:
    """How one checklist row was filled across the decided meetings."""

    number: int
    key: str
    area: str
    asked: int = 0
    answered: int = 0
    inferred: int = 0
    defaulted: int = 0
    unknown: int = 0
    overwritten: int = 0  # organiser answers to this row after the assistant had filled it

    @property
    def label(self) -> str:
        return f"{self.number} {self.key}"


@dataclass(frozen=True)
class GivenBack:
    meetings: int = 0  # virtual meetings still shortened
    minutes: int = 0


@dataclass(frozen=True)
class Overrides:
    format_chosen: int = 0
    chose_in_person: int = 0
    chose_virtual: int = 0
    chose_against_count: int = 0
    rows_overwritten: int = 0
    meetings_with_rows_overwritten: int = 0
    notes_edited: int = 0
    lengths_restored: int = 0


@dataclass(frozen=True)
class TeamReport:
    since: date
    generated_at: datetime
    teams: tuple[str, ...]  # as given; empty: everyone
    unknown_calendars: tuple[str, ...]  # teams given as addresses that no calendar has
    calendars: int  # watched calendars in the report's scope
    meetings: Meetings
    weeks: tuple[Week, ...]
    answering: Answering
    burden: Burden
    rows: tuple[RowUse, ...]
    given_back: GivenBack
    overrides: Overrides
    emails_sent: tuple[tuple[str, int], ...]  # (kind, count), kinds in a fixed order

    @property
    def empty(self) -> bool:
        return self.meetings.detected == 0


def default_since(now: datetime) -> date:
    """The Monday DEFAULT_WEEKS weeks before now's week."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday(), weeks=DEFAULT_WEEKS - 1)


def gather(session: Session, *, since: date, teams: Sequence[str], now: datetime,
           checklist: Checklist | None = None) -> TeamReport:
    """Every figure of the report for teams (domains or calendar addresses; none: everyone)."""
    checklist = checklist or load_checklist()
    teams = tuple(t.strip() for t in teams if t.strip())
    calendars = calendars_named(session, teams)
    unknown = tuple(t for t in teams if "@" in t and t.lower() not in calendars.values())
    scope = scope_of(teams, calendars, since)
    talks = talks_in(session, scope)
    records = decisions_in(session, scope)
    organiser_rows = organiser_rows_in(session, scope)
    counter = _Counter(checklist, since, now)
    for talk in talks:
        counter.add(talk, records.get(talk.id), organiser_rows.get(talk.id, ()))
    watched = set(session.scalars(select(WatchedCalendar.id).where(WatchedCalendar.watched())))
    in_scope = len(watched & set(calendars)) if teams else len(watched)
    emails = emails_sent_in(session, scope, since)
    return TeamReport(
        since=since, generated_at=now, teams=teams, unknown_calendars=unknown,
        calendars=in_scope, meetings=counter.meetings(), weeks=counter.weeks(),
        answering=counter.answering(), burden=counter.burden(sum(n for _, n in emails)),
        rows=counter.rows(), given_back=counter.given_back(), overrides=counter.overrides(),
        emails_sent=emails)


# -- counting ------------------------------------------------------------------------------------


def _monday(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value below which fraction of values lie (linear between ranks), None if none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _Counter:
    def __init__(self, checklist: Checklist, since: date, now: datetime) -> None:
        self.checklist, self.since, self.now = checklist, since, now
        self.keys = {row.number: row.key for row in checklist}
        self.week: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.total: dict[str, int] = defaultdict(int)
        self.row: dict[str, dict[str, int]] = {r.key: defaultdict(int) for r in checklist}
        self.hours: list[float] = []
        self.questions: list[int] = []  # per asked meeting
        self.all_questions: list[int] = []  # per meeting, 0 when never asked

    def add(self, talk: TalkRow, records: Decisions | None, organiser_rows: Iterable[str]) -> None:
        week = self.week[_monday(talk.week_of)]
        week["detected"] += 1
        self.total["detected"] += 1
        self.all_questions.append(len(talk.questions) if talk.asked_at is not None else 0)
        self._state(talk, records, week)
        self._answering(talk, records, week)
        self._overrides(talk, records, tuple(organiser_rows))
        self._given_back(talk, week)

    def _state(self, talk: TalkRow, records: Decisions | None, week: dict[str, int]) -> None:
        if talk.state is State.CANCELLED:
            self.total["cancelled"] += 1
        elif talk.state in _OPEN:
            self.total["waiting"] += 1
        elif talk.state in _DECIDED and records is not None:
            self.total["decided"] += 1
            self.total["decided_unasked"] += talk.asked_at is None
            kind = "in_person" if records.format == Format.IN_PERSON.value else "virtual"
            self.total[kind] += 1
            week[kind] += 1
            asked = {self.keys.get(number) for number in talk.questions}
            for key, counts in self.row.items():
                counts["asked"] += key in asked
            for kind, keys in records.rows.items():
                for key in keys:
                    if key in self.row:
                        self.row[key][kind] += 1
        else:
            self.total["dropped"] += 1

    def _answering(self, talk: TalkRow, records: Decisions | None, week: dict[str, int]) -> None:
        if talk.asked_at is None:
            return
        week["asked"] += 1
        self.total["asked"] += 1
        self.questions.append(len(talk.questions))
        self.total["reminded"] += talk.reminded_at is not None
        answered_at = records.first_answer_at if records else None
        answered_at = answered_at or talk.answered_at
        if answered_at is not None:
            week["answered"] += 1
            self.total["answered"] += 1
            if answered_at >= talk.asked_at:
                self.hours.append((answered_at - talk.asked_at).total_seconds() / 3600)
        elif talk.state in _OPEN:
            self.total["asked_waiting"] += 1
        elif records is not None:
            self.total["without_answer"] += 1

    def _overrides(self, talk: TalkRow, records: Decisions | None,
                   organiser_rows: tuple[str, ...]) -> None:
        if talk.state is State.CANCELLED:
            return
        choice = talk.organiser_choice
        if records is not None and records.decided_by == "organiser_choice" and choice:
            self.total["chosen"] += 1
            self.total["chose_" + choice] += 1
            ahead = records.totals.get("in_person", 0) - records.totals.get("virtual", 0)
            if (ahead > 0 and choice == Format.VIRTUAL.value) or (
                    ahead < 0 and choice == Format.IN_PERSON.value):
                self.total["against_count"] += 1
        asked = {self.keys.get(number) for number in talk.questions}
        filled_before = records.filled_earlier if records else frozenset()
        overwritten = [key for key in organiser_rows if key in self.row and (
            key in filled_before or (talk.asked_at is not None and key not in asked))]
        for key in overwritten:
            self.row[key]["overwritten"] += 1
        self.total["overwritten"] += len(overwritten)
        self.total["overwritten_meetings"] += bool(overwritten)
        self.total["notes_edited"] += talk.left_alone

    def _given_back(self, talk: TalkRow, week: dict[str, int]) -> None:
        mark = talk.mark
        if (talk.state is not State.ANNOTATED or talk.removed or mark is None
                or talk.start is None or talk.end is None):
            return
        now_minutes = int((talk.end - talk.start).total_seconds() // 60)
        minutes_set, before = mark.get("minutes_set"), mark.get("minutes_before")
        if mark.get("length_by_person") or (minutes_set and now_minutes != minutes_set):
            self.total["lengths_restored"] += 1
            return
        if mark.get("format") != Format.VIRTUAL.value or not minutes_set or not before:
            return
        given = max(0, int(before) - now_minutes)
        if given:
            week["shortened"] += 1
            week["minutes_given_back"] += given
            self.total["shortened"] += 1
            self.total["minutes"] += given

    # -- the figures -----------------------------------------------------------------------------

    def meetings(self) -> Meetings:
        t = self.total
        return Meetings(detected=t["detected"], decided=t["decided"], in_person=t["in_person"],
                        virtual=t["virtual"], waiting=t["waiting"], cancelled=t["cancelled"],
                        dropped=t["dropped"])

    def weeks(self) -> tuple[Week, ...]:
        first = self.since - timedelta(days=self.since.weekday())
        last = max([_monday(self.now), *self.week])
        weeks, monday = [], first
        while monday <= last:
            counts = self.week.get(monday, {})
            weeks.append(Week(start=monday, **{k: counts.get(k, 0) for k in (
                "detected", "in_person", "virtual", "asked", "answered", "shortened",
                "minutes_given_back")}))
            monday += timedelta(weeks=1)
        return tuple(weeks)

    def answering(self) -> Answering:
        t, hours = self.total, self.hours
        buckets = []
        lower = 0.0
        for upper, label in ANSWER_BUCKETS:
            buckets.append((label, sum(1 for h in hours if lower <= h < upper)))
            lower = upper
        return Answering(
            asked=t["asked"], answered=t["answered"], reminded=t["reminded"],
            decided_without_answer=t["without_answer"], waiting=t["asked_waiting"],
            median_hours=statistics.median(hours) if hours else None,
            p90_hours=percentile(hours, 0.9), buckets=tuple(buckets))

    def burden(self, emails: int) -> Burden:
        asked = self.questions
        return Burden(asked=len(asked),
                      median_questions=statistics.median(asked) if asked else None,
                      p90_questions=percentile(asked, 0.9),
                      median_questions_per_meeting=(statistics.median(self.all_questions)
                                                    if self.all_questions else None),
                      decided=self.total["decided"],
                      decided_unasked=self.total["decided_unasked"], emails=emails,
                      meetings=self.total["detected"])

    def rows(self) -> tuple[RowUse, ...]:
        return tuple(RowUse(number=row.number, key=row.key, area=row.area, **{
            kind: self.row[row.key].get(kind, 0) for kind in (
                "asked", "answered", "inferred", "defaulted", "unknown", "overwritten")})
            for row in self.checklist)

    def given_back(self) -> GivenBack:
        return GivenBack(meetings=self.total["shortened"], minutes=self.total["minutes"])

    def overrides(self) -> Overrides:
        t = self.total
        return Overrides(
            format_chosen=t["chosen"], chose_in_person=t["chose_in_person"],
            chose_virtual=t["chose_virtual"], chose_against_count=t["against_count"],
            rows_overwritten=t["overwritten"],
            meetings_with_rows_overwritten=t["overwritten_meetings"],
            notes_edited=t["notes_edited"], lengths_restored=t["lengths_restored"])


# -- JSON ----------------------------------------------------------------------------------------


def report_json(report: TeamReport) -> dict[str, Any]:
    """The report as `assistant report --format json` prints it (a stable shape for scripts)."""
    m, a = report.meetings, report.answering
    answers = {k: v for k, v in asdict(a).items() if k not in ("buckets", "median_hours",
                                                               "p90_hours")}
    return {
        "since": report.since.isoformat(),
        "generated_at": report.generated_at.isoformat(),
        "teams": list(report.teams),
        "unknown_calendars": list(report.unknown_calendars),
        "calendars": report.calendars,
        "meetings": {**asdict(m), "in_person_share": _round(m.in_person_share),
                     "virtual_share": _round(m.virtual_share)},
        "weeks": [{"week": w.label, **asdict(w), "start": w.start.isoformat(),
                   "answer_rate": _round(w.answer_rate)} for w in report.weeks],
        "answers": {**answers, "answer_rate": _round(a.answer_rate),
                    "median_hours": _round(a.median_hours, 2),
                    "p90_hours": _round(a.p90_hours, 2), "hours_to_answer": dict(a.buckets)},
        "burden": {**asdict(report.burden), "unasked_share": _round(report.burden.unasked_share),
                   "emails_per_meeting": _round(report.burden.emails_per_meeting, 2)},
        "rows": [asdict(row) for row in report.rows],
        "minutes_given_back": asdict(report.given_back),
        "overrides": asdict(report.overrides),
        "emails_sent": dict(report.emails_sent),
        "definitions": dict(DEFINITIONS),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def hours_words(hours: float | None) -> str:
    """'45 min', '13.0 h', '3.5 days'; '-' for no value."""
    if hours is None:
        return "-"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
