"""Is this a customer meeting? Organiser inside the organisation, someone from outside invited.

The answer always says why, naming the domains involved, because an admin who wonders why a
meeting was (or was not) touched should find the reason in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.config import Detection as DetectionRules
from assistant.config import in_domains
from assistant.models import Attendee, Meeting


@dataclass(frozen=True)
class Detection:
    is_customer_meeting: bool
    why: str
    customer_domains: tuple[str, ...] = ()
    customers: tuple[Attendee, ...] = ()


class CustomerMeetingDetector:
    """Applies an organisation's domains and detection rules to meetings."""

    def __init__(self, organisation_domains: list[str], rules: DetectionRules) -> None:
        self.organisation_domains = list(organisation_domains)
        self.rules = rules

    def is_internal(self, domain: str) -> bool:
        return in_domains(domain, self.organisation_domains)

    def detect(self, meeting: Meeting) -> Detection:
        if meeting.cancelled:
            return Detection(False, "the meeting is cancelled")
        if meeting.all_day:
            return Detection(False, "all-day events are not meetings")
        organiser_domain = meeting.organizer.domain
        if not self.is_internal(organiser_domain):
            return Detection(
                False,
                f"the organiser's domain {organiser_domain or '(none)'} is outside the "
                f"organisation ({', '.join(self.organisation_domains)})",
            )
        title_problem = self._title_problem(meeting.title)
        if title_problem:
            return Detection(False, title_problem)
        customers = self.customer_attendees(meeting)
        if not customers:
            return Detection(False, self._no_customer_reason(meeting))
        domains = tuple(sorted({attendee.person.domain for attendee in customers}))
        return Detection(
            True,
            f"organised from {organiser_domain}, with attendees from {', '.join(domains)}",
            customer_domains=domains,
            customers=customers,
        )

    def customer_attendees(self, meeting: Meeting) -> tuple[Attendee, ...]:
        """The invited people (not rooms, not ignored domains) from outside the organisation.

        Each address counts once, however often a provider lists it.
        """
        customers: dict[str, Attendee] = {}
        for attendee in meeting.attendees:
            if not attendee.is_resource and self._is_customer_domain(attendee.person.domain):
                customers.setdefault(attendee.person.email.lower(), attendee)
        return tuple(customers.values())

    def _is_customer_domain(self, domain: str) -> bool:
        if not domain or self.is_internal(domain):
            return False
        if in_domains(domain, self.rules.ignore_domains):
            return False
        allowed = self.rules.customer_domains
        return not allowed or in_domains(domain, allowed)

    def _title_problem(self, title: str) -> str:
        rules = self.rules
        excluded = [word for word in rules.exclude_title_keywords if contains_words(title, word)]
        if excluded:
            return f"the title contains the excluded keyword {excluded[0]!r}"
        included = self.rules.include_title_keywords
        if included and not any(contains_words(title, word) for word in included):
            return f"the title contains none of the keywords {', '.join(map(repr, included))}"
        return ""

    def _no_customer_reason(self, meeting: Meeting) -> str:
        outside = sorted(
            {
                attendee.person.domain
                for attendee in meeting.attendees
                if attendee.person.domain and not self.is_internal(attendee.person.domain)
            }
        )
        if not outside:
            return "every attendee is inside the organisation"
        return (
            f"no attendee counts as a customer: {', '.join(outside)} "
            "are rooms, ignored domains or not on the customer allow list"
        )


def contains_words(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive match; hyphens and spaces inside the phrase are alike."""
    parts = [re.escape(part) for part in re.split(r"[\s-]+", phrase.strip()) if part]
    if not parts:
        return False
    pattern = r"(?<!\w)" + r"[\s-]*".join(parts) + r"(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None
