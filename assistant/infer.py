"""What the calendar already tells about the checklist, so the email asks only the rest.

Each inferred row carries a one-line why that the organiser sees and may overwrite. When two
signals for one row disagree (a "weekly pitch"), the row is left to the organiser: asking one
more question is better than guessing. The whys are Phrases, said in the organiser's language
where an email shows them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from assistant.checklist import Checklist
from assistant.config import Config
from assistant.detect import CustomerMeetingDetector, Detection, contains_words
from assistant.language import N_, Nn_
from assistant.language.phrases import Phrase, joined
from assistant.models import HardFacts, Meeting, Provenance, RowAnswer, Side

SOON = timedelta(days=3)  # a meeting this close is about timing (row 2 B)
BUSY_WINDOW = timedelta(days=14)  # "the surrounding weeks" for row 3, either side
MANY_CUSTOMER_MEETINGS = 10  # at least this many others in the window: efficiency (row 3 B)
FEW_CUSTOMER_MEETINGS = 2  # at most this many others: effectiveness (row 3 A)
# Organisations are counted by email domain: globex.com and globex.de count as two, which
# errs towards "dispersed"; the organiser sees the why and can overwrite it.
FEW_STAKEHOLDERS = 3  # one domain, at most this many people: one room (row 4 A)
MANY_STAKEHOLDERS = 5  # this many people, or several domains: dispersed (row 4 B)
WELL_KNOWN = 6  # met this often before: rapport exists (row 7 B)
_URL = re.compile(r"\S+://\S+")
VIDEO_HOSTS = ("zoom.us", "teams.microsoft.com", "meet.google.com", "webex.com", "whereby.com")


@dataclass(frozen=True)
class _Signal:
    side: Side
    why: Phrase
    provenance: Provenance = Provenance.INFERRED


@dataclass(frozen=True)
class Inference:
    """Rows answered without asking, and hard facts known from config.

    answers holds both what the calendar tells and the facts an admin set per customer
    (configured), which win over the calendar where both speak of a row.
    """

    answers: dict[str, RowAnswer] = field(default_factory=dict)
    hard: HardFacts = HardFacts()
    configured: frozenset[str] = frozenset()  # keys of the rows set from config


class Inferrer:
    def __init__(self, checklist: Checklist, config: Config, detector: CustomerMeetingDetector):
        self.checklist = checklist
        self.config = config
        self.detector = detector

    def infer(
        self,
        meeting: Meeting,
        detection: Detection,
        history: Sequence[Meeting] | None,
        now: datetime,
    ) -> Inference:
        """Infer what the meeting and, when given, the organiser's history tell.

        history=None means the history is unknown (nothing is inferred from it); an empty
        list means the organiser has no earlier meetings at all.
        """
        span = meeting.timed_span
        if span is None:
            return Inference()  # all-day events are not meetings; there is nothing to infer
        start = span[0]
        signals: dict[str, list[_Signal]] = {row.key: [] for row in self.checklist}
        self._from_title(meeting, signals)
        if meeting.is_recurring:
            signals["importance"].append(
                _Signal(Side.B, Phrase(N_("it is part of a recurring series"))))
        self._from_timing(start, now, signals)
        self._from_attendees(detection, signals)
        self._from_place(meeting, signals)
        if history is not None:
            self._from_history(meeting.event_id, start, detection, history, signals)
        configured: dict[str, list[_Signal]] = {row.key: [] for row in self.checklist}
        self._from_customer_facts(detection, configured)
        facts = _agreed(configured)
        return Inference(answers={**_agreed(signals), **facts}, hard=self._hard_facts(detection),
                         configured=frozenset(facts))

    def _from_title(self, meeting: Meeting, signals: dict[str, list[_Signal]]) -> None:
        for row in self.checklist:
            for side in Side:
                for word in row.title_words(side):
                    if contains_words(meeting.title, word):
                        signals[row.key].append(
                            _Signal(side, Phrase(N_("the title says '{word}'"), word=word)))
                        break

    def _from_timing(self, start: datetime, now: datetime, signals) -> None:
        lead = start - now
        if timedelta(0) <= lead < SOON:
            why = Phrase(N_("it starts in {span}"), span=_span(lead))
            signals["priorities"].append(_Signal(Side.B, why))

    def _from_attendees(self, detection: Detection, signals) -> None:
        people = len(detection.customers)
        organisations = len(detection.customer_domains)
        if organisations > 1 or people >= MANY_STAKEHOLDERS:
            why = Phrase(N_("{people} from {domains}"),
                         people=Phrase(*Nn_("{count} person", "{count} people"), count=people),
                         domains=Phrase(*Nn_("{count} domain", "{count} domains"),
                                        count=organisations))
            signals["stakeholders"].append(_Signal(Side.B, why))
        elif 0 < people <= FEW_STAKEHOLDERS:
            why = (Phrase(N_("one person from outside")) if people == 1 else
                   Phrase(*Nn_("{count} person from one domain",
                               "{count} people from one domain"), count=people))
            signals["stakeholders"].append(_Signal(Side.A, why))

    def _from_place(self, meeting: Meeting, signals) -> None:
        # Only the location field counts: Google and Outlook attach a video link to most
        # meetings on their own, so conference data says nothing about where people are.
        location = meeting.location.strip()
        online = _is_video_location(location)
        physical = meeting.has_physical_address or _looks_like_address(location)
        if physical and not online:
            why = Phrase(N_("it is at an address: {location}"), location=location)
            signals["location"].append(_Signal(Side.A, why))
        elif online and not physical:
            signals["location"].append(
                _Signal(Side.B, Phrase(N_("the location is a video call"))))

    def _from_customer_facts(self, detection: Detection, signals) -> None:
        for domain in detection.customer_domains:
            facts = self.config.customer(domain)
            if facts is None:
                continue
            name = facts.name or domain
            if facts.values is not None:
                side = Side.A if facts.values == "in_person" else Side.B
                why = Phrase(N_("{customer} values meeting in person") if side is Side.A
                             else N_("{customer} values meeting virtually"), customer=name)
                signals["values"].append(_Signal(side, why, Provenance.DEFAULT))
            if facts.competitors_active is not None:
                side = Side.A if facts.competitors_active else Side.B
                why = Phrase(N_("competitors are active at {customer}") if side is Side.A
                             else N_("competitors are not active at {customer}"), customer=name)
                signals["stability"].append(_Signal(side, why, Provenance.DEFAULT))
            if facts.power is not None:
                side = Side.A if facts.power == "balanced" else Side.B
                why = Phrase(N_("power is balanced with {customer}") if side is Side.A
                             else N_("power lies with {customer}"), customer=name)
                signals["power"].append(_Signal(side, why, Provenance.DEFAULT))

    def _from_history(
        self,
        event_id: str,
        start: datetime,
        detection: Detection,
        history: Sequence[Meeting],
        signals,
    ) -> None:
        others = [
            (span[0], m)
            for m in history
            if m.event_id != event_id and (span := m.timed_span) is not None
        ]
        customer_starts = [s for s, m in others if self.detector.detect(m).is_customer_meeting]
        nearby = [s for s in customer_starts if abs(s - start) <= BUSY_WINDOW]
        if len(nearby) >= MANY_CUSTOMER_MEETINGS:
            why = Phrase(*Nn_("{count} other customer meeting within two weeks",
                              "{count} other customer meetings within two weeks"),
                         count=len(nearby))
            signals["number"].append(_Signal(Side.B, why))
        elif len(nearby) <= FEW_CUSTOMER_MEETINGS:
            why = (Phrase(*Nn_("only {count} other customer meeting within two weeks",
                               "only {count} other customer meetings within two weeks"),
                          count=len(nearby))
                   if nearby else Phrase(N_("no other customer meeting within two weeks")))
            signals["number"].append(_Signal(Side.A, why))

        earlier = [m for s, m in others if s < start and not m.cancelled]
        met_before = {
            domain: sum(1 for m in earlier if _has_attendee_from(m, domain))
            for domain in detection.customer_domains
        }
        new = [domain for domain, count in met_before.items() if count == 0]
        if new:
            why = Phrase(N_("first meeting with {domains}"), domains=", ".join(new))
            signals["importance"].append(_Signal(Side.A, why))
            signals["rapport"].append(_Signal(Side.A, why))
        elif met_before and min(met_before.values()) >= WELL_KNOWN:
            why = Phrase(*Nn_("met {count}+ time before", "met {count}+ times before"),
                         count=min(met_before.values()))
            signals["rapport"].append(_Signal(Side.B, why))

    def _hard_facts(self, detection: Detection) -> HardFacts:
        if self.config.policy.travel == "not_allowed":
            return HardFacts(travel_ruled_out=self.config.policy.travel_note)
        for domain in detection.customer_domains:
            facts = self.config.customer(domain)
            if facts is not None and facts.travel == "not_allowed":
                why = Phrase(N_("{customer}'s travel policy"), customer=facts.name or domain)
                return HardFacts(travel_ruled_out=why)
        return HardFacts()


def _agreed(signals: dict[str, list[_Signal]]) -> dict[str, RowAnswer]:
    """The rows whose signals all point one way; a row with signals both ways is left open."""
    answers = {}
    for key, found in signals.items():
        if found and len({signal.side for signal in found}) == 1:
            answers[key] = RowAnswer(found[0].side, found[0].provenance,
                                     joined("; ", (s.why for s in found)))
    return answers


def _has_attendee_from(meeting: Meeting, domain: str) -> bool:
    return any(attendee.person.domain == domain for attendee in meeting.attendees)


def _is_video_location(location: str) -> bool:
    lowered = location.lower()
    return any(host in lowered for host in VIDEO_HOSTS) or "teams meeting" in lowered


def _looks_like_address(location: str) -> bool:
    """A street address has a house or postal number and parts separated by commas."""
    place = _URL.sub("", location)
    return any(ch.isdigit() for ch in place) and "," in place


def _span(delta: timedelta) -> Phrase:
    hours = int(delta.total_seconds() // 3600)
    if hours < 48:
        return Phrase(*Nn_("{count} hour", "{count} hours"), count=hours)
    return Phrase(*Nn_("{count} day", "{count} days"), count=delta.days)
