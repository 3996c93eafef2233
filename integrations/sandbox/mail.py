"""A local mail system for the demo and tests: a real SMTP server that keeps what it accepts,
and an in-memory inbox that replies can be dropped into.

The sink is aiosmtpd speaking real SMTP on 127.0.0.1, so the assistant's own SmtpTransport
is what sends to it. Like a mailbox server, it can drop a message whose Message-ID it already
holds for that recipient (`dedupe_message_ids`), which is what Gmail and Exchange Online do
with a repeat; `deliveries` counts every SMTP transaction either way. Its `faults` (the
emulators' seeded knob) make it answer a message with 421 "try again later", or drop the
connection before or after keeping it, as a mail server that restarts or loses its network.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller

from assistant.ports import InboundMail
from integrations.sandbox.server import DROP, DROP_AFTER, Faults, free_port

MAIL_FAULTS = ("421", DROP, DROP_AFTER)


class MailSink:
    def __init__(self, *, dedupe_message_ids: bool = False) -> None:
        self.dedupe = dedupe_message_ids
        self._held_raw: list[bytes] = []  # what the mailboxes hold, parsed when first asked for
        self._parsed: list[EmailMessage] = []
        self.deliveries = 0
        self.delay_seconds = 0.0  # a slow mail server: each message takes this long to accept
        self.faults = Faults(kinds=MAIL_FAULTS)
        self.injected: Counter[str] = Counter()  # faults injected, by kind
        self.delivered: Counter[str] = Counter()  # SMTP transactions by Message-ID
        # (time.time(), To, Message-ID) of every accepted transaction: the benchmark's clock.
        self.accepted: list[tuple[float, str, str]] = []
        self._held: set[tuple[str, str]] = set()  # (Message-ID, To) of what messages holds
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.port = free_port()
        self._controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    async def accept(self, envelope: Any, connection: Any = None) -> str:
        """One SMTP transaction's message, as the server accepts it (or a fault instead)."""
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        fault = self.faults.pick()
        if fault:
            self.injected[fault] += 1
        if fault == "421":
            return "421 4.3.0 Try again later"
        if fault == DROP and connection is not None:
            connection.transport.close()
            return "421 4.3.0 Connection lost"  # written to a closed connection: never read
        # Headers only, here: a benchmark's thousand emails must not wait on this server
        # parsing every body, which is what a real server would not do either.
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(envelope.content)
        with self._arrived:
            self.deliveries += 1
            self.delivered[str(headers["Message-ID"])] += 1
            held = (str(headers["Message-ID"]), str(headers["To"]))
            self.accepted.append((time.time(), held[1], held[0]))
            if not (self.dedupe and held in self._held):
                self._held_raw.append(envelope.content)
                self._held.add(held)
            self._arrived.notify_all()
        if fault == DROP_AFTER and connection is not None:
            connection.transport.close()  # kept, but the client never hears the 250
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message the mailboxes hold, in the order accepted."""
        with self._lock:
            for raw in self._held_raw[len(self._parsed):]:
                message = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self._parsed.append(message)
            return list(self._parsed)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._held_raw) >= count, timeout)
        return self.messages

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class _SmtpHandler:
    """What aiosmtpd calls for each SMTP transaction.

    Not the sink itself: aiosmtpd looks over every attribute of its handler for each new
    connection (inspect.getmembers), which would read `messages` and parse every message that
    arrived since the last look: after a thousand, the next connection waited two seconds for
    its greeting.
    """

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return await self._sink.accept(envelope, server)


class SandboxInbox:
    """The assistant's inbox, in memory: `receive` a reply, the service reads it (MailIn)."""

    def __init__(self) -> None:
        self._waiting: dict[int, bytes] = {}
        self._uids = itertools.count(1)
        self._lock = threading.Lock()
        self.processed: list[bytes] = []
        self.failed: list[bytes] = []

    def receive(self, message: EmailMessage | bytes) -> None:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with self._lock:
            self._waiting[next(self._uids)] = raw

    def messages(self) -> Iterator[InboundMail]:
        with self._lock:
            waiting = sorted(self._waiting.items())
        for uid, raw in waiting:
            yield InboundMail(uid, raw)

    def mark_processed(self, uid: int) -> None:
        self._move(uid, self.processed)

    def mark_failed(self, uid: int) -> None:
        self._move(uid, self.failed)

    def _move(self, uid: int, folder: list[bytes]) -> None:
        with self._lock:
            raw = self._waiting.pop(uid, None)
            if raw is not None:
                folder.append(raw)

    def close(self) -> None:
        """Nothing to close: this inbox lives in memory."""
