"""Organisers are written to in their language, customers' notes are in theirs, and replies are
read in any of them: through the real service, both calendar emulators, SMTP, a Dovecot
inbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from email.message import EmailMessage

from assistant.store.tables import WatchedCalendar
from tests.end_to_end.conftest import (
    ALICE,
    BOB,
    Running,
    book_google,
    book_outlook,
    reply_to,
    store_session,
    wait_until,
)
from tests.end_to_end.test_changes import text_of
from tests.end_to_end.test_hostile_mail import dovecot, mailbox  # noqa: F401 - fixtures


def ask_and_answer(running: Running, deliverer, to: str, answer: str) -> EmailMessage:
    """Run a cycle, answer the one question to `to` through the IMAP inbox, run another."""
    running.service.cycle()
    [question] = wait_until(lambda: running.sandbox.mail.to(to), f"the question to {to}")
    deliverer.append("INBOX", reply_to(question, answer).as_bytes())
    running.service.cycle()
    return question


def confirmation_to(running: Running, to: str) -> EmailMessage:
    return wait_until(lambda: running.sandbox.mail.to(to)[1:], "the confirmation")[0]


def test_a_german_organiser_is_asked_in_german_and_a_german_customer_reads_german(
        sandbox, database_url, mailbox):  # noqa: F811 - the fixture
    inbox, deliverer = mailbox
    running = Running(sandbox, database_url, inbox=inbox,
                      organisers={ALICE: {"language": "de"}},
                      customers={"kunde.example": {"language": "de"}})
    try:
        event = book_google(sandbox, "Termin mit Kunde", guests=("erin@kunde.example",))
        question = ask_and_answer(running, deliverer, ALICE, "Lieber vor Ort, danke!\n\nGruß\nA")
        assert question["Subject"].startswith("Termin mit Kunde: vor Ort oder virtuell? [MFA-")
        asked = text_of(question)
        assert asked.startswith("Hallo Alice,") and "Bitte beantworte kurz:" in asked
        assert "„vor Ort“ oder „virtuell“" in asked and "Uhr" in asked

        confirmation = text_of(confirmation_to(running, ALICE))
        assert "Termin mit Kunde" in confirmation and "vor Ort" in confirmation
        note = sandbox.google.event(ALICE, event["id"])["description"]
        assert "Wir treffen uns persönlich" in note and "We'll meet" not in note
    finally:
        running.close()


def test_a_french_organiser_is_asked_in_the_language_of_their_google_calendar(
        sandbox, database_url, mailbox):  # noqa: F811 - the fixture
    inbox, deliverer = mailbox
    sandbox.google.set_locale(ALICE, "fr")
    running = Running(sandbox, database_url, inbox=inbox,
                      customers={"client.example": {"language": "fr"}})
    try:
        event = book_google(sandbox, "Rendez-vous client", guests=("erin@client.example",))
        question = ask_and_answer(running, deliverer, ALICE, "Plutôt en visio, merci.")
        assert "en présentiel ou à distance ?" in question["Subject"]
        assert text_of(question).startswith("Bonjour Alice,")
        with store_session(database_url) as session:
            calendar = session.query(WatchedCalendar).filter_by(address=ALICE).one()
            assert calendar.owner_language == "fr"

        assert "à distance" in text_of(confirmation_to(running, ALICE))
        note = sandbox.google.event(ALICE, event["id"])["description"]
        assert "Nous aurons nos caméras allumées" in note and "50 minutes" in note
    finally:
        running.close()


def test_a_spanish_organiser_on_outlook_answers_in_spanish(
        sandbox, database_url, mailbox):  # noqa: F811 - the fixture
    inbox, deliverer = mailbox
    sandbox.graph.set_locale(BOB, "es-ES")
    running = Running(sandbox, database_url, inbox=inbox,
                      customers={"cliente.example": {"language": "es"}})
    try:
        event = book_outlook(sandbox, "Reunión con el cliente", guests=("ana@cliente.example",))
        question = ask_and_answer(running, deliverer, BOB, "Presencial, por favor.")
        assert "¿presencial o virtual?" in question["Subject"]
        assert text_of(question).startswith("¡Hola, Bob!")

        assert "presencial" in text_of(confirmation_to(running, BOB))
        note = sandbox.graph.event(BOB, event["id"])["body"]["content"]
        assert "Nos reuniremos en persona" in note
    finally:
        running.close()


def test_an_english_organiser_may_answer_in_german(sandbox, database_url, mailbox):  # noqa: F811
    inbox, deliverer = mailbox
    running = Running(sandbox, database_url, inbox=inbox)
    try:
        event = book_google(sandbox, "Catch-up with Northwind")
        question = ask_and_answer(running, deliverer, ALICE, "Teams reicht völlig")
        assert "in person or virtual?" in question["Subject"]
        assert "cameras on" in sandbox.google.event(ALICE, event["id"])["description"]
    finally:
        running.close()
