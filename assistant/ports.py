"""The contracts between the core and the outside systems it reads and writes.

The core only speaks to these Protocols; integrations/ implements them, one module per
provider, and no provider type crosses this line.
"""

from __future__ import annotations

import email.policy
import enum
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Protocol

from assistant.annotate import AnnotationPlan
from assistant.errors import ProviderError
from assistant.models import EventRemoved, Meeting, Provider


@dataclass(frozen=True)
class CalendarChanges:
    """What changed in one calendar since its cursor, every page of it.

    Store `cursor` only once every change has been handled: a crash before that repeats the
    changes, it never skips one. After a full sync (`full_sync`: there was no cursor, or it had
    expired) `changes` lists every live event of the sync window, including ones already seen;
    the caller tells those apart by event id and ETag.
    """

    calendar: str
    changes: tuple[Meeting | EventRemoved, ...]
    cursor: str
    full_sync: bool


@dataclass(frozen=True)
class SyncFailed:
    """One calendar could not be synced this time; its cursor stays where it was."""

    calendar: str
    error: ProviderError


class WriteResult(enum.StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # the event already reads as planned (maybe by our own lost answer)
    LEFT_ALONE = "left_alone"  # the planner declined: a person edited the assistant's note
    NOT_ORGANISER = "not_organiser"  # only the organiser's own events are ever written
    GONE = "gone"  # deleted or cancelled meanwhile


@dataclass(frozen=True)
class WriteOutcome:
    result: WriteResult
    meeting: Meeting | None  # the event as it now reads (None when it is gone)
    attempts: int = 1  # reads-and-writes it took; more than one means someone edited meanwhile


# Given the event as it reads now, the change to make, or None to leave it alone. Called again
# with the fresh event whenever someone else changed it between our read and our write.
Planner = Callable[[Meeting], AnnotationPlan | None]


@dataclass(frozen=True)
class Channel:
    """A push subscription: the provider calls `address` when the calendar changes."""

    provider: Provider
    calendar: str
    channel_id: str
    resource_id: str
    token: str  # the secret the provider sends back with every notification
    expires: datetime
    address: str = ""  # the webhook URL the provider calls

    def expires_within(self, now: datetime, margin: timedelta) -> bool:
        return self.expires - now <= margin


class CalendarPort(Protocol):
    """One provider's calendars, for the users an admin asked the assistant to watch.

    Every method raises a ProviderError subclass (never a library's own error) naming the
    calendar and event; transient failures have already been retried by then.
    """

    provider: Provider

    def sync(self, cursors: Mapping[str, str | None]) -> Iterator[CalendarChanges | SyncFailed]:
        """Changes per calendar since its cursor (None: never synced), one item per calendar.

        Calendars are synced together (batched, concurrently); a calendar that fails yields
        SyncFailed and does not hold up the others. An expired cursor is recovered from here,
        with a full sync, so callers never see CursorExpired.
        """
        ...

    def read(self, calendar: str, event_id: str) -> Meeting | EventRemoved:
        """One event as it reads now. Raises NotFound if the provider never heard of it."""
        ...

    def update(self, calendar: str, event_id: str, planner: Planner) -> WriteOutcome:
        """Write planner's change to the event, guarded by its ETag.

        If the event changed between read and write, it is read again and planner called again
        with the fresh event, a bounded number of times; then Conflict is raised. Events that
        the calendar's owner does not organise are never written (NOT_ORGANISER).
        """
        ...

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> Channel:
        """Ask the provider to notify address of changes until the channel expires."""
        ...

    def renew(self, channel: Channel, ttl: timedelta) -> Channel:
        """The channel extended (or replaced by a new one, where a provider cannot extend)."""
        ...

    def unwatch(self, channel: Channel) -> None:
        """Stop a channel; a channel that already expired or is unknown is not an error."""
        ...

    def language(self, calendar: str) -> str | None:
        """The calendar owner's language setting as the provider states it, or None.

        A BCP 47 or similar tag such as 'de', 'de-DE', 'en-GB', 'es-419' (a provider's '_'
        separator is given as '-'; case as the provider sent it, so compare without case).
        None when the provider has no such setting for the owner, or does not let us read it:
        not permitted (a scope or permission the admin did not grant, refused at the call or
        at the token asked for it; a sign-in that cannot act as this calendar's owner) or not
        found (403/404). Those are logged once per calendar, at info, and never raised.
        Transient failures (429, 5xx, the network) raise TransientProviderError after the usual
        retries, like every other call, so the caller may ask again later; anything else (the
        token every call uses refused, a malformed request) raises its ProviderError as any
        call would. The caller keeps the answer as long as it needs it: each call is a round
        trip, on Google possibly a token request too.
        """
        ...


@dataclass(frozen=True)
class MessageToSend:
    """A finished message as it goes on the wire, with its SMTP envelope.

    The outbox keeps messages in this form, so every attempt sends the same bytes and a send
    parses nothing: a thousand questions have to reach the mail server within seconds.
    """

    sender: str  # the envelope's MAIL FROM
    recipients: tuple[str, ...]  # its RCPT TOs
    data: bytes  # the whole message, CRLF line ends (RFC 5321 4.1.1.4)
    international: bool = False  # an address is not ASCII: needs SMTPUTF8 (RFC 6531)

    def headers(self) -> EmailMessage:
        """The message's headers (only: its body is not parsed), for logs and audit lines."""
        parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class MailOut(Protocol):
    """Hands a finished message to the mail system (SMTP)."""

    def send(self, message: MessageToSend) -> None:
        """Raises ProviderUnavailable (try again later) or a final error of the transport."""
        ...


@dataclass(frozen=True)
class InboundMail:
    uid: int
    raw: bytes  # the whole RFC 822 message, or b"" when it was too big to read
    headers: bytes = b""  # when it was too big: its From and Message-ID, to say which it was


class MailIn(Protocol):
    """The assistant's own inbox, where replies arrive."""

    def messages(self) -> Iterator[InboundMail]:
        """Every message waiting, oldest first; each stays until mark_processed."""
        ...

    def mark_processed(self, uid: int) -> None:
        """Move a handled message out of the way, so it is not read again."""
        ...

    def mark_failed(self, uid: int) -> None:
        """Move a message that could not be handled aside (never delete it): not read again."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PushNotice:
    """What one webhook call asks of the service, once its secrets were checked."""

    sync: frozenset[str] = frozenset()  # calendars to sync now
    renew: tuple[Channel, ...] = ()  # channels the provider wants renewed
    recreate: tuple[Channel, ...] = ()  # channels the provider dropped
    rejected: int = 0  # items that were not ours, or failed their secret


# Our live channels among the ids a notification names, by id: one store query for them all.
ChannelLookup = Callable[[Collection[str]], Mapping[str, Channel]]
# A provider's webhook reader: (headers, body, how to find our channels) -> what to do.
PushReader = Callable[[Mapping[str, str], bytes, ChannelLookup], PushNotice]
