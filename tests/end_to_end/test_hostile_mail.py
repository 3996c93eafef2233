"""Hostile mail in front of a genuine reply, in a real Dovecot inbox: the genuine reply is
applied, and each hostile message is set aside in the failed folder with an audit entry."""

from __future__ import annotations

from collections.abc import Iterator

import imapclient
import pytest
from sqlalchemy import select

from assistant.store.tables import AuditEntry, Conversation
from integrations import imap_inbox
from integrations.imap_inbox import ImapInbox
from tests.contract.mail_servers import Dovecot
from tests.end_to_end.conftest import Running, book_google, reply_to
from tests.unit.test_hostile_mail import nested_mime


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture()
def mailbox(dovecot, request) -> Iterator[tuple[ImapInbox, imapclient.IMAPClient]]:
    """The assistant's inbox on Dovecot, and a client that delivers into it."""
    user = f"assistant-{request.node.name[-30:].strip('[]').replace('[', '-')}@example.com"
    inbox = ImapInbox("127.0.0.1", dovecot.port, username=user, password=dovecot.password,
                      security="none")
    deliverer = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    deliverer.login(user, dovecot.password)
    yield inbox, deliverer
    inbox.close()
    deliverer.logout()


def folder(deliverer: imapclient.IMAPClient, name: str) -> list[bytes]:
    if not deliverer.folder_exists(name):
        return []
    deliverer.select_folder(name, readonly=True)
    found = deliverer.fetch(deliverer.search(["ALL"]), ["BODY.PEEK[]"])
    return [found[uid][b"BODY[]"] for uid in sorted(found)]


def test_hostile_mail_in_front_of_a_genuine_reply_is_set_aside_and_the_reply_applied(
        sandbox, database_url, mailbox, monkeypatch):
    inbox, deliverer = mailbox
    monkeypatch.setattr(imap_inbox, "MAX_MESSAGE_BYTES", 200_000)
    running = Running(sandbox, database_url, inbox=inbox)
    service = running.service
    try:
        book_google(sandbox, "Catch-up with Northwind")
        service.cycle()
        [question] = sandbox.mail.wait_for(1)
        address = question["Reply-To"]
        token_header = f"To: {address}\r\nSubject: Re: {question['Subject']}\r\n".encode()

        # Read, but its sender cannot be: ignored like any stranger's, and moved on.
        parentheses = (b"From: " + b"(" * 300 + b"alice@example.com\r\n" + token_header
                       + b"Message-ID: <parens@evil.example>\r\n\r\n1B\r\n")
        deliverer.append("INBOX", parentheses)
        # Not readable at all, or its handling fails: set aside.
        hostile = {
            "nesting": nested_mime(1200).replace(b"To: meeting-assistant+", b"X-To: x+"),
            "oversized": token_header + b"From: Eve <eve@evil.example>\r\n"
                         b"Message-ID: <big@evil.example>\r\n\r\n"
                         + b"1B " * 100_000,
            "breaks the handler": token_header + b"From: alice@example.com\r\n"
                                  b"Message-ID: <bug@example.com>\r\n\r\n1B\r\n",
        }
        for raw in hostile.values():
            deliverer.append("INBOX", raw)
        deliverer.append("INBOX", reply_to(question, "virtual").as_bytes())

        on_reply = service._on_reply

        def a_bug_this_message_finds(session, reply):
            if reply.message_id == "<bug@example.com>":
                raise KeyError("a bug in the assistant that only this message finds")
            return on_reply(session, reply)

        monkeypatch.setattr(service, "_on_reply", a_bug_this_message_finds)
        assert service.read_replies() == 2  # the reply, and the stranger's ignored

        with service.store.transaction() as session:
            [state] = session.scalars(select(Conversation.state)).all()
            set_aside = session.scalars(select(AuditEntry.detail).where(
                AuditEntry.action == "reply set aside").order_by(AuditEntry.id)).all()
        assert str(state) == "answered"
        assert len(set_aside) == len(hostile), set_aside
        for detail, why in zip(set_aside, ("MIME parts", "too big", "KeyError"),
                               strict=True):
            assert "moved to the failed folder" in detail and why in detail, detail
        assert "message <big@evil.example> from e***@evil.example" in set_aside[1]
        assert "a***@example.com" in set_aside[2]

        assert folder(deliverer, "Failed") == list(hostile.values())
        assert folder(deliverer, "Processed")[0] == parentheses
        assert folder(deliverer, "INBOX") == []
        assert service.read_replies() == 0  # nothing is read twice, nothing stuck
    finally:
        running.close()
