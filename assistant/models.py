"""Provider-neutral values the core works with: meetings, answers and recommendations.

Everything here is a frozen dataclass: a meeting read from Google and the same meeting read
from Microsoft compare equal, and nothing downstream can change what a reader produced.
Times are timezone-aware datetimes; an all-day event carries plain dates instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from assistant.language import N_


class Provider(enum.StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"


class Format(enum.StrEnum):
    IN_PERSON = "in_person"
    VIRTUAL = "virtual"

    @property
    def words(self) -> str:
        """The format in English words; a Voice's gettext(words) in the reader's own."""
        return N_("in person") if self is Format.IN_PERSON else N_("virtual")

    @property
    def other(self) -> Format:
        return Format.VIRTUAL if self is Format.IN_PERSON else Format.IN_PERSON

    @property
    def favoured_side(self) -> Side:
        """The checklist side that favours this format."""
        return Side.A if self is Format.IN_PERSON else Side.B


class Side(enum.StrEnum):
    """A checklist row's two sides: A favours meeting in person, B favours meeting virtually."""

    A = "A"
    B = "B"

    @property
    def favours(self) -> Format:
        return Format.IN_PERSON if self is Side.A else Format.VIRTUAL


class Provenance(enum.StrEnum):
    """Who gave a row its answer; shown to the organiser so inferred rows can be overwritten."""

    ORGANISER = "organiser"
    INFERRED = "inferred"  # read from the meeting or the organiser's calendar
    DEFAULT = "default"  # an admin's standing setting in config, e.g. a customer's values
    REMEMBERED = "remembered"  # an organiser's earlier answer about the same customer


class Response(enum.StrEnum):
    """An attendee's reply to the invitation, in words both providers map onto."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    NEEDS_ACTION = "needs_action"


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        """The lower-cased part after the last '@', or '' for an address without one."""
        _, at, domain = self.email.rpartition("@")
        return domain.lower() if at else ""


@dataclass(frozen=True)
class Attendee:
    person: Person
    response: Response = Response.NEEDS_ACTION
    optional: bool = False
    is_resource: bool = False  # a room or piece of equipment, never a customer


@dataclass(frozen=True)
class AssistantMark:
    """What the assistant last wrote to an event, kept on the event itself.

    Providers store it next to the event (Google: extendedProperties.private; Microsoft: an
    extended property), so that a later run can tell its own change from a person's undo.
    """

    format: Format
    block_hash: str  # digest of the block's visible text as written (see assistant.edits)
    minutes_set: int | None = None  # the length the assistant gave the meeting, if it changed it
    minutes_before: int | None = None  # the length before the assistant shortened it
    length_by_person: bool = False  # a person chose the length after us: never change it again
    video_link_added: bool = False


@dataclass(frozen=True)
class Meeting:
    """One calendar event, as far as the assistant needs to know it."""

    provider: Provider
    event_id: str
    title: str
    organizer: Person
    attendees: tuple[Attendee, ...]
    start: datetime | date
    end: datetime | date
    time_zone: str = ""
    location: str = ""
    has_physical_address: bool = False  # the provider said the location is a postal address
    description: str = ""
    description_is_html: bool = False
    video_link: str = ""
    cancelled: bool = False
    series_id: str = ""  # the recurring series this event is part of, or is the master of
    etag: str = ""
    organizer_is_owner: bool = False  # the calendar it was read from belongs to the organiser
    mark: AssistantMark | None = None

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    @property
    def timed_span(self) -> tuple[datetime, datetime] | None:
        """(start, end) of a meeting at set times; None for an all-day event."""
        if isinstance(self.start, datetime) and isinstance(self.end, datetime):
            return self.start, self.end
        return None

    @property
    def is_recurring(self) -> bool:
        return bool(self.series_id)


@dataclass(frozen=True)
class EventRemoved:
    """A provider reported that an event is gone (deleted, or cancelled by its organiser)."""

    provider: Provider
    event_id: str
    series_id: str = ""


@dataclass(frozen=True)
class RowAnswer:
    """One checklist row's answer: a side, or None when nobody knows, and where it came from."""

    side: Side | None
    provenance: Provenance
    why: str = ""  # often a Phrase (assistant.language.phrases), said in the reader's language


@dataclass(frozen=True)
class HardFacts:
    """The reasons that beat the count, in the order the checklist ranks them."""

    organiser_choice: Format | None = None
    on_site_equipment: bool = False
    travel_ruled_out: str = ""  # why travel is impossible (a policy), or '' when it is allowed


class DecidedBy(enum.StrEnum):
    ORGANISER_CHOICE = "organiser_choice"
    ON_SITE_EQUIPMENT = "on_site_equipment"
    TRAVEL_POLICY = "travel_policy"
    COUNT = "count"
    TIE_BREAK = "tie_break"

    @property
    def is_hard(self) -> bool:
        """Decided by a fact no checklist row can outweigh."""
        return self not in (DecidedBy.COUNT, DecidedBy.TIE_BREAK)


@dataclass(frozen=True)
class Totals:
    in_person: int
    virtual: int


@dataclass(frozen=True)
class Recommendation:
    """The format to use, why, and how much of the checklist the decision rests on."""

    format: Format
    totals: Totals
    decided_by: DecidedBy
    # Both as Phrases (assistant.language.phrases) when scored: English as str, any language
    # through a Voice; plain English as earlier versions recorded them.
    reasons: tuple[str, ...]
    invite_reasons: tuple[str, ...]  # the reasons fit to show customers in the invite
    answered: tuple[str, ...] = field(default=())  # row keys the organiser answered
    inferred: tuple[str, ...] = field(default=())  # row keys read from the calendar
    defaulted: tuple[str, ...] = field(default=())  # row keys an admin set in config
    remembered: tuple[str, ...] = field(default=())  # row keys from earlier answers
    unknown: tuple[str, ...] = field(default=())  # row keys counted for neither side
