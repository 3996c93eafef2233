"""Which calendars are watched: added, removed, paused and resumed by admins, and their health.

Two sources name calendars. The config file may declare them (`google.calendars`,
`microsoft.calendars`); `assistant calendars add` and the admin page add more, kept in the
database. The rule, which the CLI prints when it matters:
- the config adds the calendars it lists, and removes the ones it added and no longer lists;
- what an admin did by hand wins over the config: a calendar paused or removed with the CLI
  stays so even while the config lists it, until `assistant calendars resume` or `add`.
A paused calendar is not synced and its pending emails and invite writes wait; a removed one is
not synced either, and its open conversations are withdrawn. Both lose their push channel.
Rows are never deleted: meetings and the audit log refer to them, and a calendar added back
starts from a full sync in which its meetings are looked at afresh.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.config import Config, in_domains
from assistant.errors import AssistantError, InputError
from assistant.models import Provider
from assistant.ports import CalendarPort
from assistant.push import stop_unwatched
from assistant.store import Store
from assistant.store.tables import (
    AuditEntry,
    Conversation,
    Outbox,
    SeenMeeting,
    State,
    WatchedCalendar,
)

log = logging.getLogger(__name__)

# Conversations that are still the assistant's business: a meeting counts as "in flight" here.
IN_FLIGHT = (State.DETECTED, State.ASKED, State.REMINDED, State.ANSWERED, State.DECIDED)
PROVIDER_NAMES = {Provider.GOOGLE: "Google", Provider.MICROSOFT: "Microsoft 365"}


@dataclass(frozen=True)
class CalendarChange:
    """What one admin action did to one calendar, in words."""

    provider: Provider | None
    address: str
    outcome: str
    changed: bool = True


@dataclass(frozen=True)
class CalendarHealth:
    id: int  # the calendar's row: what /metrics labels it by, since a label must name no one
    provider: Provider
    address: str
    state: str  # watching, first sync, failing (its first sync failed), paused or removed
    source: str
    last_synced_at: datetime | None
    lag: timedelta | None  # how long a due sync has waited (while watched): workers behind
    in_flight: int
    last_error: str | None


def provider_named(name: str) -> Provider:
    """A provider from what an admin types: google, microsoft, outlook, m365."""
    aliases = {"google": Provider.GOOGLE, "gmail": Provider.GOOGLE, "workspace": Provider.GOOGLE,
               "microsoft": Provider.MICROSOFT, "outlook": Provider.MICROSOFT,
               "m365": Provider.MICROSOFT, "office365": Provider.MICROSOFT}
    try:
        return aliases[name.strip().lower()]
    except KeyError:
        raise InputError(f"{name!r} is not a provider; use google or microsoft") from None


def read_csv(text: str, where: str) -> list[tuple[Provider | None, str]]:
    """(provider, address) pairs from CSV: an `address` (or `email`) column, `provider` optional.

    A file without a header row is read as address[,provider] per line.
    """
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    first_line = 1
    if "address" in header or "email" in header:
        at = header.index("address") if "address" in header else header.index("email")
        provider_at = header.index("provider") if "provider" in header else None
        rows, first_line = rows[1:], 2
    else:
        at, provider_at = 0, 1
    pairs: list[tuple[Provider | None, str]] = []
    for number, row in enumerate(rows, start=first_line):
        if len(row) <= at or not row[at].strip():
            raise InputError(f"{where}: row {number} has no address")
        named = row[provider_at].strip() if provider_at is not None and len(row) > provider_at \
            else ""
        try:
            pairs.append((provider_named(named) if named else None, row[at].strip()))
        except InputError as err:
            raise InputError(f"{where}: row {number}: {err}") from None
    return pairs


def reconcile(session: Session, config: Config, now: datetime) -> None:
    """Bring the database in line with the calendars the config lists (see the module doc).

    Every row is read as plain columns and only those to change are loaded as objects: a
    worker starts with this, and ten thousand objects kept the write lock for half a second.
    """
    Store.lock_calendar_list(session)
    wanted = {(Provider.GOOGLE.value, a.lower()): a for a in config.google.calendars}
    wanted |= {(Provider.MICROSOFT.value, a.lower()): a for a in config.microsoft.calendars}
    known = {(row.provider, row.address.lower()): row for row in session.execute(select(
        WatchedCalendar.id, WatchedCalendar.provider, WatchedCalendar.address,
        WatchedCalendar.source, WatchedCalendar.removed_at, WatchedCalendar.removed_by))}
    for key, address in wanted.items():
        row = known.get(key)
        if row is None:
            session.add(WatchedCalendar(provider=key[0], address=address, source="config",
                                        sync_due=now))
        elif row.removed_at is not None and row.removed_by == "config":
            # listed again after it had been left out
            _restore(session, _calendar(session, row.id), now)
    for key, row in known.items():
        if key not in wanted and row.source == "config" and row.removed_at is None:
            _withdraw(session, _calendar(session, row.id), now, "config")


def _calendar(session: Session, row_id: int) -> WatchedCalendar:
    found = session.get(WatchedCalendar, row_id)
    assert found is not None  # read in this transaction, which holds the calendar list
    return found


def health(session: Session, now: datetime) -> list[CalendarHealth]:
    """Every calendar the assistant knows, watched ones first, with its meetings in flight."""
    in_flight = dict(session.execute(
        select(SeenMeeting.calendar_id, func.count())
        .join(Conversation, Conversation.meeting_id == SeenMeeting.id)
        .where(Conversation.state.in_(IN_FLIGHT))
        .group_by(SeenMeeting.calendar_id)).all())
    rows = session.scalars(select(WatchedCalendar).order_by(
        WatchedCalendar.removed_at.is_not(None), WatchedCalendar.provider,
        WatchedCalendar.address)).all()
    return [_health_of(row, in_flight.get(row.id, 0), now) for row in rows]


def _health_of(row: WatchedCalendar, in_flight: int, now: datetime) -> CalendarHealth:
    if row.removed_at is not None:
        state = "removed"
    elif row.paused:
        state = "paused"
    elif row.last_synced_at is None:
        state = "failing" if row.last_error else "first sync"
    else:
        state = "watching"
    lag = max(now - row.sync_due, timedelta(0)) if row.watching else None
    return CalendarHealth(row.id, Provider(row.provider), row.address, state, row.source,
                          row.last_synced_at, lag, in_flight, row.last_error)


class CalendarAdmin:
    """An admin's changes to the watched calendars, each audited.

    `ports` (the signed-in calendar adapters) are only needed to stop push channels at once;
    without them the worker's channel job stops them on its next run.
    """

    def __init__(self, store: Store, config: Config, *, clock: Callable[[], datetime],
                 ports: Callable[[], Mapping[Provider, CalendarPort]] | None = None,
                 actor: str = "cli") -> None:
        self.store, self.config, self.clock = store, config, clock
        self._ports, self.actor = ports, actor

    def add(self, provider: Provider | None,
            addresses: Iterable[str | tuple[Provider | None, str]]) -> list[CalendarChange]:
        signed_in = signed_in_providers(self.config)
        if provider is None and len(signed_in) == 1:
            provider = signed_in[0]  # the only provider there is: no need to say it
        pairs = self._known_providers(list(_pairs(provider, addresses)))
        for chosen, address in pairs:  # every address checked before any is added
            try:
                self._check_addable(chosen, address)
            except InputError as err:
                more = " (nothing was added)" if len(pairs) > 1 else ""
                raise InputError(f"{err}{more}") from None
        changes = []
        with self.store.transaction() as session:
            Store.lock_calendar_list(session)
            for chosen, address in pairs:
                assert chosen is not None
                changes.append(self._add_one(session, chosen, address))
        return changes

    def remove(self, provider: Provider | None,
               addresses: Iterable[str | tuple[Provider | None, str]]) -> list[CalendarChange]:
        return self._change(provider, addresses, self._remove_one)

    def pause(self, provider: Provider | None,
              addresses: Iterable[str | tuple[Provider | None, str]]) -> list[CalendarChange]:
        return self._change(provider, addresses, self._pause_one)

    def resume(self, provider: Provider | None,
               addresses: Iterable[str | tuple[Provider | None, str]]) -> list[CalendarChange]:
        return self._change(provider, addresses, self._resume_one)

    def _known_providers(self, pairs: list[tuple[Provider | None, str]]
                         ) -> list[tuple[Provider | None, str]]:
        """Pairs with the provider filled in where the address is known on exactly one."""
        with self.store.transaction() as session:
            return [(chosen, address) if chosen is not None else (
                _only([Provider(row.provider) for row in _matching(session, None, address)]),
                address) for chosen, address in pairs]

    # -- one calendar each ---------------------------------------------------------------------

    def _check_addable(self, provider: Provider | None, address: str) -> None:
        if provider is None:
            raise InputError(f"{address}: say which provider (--provider google|microsoft, or "
                             "a provider column in the CSV)")
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise InputError(f"{address!r} is not an email address")
        domains = self.config.organisation.domains
        if not in_domains(address.rpartition("@")[2], domains):
            raise InputError(f"{address} is outside organisation.domains ({', '.join(domains)}); "
                             "only your own people's calendars can be watched")
        if provider not in signed_in_providers(self.config):
            command = "google" if provider is Provider.GOOGLE else "microsoft"
            raise InputError(f"{PROVIDER_NAMES[provider]} has no sign-in in the config: run "
                             f"`assistant auth {command}` first")

    def _add_one(self, session: Session, provider: Provider, address: str) -> CalendarChange:
        row = _find(session, provider, address)
        now = self.clock()
        if row is None:
            session.add(WatchedCalendar(provider=provider.value, address=address,
                                        source=self.actor, sync_due=now))
            self._audit(session, address, "calendar_added", f"added by {self.actor}")
            return CalendarChange(provider, address, "added; its first sync is due now")
        if row.removed_at is not None:
            _restore(session, row, now)
            row.paused = False  # an admin's add means: watch it
            # Now the admin's: a config that no longer lists it must not remove it again.
            row.source = self.actor
            self._audit(session, address, "calendar_added", f"added back by {self.actor}")
            return CalendarChange(provider, row.address, "added back; a full sync is due now")
        if row.paused:
            return CalendarChange(provider, row.address, "already added, but paused: "
                                  "`assistant calendars resume` watches it again", False)
        return CalendarChange(provider, row.address, "already watched", False)

    def _remove_one(self, session: Session, row: WatchedCalendar) -> CalendarChange:
        if row.removed_at is not None:
            return CalendarChange(Provider(row.provider), row.address, "already removed", False)
        withdrawn = _withdraw(session, row, self.clock(), self.actor)
        self._audit(session, row.address, "calendar_removed",
                    f"removed by {self.actor}; {withdrawn} open conversation(s) withdrawn")
        words = "removed" + (f"; {withdrawn} open conversation(s) withdrawn" if withdrawn else "")
        return CalendarChange(Provider(row.provider), row.address, words + self._note(row))

    def _pause_one(self, session: Session, row: WatchedCalendar) -> CalendarChange:
        provider = Provider(row.provider)
        if row.removed_at is not None:
            return CalendarChange(provider, row.address, "removed, not paused: `assistant "
                                  "calendars add` watches it again", False)
        if row.paused:
            return CalendarChange(provider, row.address, "already paused", False)
        row.paused = True
        self._audit(session, row.address, "calendar_paused", f"paused by {self.actor}")
        return CalendarChange(provider, row.address, "paused: no syncing, and its emails and "
                              "invite writes wait until it is resumed" + self._note(row))

    def _resume_one(self, session: Session, row: WatchedCalendar) -> CalendarChange:
        provider = Provider(row.provider)
        if row.removed_at is not None:
            return CalendarChange(provider, row.address, "removed: `assistant calendars add` "
                                  "watches it again", False)
        if not row.paused:
            return CalendarChange(provider, row.address, "not paused", False)
        row.paused, row.sync_due = False, self.clock()
        # Digests (about meetings of several calendars, perhaps) were put off while it was
        # paused: look at them again now rather than at their next turn.
        session.execute(update(Outbox).where(Outbox.state == "pending",
                                             Outbox.email_kind == "digest")
                        .values(next_attempt_at=self.clock()))
        self._audit(session, row.address, "calendar_resumed", f"resumed by {self.actor}")
        return CalendarChange(provider, row.address, "resumed; a sync is due now")

    # -- shared ----------------------------------------------------------------------------------

    def _change(self, provider: Provider | None,
                addresses: Iterable[str | tuple[Provider | None, str]],
                one: Callable[[Session, WatchedCalendar], CalendarChange]) -> list[CalendarChange]:
        changes: list[CalendarChange] = []
        with self.store.transaction() as session:
            for chosen, address in _pairs(provider, addresses):
                rows = _matching(session, chosen, address)
                if not rows:
                    changes.append(CalendarChange(chosen, address, "not known: nothing to do "
                                                  "(`assistant calendars list` shows them all)",
                                                  False))
                changes.extend(one(session, row) for row in rows)
        if any(change.changed for change in changes):
            self.stop_channels()
        return changes

    def stop_channels(self) -> int:
        """Stop the push channels of calendars no longer watched; how many were stopped."""
        if self._ports is None:
            return 0
        try:
            return stop_unwatched(self.store, self._ports)
        except AssistantError as err:  # e.g. a secret not in this shell's environment
            log.warning("push channels not stopped from here (%s); the worker stops them on "
                        "its next channel check", err)
            return 0

    def _note(self, row: WatchedCalendar) -> str:
        listed = {a.lower() for a in (self.config.google.calendars
                                      if row.provider == Provider.GOOGLE.value
                                      else self.config.microsoft.calendars)}
        if row.address.lower() in listed:
            return " (the config lists it too; this change wins over the config)"
        return ""

    def _audit(self, session: Session, address: str, action: str, detail: str) -> None:
        session.add(AuditEntry(at=self.clock(), calendar=address, action=action, detail=detail))


def _pairs(provider: Provider | None, addresses: Iterable[str | tuple[Provider | None, str]]
           ) -> Iterable[tuple[Provider | None, str]]:
    for item in addresses:
        if isinstance(item, tuple):
            yield item[0] or provider, item[1].strip()
        else:
            yield provider, item.strip()


def _only(providers: list[Provider]) -> Provider | None:
    return providers[0] if len(providers) == 1 else None


def _find(session: Session, provider: Provider, address: str) -> WatchedCalendar | None:
    found = _matching(session, provider, address)
    return found[0] if found else None


def _matching(session: Session, provider: Provider | None, address: str
              ) -> list[WatchedCalendar]:
    query = select(WatchedCalendar).where(func.lower(WatchedCalendar.address) == address.lower())
    if provider is not None:
        query = query.where(WatchedCalendar.provider == provider.value)
    return list(session.scalars(query))


def _restore(session: Session, row: WatchedCalendar, now: datetime) -> None:
    """Watch a removed calendar again (still paused, if an admin had paused it), from a full
    sync in which every meeting is news."""
    row.removed_at, row.removed_by = None, None
    row.cursor, row.sync_due, row.last_error, row.last_synced_at = None, now, None, None
    session.execute(update(SeenMeeting).where(SeenMeeting.calendar_id == row.id)
                    .values(etag=""))


def _withdraw(session: Session, row: WatchedCalendar, now: datetime, by: str) -> int:
    """Stop watching row: its open conversations end and their pending effects are dropped."""
    row.removed_at, row.removed_by = now, by
    row.lease_owner, row.lease_expires = None, None
    talks = session.scalars(select(Conversation).join(SeenMeeting).where(
        SeenMeeting.calendar_id == row.id, Conversation.state.in_(IN_FLIGHT))
        .with_for_update()).all()
    for talk in talks:
        talk.state, talk.why = State.SKIPPED, "its calendar is no longer watched"
        session.add(AuditEntry.of(talk, now, "withdrawn", "the calendar was removed"))
    # Every effect still waiting for the calendar's meetings goes, whatever their state (a
    # confirmation or a rewrite of an annotated meeting too); digests are checked at delivery.
    ours = select(Conversation.id).join(SeenMeeting).where(SeenMeeting.calendar_id == row.id)
    session.execute(update(Outbox).where(Outbox.conversation_id.in_(ours),
                                         Outbox.state == "pending")
                    .values(state="cancelled", done_at=now, lease_owner=None,
                            lease_expires=None))
    return len(talks)


def signed_in_providers(config: Config) -> list[Provider]:
    """The providers the config can sign in to (their calendars can be watched)."""
    sections = {Provider.GOOGLE: config.google, Provider.MICROSOFT: config.microsoft}
    return [provider for provider, section in sections.items() if section.signed_in]
