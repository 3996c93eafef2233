"""Changes after the fact, end to end: people move, cancel, re-invite, undo and reply oddly.

Each test books meetings in the calendar emulators as a person would, runs the real service
cycle by cycle (real SMTP into the mail sink, SQLite and PostgreSQL), changes something after
the assistant acted, and checks what people would see: the event, the mail, the state.

A cycle here first marks every watched calendar due, as a push notification would, so that a
change made between two cycles is always synced by the second one. Where a test needs time to
pass (reminders, deadlines) it moves the service's clock, never the emulators'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import select

from assistant import block
from assistant.models import Provider
from assistant.store.tables import (
    Conversation,
    HandledReply,
    Outbox,
    RecommendationRecord,
    SeenMeeting,
    State,
    WatchedCalendar,
)
from integrations.sandbox.environment import SandboxEnvironment
from tests.end_to_end.conftest import ALICE, BOB, Running, book_google, book_outlook, soon

CUSTOMER = "erin@northwind.example"
COLLEAGUE = "carol@example.com"
STRANGER = "mallory@elsewhere.example"
AGENDA = "Agenda: pricing and next steps."
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


# -- a person in their own calendar, on Google or on Outlook ---------------------------------------


@dataclass
class Organiser:
    """An organiser who books and edits meetings by hand, in Google or Outlook."""

    sandbox: SandboxEnvironment
    provider: Provider

    @property
    def address(self) -> str:
        return ALICE if self.provider is Provider.GOOGLE else BOB

    @property
    def _calendar(self):
        return self.sandbox.google if self.provider is Provider.GOOGLE else self.sandbox.graph

    def book(self, title: str, *, start: datetime | None = None, minutes: int = 60,
             guests: Iterable[str] = (CUSTOMER,), agenda: str = AGENDA) -> str:
        if self.provider is Provider.GOOGLE:
            event = book_google(self.sandbox, title, start=start, minutes=minutes,
                                guests=tuple(guests), description=agenda)
        else:
            event = book_outlook(self.sandbox, title, start=start, minutes=minutes,
                                 guests=tuple(guests),
                                 body={"contentType": "html", "content": f"<p>{agenda}</p>"})
        return event["id"]

    def event(self, event_id: str) -> dict:
        return self._calendar.event(self.address, event_id)

    def span(self, event_id: str) -> tuple[datetime, datetime]:
        event = self.event(event_id)
        return _moment(event["start"]), _moment(event["end"])

    def minutes(self, event_id: str) -> int:
        start, end = self.span(event_id)
        return int((end - start).total_seconds() // 60)

    def description(self, event_id: str) -> str:
        event = self.event(event_id)
        if self.provider is Provider.GOOGLE:
            return event.get("description", "")
        return event["body"]["content"]

    def etag(self, event_id: str) -> str:
        event = self.event(event_id)
        return event["etag"] if self.provider is Provider.GOOGLE else event["@odata.etag"]

    def move(self, event_id: str, by: timedelta) -> None:
        self._calendar.move_event(self.address, event_id, by)

    def cancel(self, event_id: str) -> None:
        self._calendar.cancel_event(self.address, event_id)

    def set_end(self, event_id: str, end: datetime) -> None:
        self._calendar.edit_event(self.address, event_id, end=_when(self.provider, end))

    def set_description(self, event_id: str, text: str) -> None:
        if self.provider is Provider.GOOGLE:
            self._calendar.edit_event(self.address, event_id, description=text)
        else:
            self._calendar.edit_event(self.address, event_id,
                                      body={"contentType": "html", "content": text})

    def invite(self, event_id: str, guests: Iterable[str]) -> None:
        """The guest list becomes guests (the organiser's own entry kept on Google)."""
        if self.provider is Provider.GOOGLE:
            attendees = [{"email": ALICE}, *({"email": guest} for guest in guests)]
        else:
            attendees = [{"emailAddress": {"address": guest}, "type": "required"}
                         for guest in guests]
        self._calendar.edit_event(self.address, event_id, attendees=attendees)


def _moment(when: dict) -> datetime:
    """An event time as Google (RFC 3339 with offset) or Graph (UTC, 7 decimals) gives it."""
    moment = datetime.fromisoformat(when["dateTime"])
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(provider: Provider, moment: datetime) -> dict:
    if provider is Provider.GOOGLE:
        return {"dateTime": moment.isoformat(), "timeZone": "Europe/Berlin"}
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": utc.isoformat(), "timeZone": "UTC"}


@pytest.fixture(params=[Provider.GOOGLE, Provider.MICROSOFT], ids=["google", "outlook"])
def organiser(request, sandbox) -> Organiser:
    return Organiser(sandbox, request.param)


@pytest.fixture()
def alice(sandbox) -> Organiser:
    return Organiser(sandbox, Provider.GOOGLE)


@pytest.fixture()
def bob(sandbox) -> Organiser:
    return Organiser(sandbox, Provider.MICROSOFT)


# -- driving the service ---------------------------------------------------------------------------


def run_cycle(running: Running, times: int = 1) -> None:
    """Full cycles, each syncing every calendar now (as after a push notification)."""
    for _ in range(times):
        running.service.sync_soon(Provider.GOOGLE, ALICE)
        running.service.sync_soon(Provider.MICROSOFT, BOB)
        running.service.cycle()


def set_clock(running: Running, moment: datetime) -> None:
    """From now on the service lives at moment, and time goes on from there."""
    offset = moment - datetime.now(UTC)
    running.service.clock = lambda: datetime.now(UTC) + offset


def answer(running: Running, question: EmailMessage, text: str, *,
           sender: str | None = None, written: datetime | None = None) -> EmailMessage:
    """A reply to question (from its recipient unless sender says otherwise) in the inbox."""
    reply = EmailMessage()
    reply["From"] = sender or question["To"]
    reply["To"] = question["Reply-To"]
    reply["Subject"] = "Re: " + question["Subject"]
    reply["In-Reply-To"] = question["Message-ID"]
    reply["Message-ID"] = make_msgid(domain="example.com")
    if written is not None:
        reply["Date"] = format_datetime(written)
    reply.set_content(text + "\n\nSent from my phone\n")
    running.inbox.receive(reply)
    return reply


def annotated_virtual(running: Running, sandbox: SandboxEnvironment, organiser: Organiser,
                      event_id: str) -> None:
    """Ask, answer "virtual" and annotate: the meeting ends up 50 minutes long with a note."""
    run_cycle(running)
    [question] = of_kind(sandbox, organiser.address, "question")
    answer(running, question, "virtual")
    run_cycle(running)
    assert talk(running, event_id).state == State.ANNOTATED
    assert organiser.minutes(event_id) == 50 and notes_in(organiser.description(event_id)) == 1


# -- what came out ---------------------------------------------------------------------------------


def kind_of(mail: EmailMessage) -> str:
    """Which of the assistant's emails this is, by its subject (see assistant/emails.py)."""
    subject = mail["Subject"]
    if subject.startswith("Reminder: "):
        return "reminder"
    if subject.startswith("Re: "):
        return "clarification"
    if "in person or virtual?" in subject:
        return "question"
    return "confirmation"


def kinds(sandbox: SandboxEnvironment, address: str, title: str = "") -> list[str]:
    """The kinds of email address got, in order; only those about title when given."""
    return [kind_of(m) for m in sandbox.mail.to(address) if title in m["Subject"]]


def of_kind(sandbox: SandboxEnvironment, address: str, kind: str) -> list[EmailMessage]:
    return [m for m in sandbox.mail.to(address) if kind_of(m) == kind]


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()


def notes_in(description: str) -> int:
    """How many of the assistant's notes a description holds (its visible start line)."""
    return description.count(block.TEXT_START)


def assert_each_email_once(sandbox: SandboxEnvironment) -> None:
    """No email went twice, and none needed a second SMTP attempt."""
    # The sink keeps one copy per Message-ID, as mailboxes do: count the SMTP deliveries.
    assert [mid for mid, count in sandbox.mail.delivered.items() if count > 1] == []
    assert sandbox.mail.deliveries == len(sandbox.mail.messages)


# -- what the store says ---------------------------------------------------------------------------


def talk(running: Running, event_id: str) -> Conversation:
    """The conversation about an event, read now (its columns only)."""
    with running.service.store.transaction() as session:
        return session.scalars(select(Conversation).join(SeenMeeting)
                               .where(SeenMeeting.event_id == event_id)).one()


def outbox(running: Running, event_id: str) -> list[tuple[str, str]]:
    """(email kind or "annotate", state) of every effect queued for an event, in order."""
    with running.service.store.transaction() as session:
        rows = session.scalars(select(Outbox).join(Conversation).join(SeenMeeting)
                               .where(SeenMeeting.event_id == event_id).order_by(Outbox.id))
        return [(row.email_kind or row.kind, row.state) for row in rows]


def handled_replies(running: Running) -> dict[str, str]:
    with running.service.store.transaction() as session:
        return {row.message_key: row.outcome for row in session.scalars(select(HandledReply))}


def recommendations(running: Running, event_id: str) -> list[RecommendationRecord]:
    conversation_id = talk(running, event_id).id
    with running.service.store.transaction() as session:
        return list(session.scalars(select(RecommendationRecord).where(
            RecommendationRecord.conversation_id == conversation_id)))


# -- 1, 2: moved meetings --------------------------------------------------------------------------


def test_a_meeting_moved_after_annotation_keeps_its_answers_note_and_length(
        running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    annotated_virtual(running, sandbox, organiser, event_id)
    start_before, _ = organiser.span(event_id)

    organiser.move(event_id, DAY)
    run_cycle(running, times=2)

    start, end = organiser.span(event_id)
    assert start == start_before + DAY
    assert end - start == timedelta(minutes=50)
    description = organiser.description(event_id)
    assert notes_in(description) == 1 and "cameras on" in description
    assert AGENDA in description
    assert talk(running, event_id).organiser_choice == "virtual"
    assert kinds(sandbox, organiser.address) == ["question", "confirmation"]
    settled = organiser.etag(event_id)
    run_cycle(running)
    assert organiser.etag(event_id) == settled  # our own write does not echo
    assert_each_email_once(sandbox)


def test_a_meeting_moved_while_its_question_is_open_moves_its_deadline(
        running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind", start=soon(days=3))
    run_cycle(running)
    assert kinds(sandbox, organiser.address) == ["question"]

    organiser.move(event_id, 2 * DAY)
    run_cycle(running, times=2)

    moved_start, _ = organiser.span(event_id)
    conversation = talk(running, event_id)
    assert conversation.state == State.ASKED
    assert conversation.deadline_at == moved_start - 24 * HOUR
    assert kinds(sandbox, organiser.address) == ["question"]

    [question] = of_kind(sandbox, organiser.address, "question")
    answer(running, question, "virtual")
    run_cycle(running)
    start, end = organiser.span(event_id)
    assert start == moved_start and end - start == timedelta(minutes=50)
    assert kinds(sandbox, organiser.address) == ["question", "confirmation"]
    assert_each_email_once(sandbox)


def test_a_meeting_moved_inside_its_deadline_is_decided_without_waiting(running, sandbox, alice):
    start = soon(days=3)
    event_id = alice.book("Pitch to Northwind", start=start)
    run_cycle(running)
    assert kinds(sandbox, ALICE) == ["question"]

    alice.move(event_id, datetime.now(UTC) + 20 * HOUR - start)  # now 20 hours ahead
    run_cycle(running)

    conversation = talk(running, event_id)
    assert conversation.state == State.ANNOTATED
    assert conversation.deadline_at == alice.span(event_id)[0] - 24 * HOUR
    assert [r.without_answer for r in recommendations(running, event_id)] == [True]
    assert notes_in(alice.description(event_id)) == 1
    [confirmation] = of_kind(sandbox, ALICE, "confirmation")
    assert "No answer came" in text_of(confirmation)
    assert kinds(sandbox, ALICE) == ["question", "confirmation"]
    assert_each_email_once(sandbox)


# -- 3: who is invited changes ---------------------------------------------------------------------


def test_an_internal_meeting_that_gains_a_customer_is_asked_about_once(
        running, sandbox, organiser):
    event_id = organiser.book("Roadmap review", guests=[COLLEAGUE])
    run_cycle(running)
    assert sandbox.mail.messages == []
    assert talk(running, event_id).state == State.SKIPPED

    organiser.invite(event_id, [COLLEAGUE, CUSTOMER])
    run_cycle(running, times=3)

    conversation = talk(running, event_id)
    assert conversation.state == State.ASKED
    assert conversation.customer_domains == ["northwind.example"]
    assert kinds(sandbox, organiser.address) == ["question"]
    assert sandbox.mail.messages[0]["To"] == organiser.address
    assert_each_email_once(sandbox)


def test_a_customer_meeting_that_loses_its_customer_is_dropped_and_never_chased(
        running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    alice.invite(event_id, [COLLEAGUE])
    run_cycle(running)
    assert talk(running, event_id).state == State.SKIPPED

    set_clock(running, alice.span(event_id)[0] - 23 * HOUR)  # past reminder and deadline
    run_cycle(running, times=2)
    assert kinds(sandbox, ALICE) == ["question"]
    assert block.find_block(alice.description(event_id)) is None
    assert_each_email_once(sandbox)


# -- 4: cancelled meetings -------------------------------------------------------------------------


def test_a_meeting_cancelled_before_its_question_went_out_cancels_the_email(
        running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    running.service.reconcile_calendars()
    running.service.sync()
    assert outbox(running, event_id) == [("question", "pending")]

    organiser.cancel(event_id)
    running.service.sync_soon(organiser.provider, organiser.address)
    running.service.sync()
    running.service.deliver()

    assert talk(running, event_id).state == State.CANCELLED
    assert outbox(running, event_id) == [("question", "cancelled")]
    assert sandbox.mail.deliveries == 0 and sandbox.mail.messages == []


def test_a_meeting_cancelled_after_its_question_is_never_chased(running, sandbox, organiser):
    kept = organiser.book("Pitch to Northwind")
    dropped = organiser.book("Kickoff with Northwind")
    run_cycle(running)
    assert sorted(kinds(sandbox, organiser.address)) == ["question", "question"]

    organiser.cancel(dropped)
    run_cycle(running)
    assert talk(running, dropped).state == State.CANCELLED

    start, _ = organiser.span(kept)
    set_clock(running, datetime.now(UTC) + 25 * HOUR)  # a reminder is due
    run_cycle(running)
    set_clock(running, start - 23 * HOUR)  # the deadline has passed
    run_cycle(running, times=2)

    # The meeting still on was reminded and decided; the cancelled one heard nothing more.
    assert kinds(sandbox, organiser.address, "Pitch") == ["question", "reminder", "confirmation"]
    assert kinds(sandbox, organiser.address, "Kickoff") == ["question"]
    assert talk(running, dropped).state == State.CANCELLED
    assert [kind for kind, _ in outbox(running, dropped)] == ["question"]
    assert_each_email_once(sandbox)


# -- 5: a person undid the assistant's change ------------------------------------------------------


def test_a_length_set_back_by_a_person_is_kept_and_left_alone(running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    annotated_virtual(running, sandbox, organiser, event_id)
    start, _ = organiser.span(event_id)

    organiser.set_end(event_id, start + HOUR)
    left_by_person = organiser.etag(event_id)
    run_cycle(running)
    after_one_cycle = organiser.etag(event_id)
    run_cycle(running, times=2)

    assert organiser.span(event_id) == (start, start + HOUR)  # never shortened again
    assert organiser.etag(event_id) == after_one_cycle  # no back and forth
    assert notes_in(organiser.description(event_id)) == 1
    assert kinds(sandbox, organiser.address) == ["question", "confirmation"]
    assert_each_email_once(sandbox)
    assert organiser.etag(event_id) == left_by_person  # not written at all after the person


def test_a_note_deleted_by_a_person_is_never_written_again(running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    annotated_virtual(running, sandbox, organiser, event_id)
    is_html = organiser.provider is Provider.MICROSOFT
    without_note = block.remove_block(organiser.description(event_id), is_html)
    assert block.find_block(without_note, is_html) is None and AGENDA in without_note

    organiser.set_description(event_id, without_note)
    left_by_person = organiser.etag(event_id)
    run_cycle(running, times=2)
    assert organiser.description(event_id) == without_note
    assert organiser.etag(event_id) == left_by_person

    organiser.move(event_id, DAY)  # a later, unrelated change does not bring it back
    run_cycle(running, times=2)
    assert block.find_block(organiser.description(event_id), is_html) is None
    assert AGENDA in organiser.description(event_id)
    assert kinds(sandbox, organiser.address) == ["question", "confirmation"]
    assert_each_email_once(sandbox)


def test_a_decision_stands_in_the_invite_when_the_calendar_around_it_fills_up(
        running, sandbox, alice):
    # 4 rows inferred for in person (a first meeting, no other customer meetings, one guest):
    # no answers to the 4 rows the organiser may be asked could overturn that (a 4-to-4 tie
    # goes to row 1, in person), so it is decided at once, and confirmed.
    start = soon(days=5)
    event_id = alice.book("Call with Northwind", start=start)
    run_cycle(running)
    assert kinds(sandbox, ALICE, "Northwind") == ["confirmation"]
    written = alice.etag(event_id)
    assert "in person" in alice.description(event_id) and alice.minutes(event_id) == 60

    # Ten customer meetings booked around it would now tip row 3, and the count, to virtual;
    # then a person adds a line to the invite, so the assistant reads it again.
    for number in range(10):
        alice.book(f"Call {number}", start=start + (number + 1) * HOUR,
                   guests=[f"buyer@customer{number}.example"])
    run_cycle(running)
    assert alice.etag(event_id) == written
    alice.set_description(event_id, alice.description(event_id) + "\nParking: level 2.")
    edited = alice.etag(event_id)
    run_cycle(running, times=2)

    # The invite says what the organiser was told, and nobody got an update for nothing.
    assert alice.etag(event_id) == edited
    assert sandbox.google.api_writes[(ALICE, event_id)] == 1
    assert "in person" in alice.description(event_id) and alice.minutes(event_id) == 60
    assert kinds(sandbox, ALICE, "Northwind") == ["confirmation"]


def test_a_decision_recorded_by_an_earlier_version_is_still_written(running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")
    answer(running, question, "virtual")
    running.service.read_replies()  # decided; the write is queued
    with running.service.store.transaction() as session:  # as earlier versions recorded it
        for record in session.scalars(select(RecommendationRecord)):
            record.detail = {k: v for k, v in record.detail.items() if k != "invite_reasons"}
    run_cycle(running)
    assert alice.minutes(event_id) == 50 and notes_in(alice.description(event_id)) == 1
    assert kinds(sandbox, ALICE) == ["question", "confirmation"]


# -- 6: replies that are not simply an answer ------------------------------------------------------


def test_a_reply_that_arrives_twice_is_applied_once(running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")

    reply = answer(running, question, "in person")
    running.inbox.receive(reply)  # the same message again, as a mail server may deliver it
    run_cycle(running)
    running.inbox.receive(reply)  # and once more, later
    run_cycle(running, times=2)

    assert len(running.inbox.processed) == 3
    assert list(handled_replies(running)) == [reply["Message-ID"]]
    assert handled_replies(running)[reply["Message-ID"]].startswith("answered")
    assert len(recommendations(running, event_id)) == 1
    assert talk(running, event_id).organiser_choice == "in_person"
    assert notes_in(alice.description(event_id)) == 1
    assert kinds(sandbox, ALICE) == ["question", "confirmation"]
    assert_each_email_once(sandbox)


def test_a_reply_from_a_stranger_with_the_right_token_is_ignored(running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")

    answer(running, question, "virtual", sender=STRANGER)
    run_cycle(running, times=2)

    assert len(sandbox.mail.messages) == 1  # the question; nobody got anything more
    assert sandbox.mail.to(STRANGER) == []
    conversation = talk(running, event_id)
    assert conversation.state == State.ASKED and conversation.organiser_choice is None
    assert block.find_block(alice.description(event_id)) is None
    [outcome] = handled_replies(running).values()
    assert outcome.startswith("ignored")

    answer(running, question, "in person")  # the organiser's own answer still counts
    run_cycle(running)
    assert talk(running, event_id).organiser_choice == "in_person"
    assert kinds(sandbox, ALICE) == ["question", "confirmation"]
    assert_each_email_once(sandbox)


def test_an_unclear_reply_gets_one_clarification(running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")

    answer(running, question, "3C")
    run_cycle(running)
    [clarification] = of_kind(sandbox, ALICE, "clarification")
    assert "3C" in text_of(clarification)
    assert talk(running, event_id).state == State.ASKED
    answer(running, question, "3C")  # the same confusion again, the same day
    run_cycle(running)
    assert kinds(sandbox, ALICE) == ["question", "clarification"]

    answer(running, clarification, "virtual")  # a clear answer to the clarification counts
    run_cycle(running)
    assert talk(running, event_id).state == State.ANNOTATED
    assert alice.minutes(event_id) == 50
    assert kinds(sandbox, ALICE) == ["question", "clarification", "confirmation"]
    assert_each_email_once(sandbox)


def test_an_auto_responder_that_answers_everything_gets_one_clarification(
        running, sandbox, alice):
    """A ticket system on the organiser's address, without Auto-Submitted or any other
    automatic-reply header, answers every email it gets: the exchange stops after one
    clarification, however many rounds it tries."""
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    for _ in range(5):
        latest = sandbox.mail.to(ALICE)[-1]
        answer(running, latest, "Thank you. Your request 3C has been received.")
        run_cycle(running)
    assert kinds(sandbox, ALICE) == ["question", "clarification"]
    assert talk(running, event_id).state == State.ASKED  # still waiting for a person
    assert_each_email_once(sandbox)


def test_an_organiser_who_changes_their_mind_after_the_confirmation_is_followed(
        running, sandbox, organiser):
    # The confirmation says: 'To change it, reply "in person" or "virtual".'
    event_id = organiser.book("Pitch to Northwind")
    annotated_virtual(running, sandbox, organiser, event_id)
    [confirmation] = of_kind(sandbox, organiser.address, "confirmation")
    assert 'reply "in person"' in text_of(confirmation)

    answer(running, confirmation, "in person")
    run_cycle(running, times=2)

    assert talk(running, event_id).organiser_choice == "in_person"
    description = organiser.description(event_id)
    assert notes_in(description) == 1 and "cameras on" not in description
    assert organiser.minutes(event_id) == 60  # an in-person meeting gets its hour back
    assert_each_email_once(sandbox)


def test_an_old_reply_sent_again_cannot_undo_a_change_of_mind(running, sandbox, alice):
    event_id = alice.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")
    first = answer(running, question, "virtual", written=datetime.now(UTC) - HOUR)
    run_cycle(running, times=2)
    [confirmation] = of_kind(sandbox, ALICE, "confirmation")
    answer(running, confirmation, "in person", written=datetime.now(UTC))
    run_cycle(running, times=2)
    del first["Message-ID"]  # the first reply again, as a mail system might resend it
    first["Message-ID"] = make_msgid(domain="example.com")
    running.inbox.receive(first)
    run_cycle(running, times=2)
    assert talk(running, event_id).organiser_choice == "in_person"
    assert alice.minutes(event_id) == 60
    assert "an old reply sent again" in " ".join(handled_replies(running).values())


# -- 7: everything at once, on both calendars ------------------------------------------------------


def test_after_every_kind_of_change_no_email_went_twice(running, sandbox, alice, bob):
    moved = alice.book("Pitch to Northwind")
    cancelled = bob.book("Northwind kickoff")
    internal = alice.book("Roadmap review", guests=[COLLEAGUE])
    undone = bob.book("Northwind onboarding")
    run_cycle(running)
    [to_alice] = of_kind(sandbox, ALICE, "question")
    to_bob = {m["Subject"].split(":")[0]: m for m in of_kind(sandbox, BOB, "question")}

    alice.move(moved, DAY)
    bob.cancel(cancelled)
    alice.invite(internal, [COLLEAGUE, CUSTOMER])
    reply = answer(running, to_alice, "virtual")
    running.inbox.receive(reply)
    answer(running, to_alice, "virtual", sender=STRANGER)
    answer(running, to_bob["Northwind onboarding"], "3C")
    run_cycle(running, times=2)
    answer(running, to_bob["Northwind onboarding"], "virtual")
    run_cycle(running)
    start, _ = bob.span(undone)
    bob.set_end(undone, start + HOUR)
    run_cycle(running, times=3)

    assert talk(running, moved).state == State.ANNOTATED
    assert talk(running, cancelled).state == State.CANCELLED
    assert talk(running, internal).state == State.ASKED
    assert talk(running, undone).state == State.ANNOTATED and bob.minutes(undone) == 60
    assert sorted(kinds(sandbox, ALICE)) == ["confirmation", "question", "question"]
    assert kinds(sandbox, BOB) == ["question", "question", "clarification", "confirmation"]
    assert sandbox.mail.to(STRANGER) == []
    assert_each_email_once(sandbox)


# -- 8: too close to ask ---------------------------------------------------------------------------


def test_a_meeting_booked_inside_the_deadline_is_decided_without_a_question(
        running, sandbox, organiser):
    start = (datetime.now(UTC) + 20 * HOUR).replace(second=0, microsecond=0)
    event_id = organiser.book("Pitch to Northwind", start=start)
    run_cycle(running)

    assert kinds(sandbox, organiser.address) == ["confirmation"]
    [confirmation] = sandbox.mail.messages
    assert "will be in person: it was too close to the meeting to ask you first" in \
        text_of(confirmation)
    assert 'To change it, reply "virtual".' in text_of(confirmation)
    assert talk(running, event_id).state == State.ANNOTATED
    assert [r.without_answer for r in recommendations(running, event_id)] == [True]
    assert notes_in(organiser.description(event_id)) == 1
    run_cycle(running)
    assert len(sandbox.mail.messages) == 1
    assert_each_email_once(sandbox)


# -- conversations that open again, outages, failures ----------------------------------------------


def test_a_meeting_that_loses_its_customer_and_gains_them_back_is_asked_again(
        running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    run_cycle(running)
    organiser.invite(event_id, [COLLEAGUE])
    run_cycle(running)
    organiser.invite(event_id, [CUSTOMER])
    run_cycle(running)
    assert talk(running, event_id).state == State.ASKED
    assert kinds(sandbox, organiser.address) == ["question", "question"]
    assert len({m["Message-ID"] for m in sandbox.mail.messages}) == 2
    assert_each_email_once(sandbox)


def test_a_meeting_that_started_while_the_worker_was_down_is_left_alone(
        running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    run_cycle(running)
    before = organiser.etag(event_id)
    set_clock(running, organiser.span(event_id)[0] + HOUR)  # back up after the meeting began
    run_cycle(running)
    assert talk(running, event_id).state == State.SKIPPED
    assert organiser.etag(event_id) == before  # not shortened, nobody got an update
    assert kinds(sandbox, organiser.address) == ["question"]


def test_an_annotation_that_failed_for_good_is_tried_again_when_the_meeting_changes(
        running, sandbox, bob):
    event_id = bob.book("Northwind onboarding", start=datetime.now(UTC) + 20 * HOUR)
    ports = running.service.outside
    running.service.reconcile_calendars()
    running.service.sync()  # decided at once (inside the deadline): its write is queued
    book_google(sandbox, "Pitch to Northwind")  # and a question for Alice in the same batch
    running.service.sync_soon(Provider.GOOGLE, ALICE)
    running.service.sync()
    running.service.outside = replace(ports, calendars={
        Provider.GOOGLE: ports.calendars[Provider.GOOGLE]})  # Microsoft's sign-in removed
    running.service.deliver()
    assert ("annotate", "failed") in outbox(running, event_id)
    assert kinds(sandbox, ALICE) == ["question"]  # the failure held nothing else up

    running.service.outside = ports  # the sign-in is back; then the meeting changes
    sandbox.graph.edit_event(BOB, event_id, subject="Northwind onboarding (room 2)")
    run_cycle(running)
    assert talk(running, event_id).state == State.ANNOTATED
    assert notes_in(bob.description(event_id)) == 1


# -- hostile events ----------------------------------------------------------------------------

HOSTILE_TITLE = ("Pitch to Northwind\r\nBcc: eve@evil.example\x00\x1b[31m\ud800"
                 "<script>alert(1)</script>")
HOSTILE_AGENDA = "<script>alert('agenda')</script>\x00\x07\x1b[2J\u202e" + "Agenda. " * 130_000


def test_a_hostile_megabyte_meeting_is_asked_about_and_annotated_safely(
        running, sandbox, organiser):
    event_id = organiser.book(HOSTILE_TITLE, agenda=HOSTILE_AGENDA)  # a description of 1 MB
    run_cycle(running)
    [question] = of_kind(sandbox, organiser.address, "question")
    assert question["Bcc"] is None and "\n" not in question["Subject"]
    assert not any(c in question["Subject"] for c in "\x00\x1b\ud800")
    html = question.get_body(("html",)).get_content()
    assert "<script>" not in html and "\x00" not in html and "\x1b" not in html
    assert "\x00" not in text_of(question) and "\x1b" not in text_of(question)
    answer(running, question, "virtual")
    run_cycle(running)
    assert talk(running, event_id).state == State.ANNOTATED
    description = organiser.description(event_id)
    assert notes_in(description) == 1 and "Agenda. " * 130_000 in description  # all kept
    assert_each_email_once(sandbox)


def test_a_meeting_moved_into_the_past_while_asked_is_left_alone(running, sandbox, organiser):
    event_id = organiser.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, organiser.address, "question")
    organiser.move(event_id, -5 * DAY)  # a person files last week's meeting after the fact
    run_cycle(running)
    left = organiser.etag(event_id)
    answer(running, question, "virtual")
    run_cycle(running, times=2)
    assert talk(running, event_id).state == State.SKIPPED  # the late answer changes nothing
    assert organiser.etag(event_id) == left  # no write to a meeting already held
    assert kinds(sandbox, organiser.address) == ["question"]


# -- calendars that go away ----------------------------------------------------------------------


def test_a_deleted_calendar_is_reported_and_holds_nothing_else_up(running, sandbox, organiser):
    asked = organiser.book("Pitch to Northwind")
    run_cycle(running)
    [question] = of_kind(sandbox, organiser.address, "question")
    other = Organiser(sandbox, Provider.MICROSOFT if organiser.provider is Provider.GOOGLE
                      else Provider.GOOGLE)
    emulator = sandbox.google if organiser.provider is Provider.GOOGLE else sandbox.graph
    emulator.remove_user(organiser.address)  # the organiser left: their calendar is gone
    answer(running, question, "virtual")
    booked_meanwhile = other.book("Northwind onboarding")
    run_cycle(running, times=2)
    with running.service.store.transaction() as session:
        errors = {address: error for address, error in session.execute(
            select(WatchedCalendar.address, WatchedCalendar.last_error))}
    assert "404" in errors[organiser.address] and errors[other.address] is None
    # The meeting went with the calendar: the answer finds nothing to annotate and nobody to
    # confirm to, and the other calendar's new meeting is asked about as usual.
    assert talk(running, asked).state == State.CANCELLED
    assert kinds(sandbox, organiser.address) == ["question"]
    assert kinds(sandbox, other.address) == ["question"]
    assert talk(running, booked_meanwhile).state == State.ASKED


# -- series ------------------------------------------------------------------------------------


def test_a_weekly_series_is_asked_about_once_through_moved_and_cancelled_instances(
        running, sandbox, alice):
    first = soon()
    series = book_google(sandbox, "Northwind steering group", start=first,
                         recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])["id"]

    def instance(week: int) -> str:  # Google's id of one occurrence: series id + its UTC start
        return f"{series}_{(first + week * 7 * DAY).astimezone(UTC):%Y%m%dT%H%M%SZ}"

    run_cycle(running)
    sandbox.google.move_event(ALICE, instance(1), 2 * HOUR)  # a person moves one week's
    sandbox.google.cancel_event(ALICE, instance(2))  # and cancels another
    run_cycle(running)
    [question] = of_kind(sandbox, ALICE, "question")  # one for the series
    answer(running, question, "virtual")
    run_cycle(running, times=2)
    # The moved week is an event of its own at Google: it gets the series' note and length
    # too, from the start the person gave it.
    for event_id in (series, instance(1), instance(3)):
        assert alice.minutes(event_id) == 50 and notes_in(alice.description(event_id)) == 1
    assert alice.span(instance(1))[0] == first + 7 * DAY + 2 * HOUR
    sandbox.google.move_event(ALICE, instance(3), HOUR)  # a week moved after the note
    run_cycle(running)
    assert alice.minutes(instance(3)) == 50 and notes_in(alice.description(instance(3))) == 1
    assert kinds(sandbox, ALICE) == ["question", "confirmation"]
    writes = sandbox.google.api_writes
    assert writes[(ALICE, series)] == 1 and writes[(ALICE, instance(1))] == 1
    assert_each_email_once(sandbox)
