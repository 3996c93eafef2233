"""The one place the core meets the integrations: a running Service built from a config.

The core (assistant/) speaks only to ports; this module picks each port's implementation the
config asks for, so `assistant run`, the demo and the tests all build the same service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from assistant.answer_links import AnswerLinks
from assistant.calendar_admin import signed_in_providers
from assistant.calendar_sync import BatchedCalendar
from assistant.config import Config, Microsoft
from assistant.dry_run import DryRunCalendar, DryRunInbox, DryRunMail
from assistant.errors import ConfigError
from assistant.models import Provider
from assistant.ports import (
    CalendarPort,
    ChannelLookup,
    MailIn,
    MailOut,
    PushNotice,
    PushReader,
)
from assistant.reply_tokens import ReplyTokens, token_secret
from assistant.retry import RetryPolicy
from assistant.service import Outside, Service
from assistant.store import Store
from integrations import google_calendar, microsoft_graph
from integrations.imap_inbox import ImapInbox
from integrations.sandbox.microsoft_identity import PUBLIC_LOGIN, LoginRedirect
from integrations.smtp_mail import smtp_from_config

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Built:
    """A service and what must be closed with it."""

    service: Service
    push_readers: Mapping[Provider, PushReader]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        _close_all(self.closers)


def build_service(
    config: Config,
    *,
    retry: RetryPolicy = RetryPolicy(),
    mailer: MailOut | None = None,
    inbox: MailIn | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    worker: str | None = None,
    database_patience_seconds: float = 0.0,
) -> Built:
    """The service the config describes; mailer and inbox replace the configured ones.

    With database_patience_seconds, a database server that is not there yet is waited for
    that long (see Store.open_waiting) instead of failing at once.
    """
    if config.mail is None:
        raise ConfigError("mail", ["missing: the service needs a [mail] section with the "
                                   "sender, [mail.smtp] and [mail.imap] (see the example config)"])
    # Everything the config names is checked before the database is touched, so a bad
    # config leaves nothing behind.
    secret = token_secret(config.mail)
    closers: list[Callable[[], None]] = []  # what is opened, to close with the service
    if mailer is None and config.policy.dry_run:
        mailer = DryRunMail()
    elif mailer is None:
        smtp = smtp_from_config(config.mail, retry)
        closers.append(smtp.close)  # the connections it keeps open between messages
        mailer = smtp
    try:
        adapters = calendar_ports(config, retry, closers)
        calendars: Mapping[Provider, CalendarPort] = (
            {provider: DryRunCalendar(port) for provider, port in adapters.items()}
            if config.policy.dry_run else adapters)
        if inbox is None and config.mail.imap is not None:
            inbox = ImapInbox.from_config(config.mail)
        if inbox is not None:
            closers.append(inbox.close)
            if config.policy.dry_run:
                inbox = DryRunInbox(inbox)
        store = Store.open_waiting(config.service.database_url, database_patience_seconds)
    except BaseException:
        _close_all(closers)
        raise
    closers.append(store.close)
    links = AnswerLinks(secret, config.mail.public_url) if config.mail.public_url else None
    service = Service(config, store, Outside(calendars, mailer, inbox),
                      tokens=ReplyTokens(secret), links=links, worker=worker, clock=clock)
    closers.append(service.close)  # first: its delivery threads may still be sending
    return Built(service, PUSH_READERS, closers)


def _close_all(closers: list[Callable[[], None]]) -> None:
    for close in reversed(closers):
        close()


@contextmanager
def opened_calendar_ports(config: Config, retry: RetryPolicy = RetryPolicy()
                          ) -> Iterator[dict[Provider, BatchedCalendar]]:
    """calendar_ports for the length of a block (a command's), closed after it."""
    closers: list[Callable[[], None]] = []
    try:
        yield calendar_ports(config, retry, closers)
    finally:
        _close_all(closers)


def calendar_ports(config: Config, retry: RetryPolicy, closers: list[Callable[[], None]]
                   ) -> dict[Provider, BatchedCalendar]:
    """An adapter per provider the config signs in to; what to close goes into closers."""
    # Every provider the config signs in to: calendars may be added later, by the CLI.
    signed_in = signed_in_providers(config)
    calendars: dict[Provider, BatchedCalendar] = {}
    if Provider.GOOGLE in signed_in:
        adapter = google_calendar.google_calendar_from_config(config, retry)
        closers.append(adapter.close)
        calendars[Provider.GOOGLE] = adapter
    if Provider.MICROSOFT in signed_in:
        config, login = _local_sign_in(config)
        outlook = microsoft_graph.microsoft_calendar_from_config(config, retry, login_http=login)
        closers.append(outlook.close)
        if login is not None:
            closers.append(login.close)
        calendars[Provider.MICROSOFT] = outlook
    return calendars


def _local_sign_in(config: Config) -> tuple[Config, requests.Session | None]:
    microsoft, login = local_login(config.microsoft)
    return config.model_copy(update={"microsoft": microsoft}), login


def local_login(microsoft: Microsoft) -> tuple[Microsoft, requests.Session | None]:
    """msal signs in only over https to a real authority; an emulator on this machine is
    reached by keeping the public authority and sending its requests here instead.

    The section as msal should be given it, and the session that reaches the emulator (None
    for a real authority)."""
    authority = microsoft.authority
    if urlsplit(authority).hostname not in LOOPBACK:
        return microsoft, None
    return microsoft.model_copy(update={"authority": PUBLIC_LOGIN}), LoginRedirect(authority)


def _google_push(headers: Mapping[str, str], body: bytes,
                 channels: ChannelLookup) -> PushNotice:
    lower = {name.lower(): value for name, value in headers.items()}
    if lower.get("x-goog-resource-state") == "sync":
        return PushNotice()  # the hello a new channel sends, often before we saved it: no news
    named = channels([lower.get("x-goog-channel-id", "")])
    calendar = google_calendar.calendar_to_sync(headers, named)
    return PushNotice(sync=frozenset({calendar})) if calendar else PushNotice(rejected=1)


def _graph_push(headers: Mapping[str, str], body: bytes,
                channels: ChannelLookup) -> PushNotice:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return PushNotice(rejected=1)
    notices = microsoft_graph.read_notifications(payload, channels)
    return PushNotice(sync=frozenset(notices.sync), renew=tuple(notices.renew),
                      recreate=tuple(notices.recreate), rejected=notices.rejected)


PUSH_READERS: Mapping[Provider, PushReader] = {Provider.GOOGLE: _google_push,
                                               Provider.MICROSOFT: _graph_push}
