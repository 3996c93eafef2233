"""What organisers told the assistant before, and what it keeps of it.

- Rows that describe the customer (the checklist marks them: its values, where it is, its
  competitors, who holds the power) are remembered per customer domain when an organiser
  answers them, the newest answer replacing the last, and reused for that customer's next
  meetings for `policy.remember_answers_days`. An admin lists and forgets them.
- How organisers answered each row before gives the odds that orders the questions
  (assistant.decisive): the rows likeliest to go the other way are asked first.
Both are read once per transaction, however many meetings a job goes through.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from assistant.checklist import Checklist, Row
from assistant.decisive import AnswerCounts, odds_of_a
from assistant.errors import InputError
from assistant.language import N_
from assistant.language.phrases import Phrase, joined
from assistant.models import Provenance, RowAnswer, Side
from assistant.store.database import in_chunks, insert_or_replace
from assistant.store.tables import (
    Answer,
    AuditEntry,
    Conversation,
    RememberedAnswer,
    SeenMeeting,
)


class AnswerMemory:
    """Remembered answers and answer odds, as one transaction reads them."""

    def __init__(self, session: Session, now: datetime, keep_days: int) -> None:
        self._session, self._now = session, now
        self._keep = timedelta(days=keep_days)
        self._by_domain: dict[str, list[RememberedAnswer]] = {}
        self._everyone: dict[str, AnswerCounts] | None = None
        self._own: dict[str, dict[str, AnswerCounts]] = {}

    @classmethod
    def of_session(cls, session: Session, now: datetime, keep_days: int) -> AnswerMemory:
        memory = session.info.get(cls)
        if memory is None:
            memory = session.info[cls] = cls(session, now, keep_days)
        return memory

    def about(self, domains: Sequence[str]) -> dict[str, RowAnswer]:
        """What is remembered of the customers at these domains, by row; a row remembered
        both ways for two of them is left out (the organiser is better asked)."""
        self._read_domains(domains)
        found: dict[str, list[RememberedAnswer]] = defaultdict(list)
        for domain in domains:
            for row in self._by_domain.get(domain.lower(), []):
                found[row.row_key].append(row)
        return {key: RowAnswer(Side(rows[0].side), Provenance.REMEMBERED,
                               joined("; ", (_why(row) for row in rows)))
                for key, rows in found.items() if len({row.side for row in rows}) == 1}

    def odds(self, organiser: str) -> dict[str, float]:
        """Each row's chance of an A from this organiser, from everyone's answers and theirs."""
        if self._everyone is None:
            self._everyone = _counts(self._session, None)
        organiser = organiser.lower()
        if organiser not in self._own:
            self._own[organiser] = _counts(self._session, organiser)
        return odds_of_a(self._own[organiser], self._everyone)

    def _read_domains(self, domains: Iterable[str]) -> None:
        missing = sorted({domain.lower() for domain in domains} - self._by_domain.keys())
        if not missing or not self._keep:
            return
        for chunk in in_chunks(missing):
            for domain in chunk:
                self._by_domain[domain] = []
            for row in self._session.scalars(select(RememberedAnswer).where(
                    RememberedAnswer.domain.in_(chunk),
                    RememberedAnswer.answered_at > self._now - self._keep)):
                self._by_domain[row.domain].append(row)


def remember(session: Session, checklist: Checklist, talk: Conversation,
             answers: Mapping[str, Side], now: datetime) -> None:
    """Keep the organiser's answers to rows that describe the customer, per customer domain."""
    for key, side in answers.items():
        if not checklist.row(key).describes_customer:
            continue
        for domain in talk.customer_domains:
            insert_or_replace(session, RememberedAnswer, {
                "domain": str(domain).lower(), "row_key": key, "side": side.value,
                "organiser": talk.meeting.organiser, "answered_at": now,
                "conversation_id": talk.id}, unique=("domain", "row_key"))


@dataclass(frozen=True)
class Remembered:
    """One remembered answer, as an admin reads it."""

    domain: str
    row: Row
    side: Side
    organiser: str
    answered_at: datetime
    used_until: datetime

    @property
    def wording(self) -> str:
        return self.row.wording(self.side)


def remembered(session: Session, checklist: Checklist, keep_days: int,
               domain: str | None = None) -> list[Remembered]:
    """Every remembered answer (of one domain), by domain and row, with until when it is
    used; answers to rows the checklist no longer has are left out."""
    statement = select(RememberedAnswer).order_by(RememberedAnswer.domain,
                                                  RememberedAnswer.row_key)
    if domain is not None:
        statement = statement.where(RememberedAnswer.domain == domain.lower())
    keys = {row.key for row in checklist}
    return [Remembered(answer.domain, checklist.row(answer.row_key), Side(answer.side),
                       answer.organiser, answer.answered_at,
                       answer.answered_at + timedelta(days=keep_days))
            for answer in session.scalars(statement) if answer.row_key in keys]


def customer_domain(text: str) -> str:
    """A customer domain as an admin typed it, lower-cased; InputError if it is none."""
    domain = text.strip().lower()
    if not 3 <= len(domain) <= 255 or "." not in domain or "@" in domain or " " in domain:
        raise InputError(f"{text!r} is not a customer domain, such as acme.com")
    return domain


def forget(session: Session, domain: str, row_key: str | None = None, *, actor: str,
           now: datetime) -> int:
    """Forget what is remembered of domain (one row's answer only, with row_key), in the
    audit log as actor's doing; how many answers were forgotten."""
    statement = delete(RememberedAnswer).where(RememberedAnswer.domain == domain.lower())
    if row_key is not None:
        statement = statement.where(RememberedAnswer.row_key == row_key)
    forgotten = session.execute(statement).rowcount or 0
    if forgotten:
        which = f"row {row_key}" if row_key else f"{forgotten} row(s)"
        session.add(AuditEntry(at=now, calendar="", action="answers_forgotten",
                               detail=f"{actor} forgot what organisers said of "
                                      f"{domain.lower()}: {which}"))
    return forgotten


def _why(row: RememberedAnswer) -> Phrase:
    return Phrase(N_("{organiser}'s answer of {day} for {domain}"), organiser=row.organiser,
                  day=row.answered_at.date(), domain=row.domain)


def _counts(session: Session, organiser: str | None) -> dict[str, AnswerCounts]:
    """How often each row was answered A and B by organisers (by this one, when named)."""
    statement = (select(Answer.row_key, Answer.side, func.count())
                 .where(Answer.provenance == Provenance.ORGANISER.value)
                 .group_by(Answer.row_key, Answer.side))
    if organiser is not None:
        statement = (statement.join(Conversation, Conversation.id == Answer.conversation_id)
                     .join(SeenMeeting, SeenMeeting.id == Conversation.meeting_id)
                     .where(SeenMeeting.organiser == organiser))
    counted: dict[str, AnswerCounts] = {}
    for key, side, count in session.execute(statement):
        before = counted.get(key, AnswerCounts())
        counted[key] = (AnswerCounts(before.a + count, before.b) if side == Side.A.value
                        else AnswerCounts(before.a, before.b + count))
    return counted
