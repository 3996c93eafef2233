"""The outbox: every email and event write the assistant means to make, kept until it is made.

A row is added in the transaction that decided the effect, under an idempotency key (adding
the same key again does nothing), then claimed by one worker under a lease, delivered, and
settled: done (with whatever follows from it, in the same transaction), retried later with
backoff, or failed for good. An email's whole message is kept in the row with a Message-ID
derived from its key, so every attempt sends the same message.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from assistant.emails import OutgoingEmail, Sender, for_sending, to_message
from assistant.ports import MessageToSend
from assistant.store import Store
from assistant.store.database import insert_new
from assistant.store.tables import AuditEntry, Conversation, Outbox, SeenMeeting, WatchedCalendar

BATCH = 50  # rows claimed at a time
MAX_BACKOFF = timedelta(hours=1)


class Effects:
    def __init__(self, store: Store, sender: Sender, clock: Callable[[], datetime],
                 lease: timedelta, *, dry_run: bool = False) -> None:
        self.store, self.sender, self.clock, self.lease = store, sender, clock, lease
        # A dry run's effects are settled apart from real ones, for reports and metrics.
        self.delivered = "dry_run" if dry_run else "done"

    # -- adding ----------------------------------------------------------------------------------

    def add_email(self, session: Session, key: str, kind: str, mail: OutgoingEmail,
                  talk: Conversation | None, *, about: list[int] | None = None) -> None:
        """about: the conversations an email on several meetings (a digest) asks about."""
        domain = self.sender.address.partition("@")[2]
        # One Message-ID per effect, whatever the attempt: a repeat is recognisably the same.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        wire = for_sending(to_message(mail, self.sender, self.clock(),
                                      message_id=f"<mfa.{digest}@{domain}>"))
        payload: dict[str, Any] = {"message": base64.b64encode(wire.data).decode(),
                                   "from": wire.sender, "to": list(wire.recipients),
                                   "utf8": wire.international}
        if about:
            payload["conversations"] = about
        self.add(session, key, "email", talk, payload, email_kind=kind,
                 recipient=mail.to.lower())

    def add(self, session: Session, key: str, kind: str, talk: Conversation | None,
            payload: dict[str, Any], **columns: str) -> None:
        """A new effect under key, unless one was added under it before."""
        now = self.clock()
        insert_new(session, Outbox, {
            "idempotency_key": key, "kind": kind, "payload": payload,
            "conversation_id": talk.id if talk else None, "next_attempt_at": now,
            "created_at": now, **columns},
            unique=["idempotency_key"])

    # -- delivering ------------------------------------------------------------------------------

    def claim(self, owner: str) -> list[Outbox]:
        now = self.clock()
        with self.store.transaction() as session:
            # A paused calendar's emails and writes wait for it to be resumed (a removed one's
            # were cancelled; whatever slipped in since waits with them). Digests, about several
            # meetings, are checked one by one at delivery (digest_held).
            held = (select(Conversation.id).join(SeenMeeting).join(WatchedCalendar)
                    .where(~WatchedCalendar.watched()))
            return Store.claim(session, Outbox, owner=owner, now=now, lease=self.lease,
                               limit=BATCH,
                               where=[Outbox.state == "pending", Outbox.next_attempt_at <= now,
                                      or_(Outbox.conversation_id.is_(None),
                                          Outbox.conversation_id.not_in(held))],
                               order_by=[Outbox.id])

    def still_ours(self, row: Outbox) -> bool:
        """Whether row is still ours and pending, just before delivering it.

        Rows are claimed in batches; without this, a batch that takes longer than the lease
        would have its last rows delivered by us and by the worker that took them over, and
        a row withdrawn since the claim (its calendar removed) would still go. While more
        than half its lease is left the row is only read, which on SQLite waits for no
        writer; after that the lease is renewed.
        """
        now = self.clock()
        assert row.lease_expires is not None  # as claimed
        if row.lease_expires - now > self.lease / 2:
            found = self.store.read_row(select(Outbox.state, Outbox.lease_owner,
                                               Outbox.lease_expires).where(Outbox.id == row.id))
            return (found is not None and found.state == "pending"
                    and found.lease_owner == row.lease_owner and found.lease_expires > now)
        with self.store.transaction() as session:
            renewed = session.execute(
                update(Outbox).where(Outbox.id == row.id, Outbox.state == "pending",
                                     Outbox.lease_owner == row.lease_owner,
                                     Outbox.lease_expires > now)
                .values(lease_expires=now + self.lease))
        if renewed.rowcount:
            row.lease_expires = now + self.lease
        return bool(renewed.rowcount)

    # -- settling --------------------------------------------------------------------------------

    def done(self, row_id: int, follow: Callable[[Session, Outbox], None]) -> None:
        """Mark a row delivered (or, in a dry run, as good as), with what follows from it."""
        with self._settling(row_id, state=self.delivered, done_at=self.clock()) as settling:
            if settling is not None:
                follow(*settling)

    def retry_later(self, row: Outbox, error: Exception) -> None:
        with self._settling(row.id, last_error=str(error)[:2000]) as settling:
            if settling is not None:
                _, fresh = settling
                wait = min(timedelta(seconds=2 ** min(fresh.attempts, 12)), MAX_BACKOFF)
                fresh.next_attempt_at = self.clock() + wait

    def postpone(self, row: Outbox, wait: timedelta) -> None:
        """Not now, and not a failure: try again after wait (a paused calendar's digest)."""
        with self._settling(row.id, attempts=Outbox.attempts,  # waiting is not an attempt
                            next_attempt_at=self.clock() + wait):
            pass

    def withdraw(self, row: Outbox, why: str, follow: Callable[[Session, Outbox], None]
                 ) -> None:
        """Drop a row that no longer says what is true, together with what follows."""
        with self._settling(row.id, attempts=Outbox.attempts,  # not an attempt either
                            state="cancelled", done_at=self.clock(), last_error=why
                            ) as settling:
            if settling is not None:
                follow(*settling)

    def failed(self, row: Outbox, error: Exception) -> None:
        with self._settling(row.id, state="failed", last_error=str(error)[:2000],
                            done_at=self.clock()) as settling:
            if settling is not None:
                session, fresh = settling
                talk = (session.get(Conversation, fresh.conversation_id)
                        if fresh.conversation_id else None)
                session.add(AuditEntry.of(talk, self.clock(), "failed",
                                          f"{fresh.idempotency_key}: {error}"))

    @contextmanager
    def _settling(self, row_id: int, **values: Any) -> Iterator[tuple[Session, Outbox] | None]:
        """The row, if it is still pending, with values set, its lease given back and one
        more attempt counted, all in one UPDATE; else None.

        None means another worker settled it (our lease had run out) and followed up.
        """
        settled = {"lease_owner": None, "lease_expires": None,
                   "attempts": Outbox.attempts + 1, **values}
        with self.store.transaction() as session:
            row = session.scalars(update(Outbox)
                                  .where(Outbox.id == row_id, Outbox.state == "pending")
                                  .values(settled).returning(Outbox)).one_or_none()
            yield None if row is None else (session, row)


def message_of(row: Outbox) -> MessageToSend:
    """The email row holds, as it is to be sent."""
    raw = base64.b64decode(row.payload["message"])
    if "from" not in row.payload:  # kept by a version that stored no envelope (LF line ends)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return for_sending(parsed)
    return MessageToSend(row.payload["from"], tuple(row.payload["to"]), raw,
                         bool(row.payload.get("utf8")))
