"""The assistant's inbox on a real Dovecot IMAP server, and a whole question-reply round trip."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime, timedelta

import imapclient
import pytest
from aiosmtpd.controller import Controller

from assistant.emails import Sender, clarification_email, for_sending, question_email, to_message
from assistant.errors import AuthFailed
from assistant.models import Side
from assistant.presenting import reply_json
from assistant.replies import read_reply
from assistant.reply_acceptance import Answered, Ignored, OpenQuestion, Unclear, judge_reply
from assistant.reply_mail import read_reply_email
from assistant.reply_tokens import ReplyTokens
from integrations import imap_inbox
from integrations.imap_inbox import ImapInbox
from integrations.smtp_mail import SmtpTransport
from tests.contract.conftest import NO_WAIT
from tests.contract.mail_servers import Dovecot
from tests.factories import make_meeting

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
ASSISTANT = "meeting-assistant@example.com"


@pytest.fixture(scope="module")
def dovecot():
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture()
def mailbox(dovecot, request):
    """A fresh mailbox for the assistant; (inbox adapter, a client to deliver mail with)."""
    user = f"assistant-{request.node.name[:40].replace('[', '-').replace(']', '')}@example.com"
    password = dovecot.password
    inbox = ImapInbox("127.0.0.1", dovecot.port, username=user, password=password,
                      security="none")
    deliverer = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    deliverer.login(user, password)
    yield inbox, deliverer
    inbox.close()
    deliverer.logout()


def mail(sender="alice@example.com", body="1A", subject="Re: question", to=ASSISTANT) -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((sender, body, subject)))}@example.com>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def test_messages_are_read_in_order_and_moved_once_handled(mailbox):
    inbox, deliverer = mailbox
    for n in range(3):
        deliverer.append("INBOX", mail(body=f"{n + 1}A"))
    seen = [read_reply_email(m.raw).new_text for m in inbox.messages()]
    assert seen == ["1A", "2A", "3A"]
    first = next(iter(inbox.messages()))
    inbox.mark_processed(first.uid)
    assert [read_reply_email(m.raw).new_text for m in inbox.messages()] == ["2A", "3A"]
    deliverer.select_folder("Processed")
    assert len(deliverer.search(["ALL"])) == 1


def test_a_message_whose_handling_failed_is_read_again(mailbox):
    inbox, deliverer = mailbox
    deliverer.append("INBOX", mail())
    with pytest.raises(RuntimeError):
        for _message in inbox.messages():
            raise RuntimeError("the service crashed before marking it processed")
    assert len(list(inbox.messages())) == 1


def test_an_oversized_message_is_not_downloaded(mailbox, monkeypatch):
    inbox, deliverer = mailbox
    monkeypatch.setattr(imap_inbox, "MAX_MESSAGE_BYTES", 200)
    deliverer.append("INBOX", mail(body="x" * 1000))
    [message] = inbox.messages()
    assert message.raw == b""


def test_a_wrong_password_is_an_auth_failure():
    # A server of its own: Dovecot slows down later logins from an address that failed one.
    dovecot = Dovecot().start()
    try:
        inbox = ImapInbox("127.0.0.1", dovecot.port, username="nobody@example.com",
                          password="wrong", security="none")
        with pytest.raises(AuthFailed, match="refused the login"):
            list(inbox.messages())
    finally:
        dovecot.stop()


@pytest.fixture()
def smtp_inbox():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received: list[email.message.EmailMessage] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(email.message_from_bytes(envelope.content,
                                                     policy=email.policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    transport = SmtpTransport("127.0.0.1", port, security="none", retry=NO_WAIT)
    yield received, transport
    transport.close()  # it keeps its connection open between messages
    controller.stop()


def test_question_reply_and_clarification_round_trip(mailbox, smtp_inbox, renderer, checklist):
    """Sent over real SMTP, answered into real IMAP: read, judged, and clarified when unclear."""
    inbox, deliverer = mailbox
    sent, smtp = smtp_inbox
    tokens = ReplyTokens(b"t" * 32)
    sender = Sender(ASSISTANT, "Example Ltd")
    meeting = make_meeting("Acme pitch", time_zone="Europe/Berlin")
    question = OpenQuestion(41, "alice@example.com", asked=(2, 5, 9))
    token = tokens.issue(41, NOW + timedelta(days=10))
    smtp.send(for_sending(to_message(question_email(
        meeting, customers=["Acme"], inferred={}, questions=question.asked, checklist=checklist,
        token=token, sender=sender, deadline=None, renderer=renderer), sender, NOW)))
    asked = sent[0]
    reply_to, subject = asked["Reply-To"], asked["Subject"]
    deliverer.append("INBOX", mail(body="2A 5B\r\n9 a", subject=f"Re: {subject}", to=reply_to))
    deliverer.append("INBOX", mail(sender="eve@evil.example", body="2B", to=reply_to,
                                   subject=f"Re: {subject}"))
    deliverer.append("INBOX", mail(body="2A 5X", subject=f"Re: {subject}", to=reply_to))

    verdicts = []
    for message in inbox.messages():
        reply = read_reply_email(message.raw, ASSISTANT)
        verdicts.append(judge_reply(reply, tokens=tokens, open_question={41: question}.get,
                                    assistant_address=ASSISTANT, now=NOW))
        inbox.mark_processed(message.uid)
    answered, stranger, unclear = verdicts
    assert isinstance(answered, Answered)
    assert answered.answers == {2: Side.A, 5: Side.B, 9: Side.A}
    assert isinstance(stranger, Ignored) and "may not answer" in stranger.reason
    assert isinstance(unclear, Unclear)
    smtp.send(for_sending(to_message(clarification_email(
        meeting, unclear.reading, checklist=checklist, questions=question.asked, token=token,
        sender=sender, renderer=renderer), sender, NOW)))
    assert len(sent) == 2 and sent[1]["To"] == "alice@example.com"  # nothing went to eve
    assert "“5X”: answer with A or B" in sent[1].get_body(("plain",)).get_content()
    assert list(inbox.messages()) == []


def test_every_corpus_reply_reads_the_same_after_a_trip_through_imap(mailbox, checklist):
    """The 70 corpus replies delivered to Dovecot and read back by the inbox adapter."""
    from tests.contract.test_reply_corpus import CORPUS, EXPECTED

    inbox, deliverer = mailbox
    for name in sorted(EXPECTED):
        deliverer.append("INBOX", (CORPUS / f"{name}.eml").read_bytes())
    readings = []
    for message in inbox.messages():
        reply = read_reply_email(message.raw, ASSISTANT)
        reading = reply_json(reply, read_reply(reply, checklist), checklist)
        readings.append({key: reading[key] for key in EXPECTED[sorted(EXPECTED)[0]]})
    assert readings == [EXPECTED[name] for name in sorted(EXPECTED)]
