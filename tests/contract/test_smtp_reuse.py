"""SmtpTransport keeps one connection per thread, and copes with a server that closes it."""

from __future__ import annotations

import asyncio
import email.policy
import gc
import socket
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from aiosmtpd.controller import Controller

from assistant.emails import for_sending
from assistant.errors import ProviderUnavailable
from assistant.ports import MessageToSend
from assistant.retry import RetryPolicy
from integrations.smtp_mail import MailRejected, SmtpTransport


class Server:
    """aiosmtpd that counts messages and QUITs, refuses a spamtrap, and can say 421 at MAIL."""

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()  # by Message-ID
        self.data_commands = 0
        self.quits = 0
        self.closing_at_mail = 0  # this many MAIL commands are answered 421, as at an idle timeout

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.closing_at_mail:
            self.closing_at_mail -= 1
            return "421 4.4.2 Timeout - closing connection"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        if any(r.startswith("spamtrap@") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message refused"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.delivered[str(message["Message-ID"])] += 1
        return "250 Accepted"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"


class CountingController(Controller):
    """A Controller that keeps every SMTP session it starts: one per TCP connection."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list = []

    def factory(self):
        smtp = super().factory()
        self.sessions.append(smtp)
        return smtp

    def hang_up(self) -> None:
        """Close every client connection from the server's side, as an idle timeout does."""
        async def close_all() -> None:
            for smtp in self.sessions:
                if smtp.transport is not None:
                    smtp.transport.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=5)


def start(server: Server) -> CountingController:
    with socket.socket() as probe:  # aiosmtpd cannot start on port 0: pick a free port first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = CountingController(server, hostname="127.0.0.1", port=port)
    controller.start()
    controller.sessions.clear()  # start() connects once itself, to check the server is up
    return controller


@pytest.fixture()
def smtp():
    server = Server()
    controller = start(server)
    yield server, controller
    controller.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def transport(smtp):
    """Makes transports to the server, closed after the test (before the server stops)."""
    _, controller = smtp
    made: list[SmtpTransport] = []

    def make(sleeps: list[float] | None = None, **options) -> SmtpTransport:
        sleeps = [] if sleeps is None else sleeps
        made.append(SmtpTransport("127.0.0.1", controller.port, security="none",
                                  retry=RetryPolicy(attempts=3, sleep=sleeps.append), **options))
        return made[-1]

    yield make
    for mailer in made:
        mailer.close()


def message(to="alice@example.com") -> MessageToSend:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "assistant@example.com", to, "Hello"
    mail["Message-ID"] = make_msgid(domain="example.com")
    mail.set_content("Hi")
    return for_sending(mail)


def test_twenty_messages_go_over_one_connection(smtp, transport):
    server, controller = smtp
    mailer = transport()
    for _ in range(20):
        mailer.send(message())
    assert sum(server.delivered.values()) == 20
    assert len(controller.sessions) == 1


def test_a_connection_the_server_closed_is_replaced_at_once(smtp, transport):
    server, controller = smtp
    sleeps: list[float] = []
    mailer = transport(sleeps)
    mailer.send(message())
    controller.hang_up()
    second = message()
    mailer.send(second)
    assert server.delivered[second.headers()["Message-ID"]] == 1
    assert len(controller.sessions) == 2
    assert sleeps == []  # not a retry: no backoff


def test_a_421_on_a_kept_connection_is_replaced_at_once(smtp, transport):
    server, controller = smtp
    sleeps: list[float] = []
    mailer = transport(sleeps)
    mailer.send(message())
    server.closing_at_mail = 1
    second = message()
    mailer.send(second)
    assert server.delivered[second.headers()["Message-ID"]] == 1
    assert sleeps == []


def test_a_421_on_a_new_connection_is_still_retried_with_backoff(smtp, transport):
    server, controller = smtp
    sleeps: list[float] = []
    server.closing_at_mail = 1
    transport(sleeps).send(message())
    assert sum(server.delivered.values()) == 1
    assert len(sleeps) == 1


def test_a_refused_message_is_not_sent_again_and_the_next_starts_clean(smtp, transport):
    server, controller = smtp
    sleeps: list[float] = []
    mailer = transport(sleeps)
    mailer.send(message())
    with pytest.raises(MailRejected, match="554"):
        mailer.send(message("spamtrap@example.com"))
    assert server.data_commands == 2 and sleeps == []
    mailer.send(message())
    assert len(controller.sessions) == 2


def test_a_server_that_stays_down_is_retried_then_reported():
    controller = start(Server())  # not the fixture's: this one is stopped for good
    sleeps: list[float] = []
    mailer = SmtpTransport("127.0.0.1", controller.port, security="none",
                           retry=RetryPolicy(attempts=3, sleep=sleeps.append))
    mailer.send(message())
    controller.stop()  # hangs up, and takes no new connections
    with pytest.raises(ProviderUnavailable, match="failed"):
        mailer.send(message())
    assert len(sleeps) == 2  # three tries, the immediate reconnect not among them
    mailer.close()


def test_a_connection_idle_too_long_is_not_tried(smtp, transport):
    server, controller = smtp
    clock = Clock()
    mailer = transport(clock=clock, idle_seconds=60)
    mailer.send(message())
    clock.now += 59
    mailer.send(message())
    assert len(controller.sessions) == 1
    clock.now += 61
    mailer.send(message())
    assert len(controller.sessions) == 2
    assert sum(server.delivered.values()) == 3


def test_each_thread_keeps_its_own_connection(smtp, transport):
    server, controller = smtp
    mailer = transport()

    def send_five() -> None:
        for _ in range(5):
            mailer.send(message())

    threads = [threading.Thread(target=send_five) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(server.delivered.values()) == 10
    assert len(controller.sessions) == 2


def test_close_quits_every_connection_and_the_transport_still_sends(smtp, transport):
    server, controller = smtp
    mailer = transport()
    mailer.send(message())
    sent, closed = threading.Event(), threading.Event()

    def send_and_stay() -> None:  # a thread that ends would close its connection itself
        mailer.send(message())
        sent.set()
        closed.wait(5)

    other = threading.Thread(target=send_and_stay)
    other.start()
    sent.wait(5)
    mailer.close()
    closed.set()
    other.join()
    assert server.quits == 2
    mailer.send(message())
    assert len(controller.sessions) == 3
    mailer.close()
    assert server.quits == 3


def test_a_thread_that_ends_closes_its_connection(smtp, transport):
    _, controller = smtp
    mailer = transport()
    sender = threading.Thread(target=lambda: mailer.send(message()))
    sender.start()
    sender.join()
    gc.collect()
    deadline = time.monotonic() + 2
    while controller.sessions[0].transport is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert controller.sessions[0].transport is None  # the server saw it go
