"""Question and clarification emails, composed from templates and sent to a real SMTP server."""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller

from assistant.emails import (
    DigestItem,
    OutgoingEmail,
    Sender,
    clarification_email,
    confirmation_email,
    digest_email,
    for_sending,
    question_email,
    to_message,
)
from assistant.errors import ProviderUnavailable
from assistant.models import Person, Provenance, RowAnswer, Side
from assistant.outbox import message_of
from assistant.replies import read_answer
from assistant.reply_mail import read_reply_email
from assistant.store.tables import Outbox
from integrations.sandbox import mail as sandbox_mail
from integrations.sandbox.mail import MailSink
from integrations.smtp_mail import MailRejected, SmtpTransport
from tests.contract.conftest import NO_WAIT
from tests.factories import make_meeting

SENDER = Sender("meeting-assistant@example.com", "Example Ltd")
TOKEN = "k3q7zt2mxa4bq5c6d7efgh2ijkabcdefghijklmn"
NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)


class Inbox:
    """aiosmtpd handler keeping what it accepted; refuses addresses at refused.example."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture()
def smtp():
    with socket.socket() as probe:  # aiosmtpd cannot start on port 0: pick a free port first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    transport = SmtpTransport("127.0.0.1", port, security="none", retry=NO_WAIT)
    yield inbox, transport
    transport.close()  # it keeps its connection open between messages
    controller.stop()


def meeting(title="Acme pitch"):
    return make_meeting(title, organizer="alice@example.com", time_zone="Europe/Berlin",
                        start=datetime(2026, 12, 3, 9, tzinfo=UTC))


def question(renderer, checklist, title="Acme pitch", questions=(2, 5, 9)):
    inferred = {"importance": RowAnswer(Side.A, Provenance.INFERRED, 'the title says "pitch"')}
    return question_email(
        meeting(title), customers=["Acme"], inferred=inferred, questions=questions,
        checklist=checklist, token=TOKEN, sender=SENDER, renderer=renderer,
        deadline=datetime(2026, 12, 2, 9, tzinfo=UTC),
    )


def test_a_question_email_arrives_short_and_answerable(smtp, renderer, checklist):
    inbox, transport = smtp
    transport.send(for_sending(to_message(question(renderer, checklist), SENDER, NOW)))
    [(mail_from, recipients, message)] = inbox.messages
    assert recipients == ["alice@example.com"] and mail_from == SENDER.address
    assert message["Subject"] == f"Acme pitch: in person or virtual? [MFA-{TOKEN}]"
    assert message["Reply-To"] == f"meeting-assistant+{TOKEN}@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert "Thu 3 Dec, 10:00-11:00 (Europe/Berlin)" in text
    assert "1. importance: A" in text and "2. " in text and "9. " in text
    questions_start = text.index("Please answer:")
    questions_end = text.index("Reply with the numbers")
    words_besides_questions = len((text[:questions_start] + text[questions_end:]).split())
    assert words_besides_questions < 150
    assert "<b>Acme pitch</b>" in message.get_body(("html",)).get_content()


def test_an_organisers_reply_to_the_question_reads_back(smtp, renderer, checklist):
    inbox, transport = smtp
    transport.send(for_sending(to_message(question(renderer, checklist), SENDER, NOW)))
    original = inbox.messages[0][2]
    quoted = "\n".join("> " + line for line in original.get_body(("plain",)).get_content()
                       .splitlines())
    reply = (f"From: Alice <alice@example.com>\nTo: {original['Reply-To']}\n"
             f"Subject: Re: {original['Subject']}\nContent-Type: text/plain; charset=utf-8\n\n"
             f"2a 5B 9 a\n\nOn Fri, 20 Nov 2026, Meeting assistant wrote:\n{quoted}\n")
    read = read_reply_email(reply.encode(), SENDER.address)
    assert read.token == TOKEN and read.sender == "alice@example.com"
    reading = read_answer(read.new_text)
    assert dict(reading.answers) == {2: Side.A, 5: Side.B, 9: Side.A} and not reading.unclear


def test_a_hostile_title_cannot_inject_headers_or_script(smtp, renderer, checklist):
    inbox, transport = smtp
    title = "Acme\r\nBcc: eve@evil.example\r\n<script>alert(1)</script>"
    transport.send(for_sending(to_message(question(renderer, checklist, title=title), SENDER, NOW)))
    [(_, recipients, message)] = inbox.messages
    assert recipients == ["alice@example.com"] and message["Bcc"] is None
    assert "\n" not in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_clarification_says_what_was_read_and_what_was_not(smtp, renderer, checklist):
    inbox, transport = smtp
    reading = read_answer("2A 5C")
    clarification = clarification_email(meeting(), reading, checklist=checklist,
                                        questions=(2, 5, 9), token=TOKEN, sender=SENDER,
                                        renderer=renderer)
    transport.send(for_sending(to_message(clarification, SENDER, NOW)))
    text = inbox.messages[0][2].get_body(("plain",)).get_content()
    assert "2. priorities: A" in text and "“5C”: answer with A or B" in text


def test_a_refused_recipient_is_final_not_retried(smtp, renderer, checklist):
    inbox, transport = smtp
    message = to_message(question(renderer, checklist), SENDER, NOW)
    message.replace_header("To", "nobody@refused.example")
    with pytest.raises(MailRejected, match="nobody@refused.example"):
        transport.send(for_sending(message))
    assert inbox.messages == []


def test_a_server_that_is_down_is_retried_then_reported():
    attempts = []
    transport = SmtpTransport("127.0.0.1", 9, security="none",
                              retry=NO_WAIT.__class__(attempts=3, sleep=attempts.append))
    hello = OutgoingEmail("alice@example.com", "Hello", "Hi", "<p>Hi</p>")
    with pytest.raises(ProviderUnavailable, match="SMTP to 127.0.0.1:9 failed"):
        transport.send(for_sending(to_message(hello, SENDER, NOW)))
    assert len(attempts) == 2  # three tries, two waits


def test_organiser_without_name_is_greeted_by_address(renderer, checklist):
    plain = replace(make_meeting("Acme pitch"), organizer=Person("carol.jones@example.com"))
    mail = question_email(plain, customers=[], inferred={}, questions=(1,), checklist=checklist,
                          token=TOKEN, sender=SENDER, renderer=renderer,
                          deadline=NOW + timedelta(days=1))
    assert mail.text.startswith("Hi Carol,")


def test_a_reminder_says_so_and_keeps_the_token(renderer, checklist):
    mail = question_email(meeting(), customers=[], inferred={}, questions=(2,),
                          checklist=checklist, token=TOKEN, sender=SENDER, renderer=renderer,
                          deadline=None, reminder=True)
    assert mail.subject.startswith("Reminder: Acme pitch") and TOKEN in mail.subject
    assert "A quick reminder" in mail.text and mail.reply_to.endswith(f"+{TOKEN}@example.com")


def test_a_confirmation_says_what_was_decided_and_changed(smtp, renderer, checklist):
    from assistant.models import DecidedBy, Format, Recommendation, Totals

    inbox, transport = smtp
    decided = Recommendation(Format.VIRTUAL, Totals(1, 3), DecidedBy.COUNT,
                             ("it is one of our regular conversations",), (),
                             answered=("priorities",), inferred=("importance", "number"),
                             unknown=("power",))
    mail = confirmation_email(meeting(), decided, ["ends at 10:50 (50 minutes)",
                                                   "a Meet link was added"],
                              without_answer=True, token=TOKEN, sender=SENDER, renderer=renderer)
    transport.send(for_sending(to_message(mail, SENDER, NOW)))
    text = inbox.messages[0][2].get_body(("plain",)).get_content()
    assert "No answer came for Acme pitch" in text and "virtual" in text
    assert "- ends at 10:50 (50 minutes)" in text
    assert "Based on 1 of your answers, 2 rows the calendar or settings told and 1 unknown." in text


def test_a_digest_links_each_meeting_to_its_own_reply(renderer, checklist):
    tokens = ["a" * 30, "b" * 30]
    items = [DigestItem(make_meeting(f"Meeting {n}"), (2, 5), token)
             for n, token in enumerate(tokens)]
    mail = digest_email("alice@example.com", items, checklist=checklist, sender=SENDER,
                        renderer=renderer)
    assert mail.subject == "2 customer meetings: in person or virtual?"
    for token in tokens:
        assert f"mailto:meeting-assistant+{token}@example.com?subject=Re%3A" in mail.text
        assert f"%5BMFA-{token}%5D" in mail.html


def test_with_a_public_url_every_option_is_a_one_click_link(renderer, checklist):
    from assistant.answer_links import AnswerLinks
    from assistant.emails import OneClick

    links = OneClick(AnswerLinks(b"k" * 32, "https://assistant.example.com"), 7,
                     NOW + timedelta(days=3))
    mail = question_email(meeting(), customers=[], inferred={}, questions=(2, 5),
                          checklist=checklist, token=TOKEN, sender=SENDER, renderer=renderer,
                          deadline=None, links=links)
    assert mail.html.count('href="https://assistant.example.com/answer/') == 6  # 2×2 + 2
    assert "https://" not in mail.text  # the text part stays short


def test_a_message_goes_out_as_stored_crlf_lines_and_no_bcc(smtp, renderer, checklist):
    inbox, transport = smtp
    message = to_message(question(renderer, checklist), SENDER, NOW)
    message["Cc"], message["Bcc"] = "bob@example.com", "audit@example.com"
    wire = for_sending(message)
    assert wire.sender == SENDER.address and not wire.international
    assert wire.recipients == ("alice@example.com", "bob@example.com", "audit@example.com")
    assert b"\n" not in wire.data.replace(b"\r\n", b"") and b"Bcc" not in wire.data
    transport.send(wire)
    [(_, recipients, arrived)] = inbox.messages
    assert recipients == list(wire.recipients) and arrived["Bcc"] is None
    assert arrived["Message-ID"] == message["Message-ID"]


def test_an_email_an_older_version_kept_in_the_outbox_still_goes_out(smtp, renderer,
                                                                     checklist):
    """Rows kept before the envelope was stored hold the message alone, with LF line ends."""
    inbox, transport = smtp
    kept = to_message(question(renderer, checklist), SENDER, NOW).as_bytes()
    transport.send(message_of(Outbox(payload={"message": base64.b64encode(kept).decode()})))
    [(mail_from, recipients, arrived)] = inbox.messages
    assert mail_from == SENDER.address and recipients == ["alice@example.com"]
    assert arrived["Subject"].endswith(f"[MFA-{TOKEN}]")
    assert "Please answer:" in arrived.get_body(("plain",)).get_content()


def test_an_address_beyond_ascii_goes_with_smtputf8(renderer, checklist):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    transport = SmtpTransport("127.0.0.1", port, security="none", retry=NO_WAIT)
    try:
        mail = replace(question(renderer, checklist), to="jörg@example.com")
        wire = for_sending(to_message(mail, SENDER, NOW))
        assert wire.international and "jörg@example.com".encode() in wire.data
        transport.send(wire)
    finally:
        transport.close()
        controller.stop()
    [(_, recipients, arrived)] = inbox.messages
    assert recipients == ["jörg@example.com"] and arrived["To"] == "jörg@example.com"


def test_a_title_beyond_ascii_reads_back_as_written(smtp, renderer, checklist):
    inbox, transport = smtp
    title = "Überprüfung mit Café Größe – a title long enough that its subject is folded"
    transport.send(for_sending(to_message(question(renderer, checklist, title=title),
                                          SENDER, NOW)))
    [(_, _, arrived)] = inbox.messages
    assert arrived["Subject"] == f"{title}: in person or virtual? [MFA-{TOKEN}]"
    assert title in arrived.get_body(("plain",)).get_content()
    assert "Größe" in arrived.get_body(("html",)).get_content()
    assert arrived.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"


def test_the_sandbox_mail_server_parses_nothing_to_greet_a_new_connection(monkeypatch):
    # aiosmtpd looks over its handler's attributes on every connection: had that read the
    # sink's messages, a benchmark's thousand emails were parsed before the next greeting.
    sink = MailSink().start()
    try:
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for n in range(3):
                smtp.sendmail("a@example.com", [f"b{n}@example.com"],
                              f"To: b{n}@example.com\r\nMessage-ID: <m{n}@x>\r\n\r\nhi\r\n")

        def no_parsing(*_: object, **__: object) -> None:
            raise AssertionError("a message was parsed to greet a connection")

        with monkeypatch.context() as patched:
            patched.setattr(sandbox_mail.email, "message_from_bytes", no_parsing)
            with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as fresh:
                assert fresh.recv(100).startswith(b"220")
        assert [m["To"] for m in sink.messages] == [f"b{n}@example.com" for n in range(3)]
    finally:
        sink.stop()
