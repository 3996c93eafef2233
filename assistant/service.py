"""The pipeline: calendars in, conversations kept, effects out, each exactly once.

provider change → Meeting → assess → conversation step → outbox (same transaction) → delivery;
reply → inbox → judge → answers → recommendation → annotation write (outbox) → confirmation.

Every job may run on several workers at once (PostgreSQL) and may be killed at any point:
- calendars are claimed with leases; a calendar's changes and its new cursor commit together,
  so a crash repeats a sync (its meetings are recognised by ETag) and never skips one;
- each effect is an outbox row with an idempotency key, written in the transaction that made
  the decision; delivery marks it done together with whatever follows from it (the state, the
  confirmation); an email keeps one Message-ID across attempts, so the one retry a crash
  between "sent" and "marked done" can cause is the same message, which mailbox servers drop;
- an event write is planned from the event as it reads at that moment, so repeating one finds
  the note already there and writes nothing;
- a reply is recorded by Message-ID in the transaction that applies it, before it is moved.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from assistant import calendar_admin, conversation, follow_ups
from assistant.annotate import AnnotationPlan
from assistant.answer_links import DECISION_ROW, AnswerLinks, LinkClaims
from assistant.answer_memory import AnswerMemory, remember
from assistant.assess import Assessment, Assessor
from assistant.checklist import Checklist, load_checklist
from assistant.config import Config
from assistant.emails import (
    DigestItem,
    OneClick,
    OutgoingEmail,
    Sender,
    clarification_email,
    confirmation_email,
    digest_email,
    question_email,
)
from assistant.errors import (
    AssistantError,
    AuthFailed,
    Conflict,
    ProviderError,
    TransientProviderError,
    UnreadableMail,
)
from assistant.language.catalogs import negotiate
from assistant.metrics import Metrics
from assistant.models import (
    EventRemoved,
    Format,
    HardFacts,
    Meeting,
    Provenance,
    Provider,
    Recommendation,
    RowAnswer,
    Side,
)
from assistant.outbox import Effects, message_of
from assistant.ports import (
    CalendarChanges,
    CalendarPort,
    InboundMail,
    MailIn,
    MailOut,
    SyncFailed,
    WriteResult,
)
from assistant.presenting import recommendation_from_json, recommendation_json
from assistant.push import PushChannels
from assistant.redaction import redacted, without_tokens
from assistant.rendering import Renderer
from assistant.reply_acceptance import Answered, Ignored, OpenQuestion, Unclear, judge_reply
from assistant.reply_mail import ReplyEmail, mail_headers, read_reply_email
from assistant.reply_tokens import BadToken, ReplyTokens
from assistant.store import Store
from assistant.store.codec import meeting_from_json, meeting_to_json
from assistant.store.database import in_chunks, update_each
from assistant.store.tables import (
    Answer,
    AuditEntry,
    Conversation,
    HandledReply,
    JobLease,
    Outbox,
    RecommendationRecord,
    SeenMeeting,
    State,
    UsedLink,
    WatchedCalendar,
)

log = logging.getLogger(__name__)

# Where a reply still counts: while asked, and after the decision too (the confirmation says
# "reply to change it") until the meeting starts.
_ANSWERABLE = (State.ASKED, State.REMINDED, State.ANSWERED, State.DECIDED, State.ANNOTATED)
CLAIM_CALENDARS = 5_000  # calendars per provider synced in one round; more wait for the next
QUIET_TOGETHER = 500  # calendars with nothing new, written in one statement
CHANGED_TOGETHER = 50  # calendars with changes, written in one transaction
ASK_TOGETHER = 20  # organisers asked in one transaction
# An organiser's language as their provider states it is read again this long after: people
# rarely change it, and each read is a round trip (Google's a token request too).
READ_LANGUAGE_AGAIN = timedelta(days=30)
LANGUAGE_READERS = 16  # provider round trips for languages at once
LANGUAGES_TOGETHER = 400  # calendars whose languages are read, then written, together
TOKEN_VALID_AFTER_MEETING = timedelta(days=90)
HISTORY_WEEKS = 6  # inference sees the organiser's meetings 4x this back and this far ahead


@dataclass(frozen=True)
class Outside:
    """The systems the service talks to, each behind its port."""

    calendars: Mapping[Provider, CalendarPort]
    mailer: MailOut
    inbox: MailIn | None = None


class Service:
    def __init__(
        self,
        config: Config,
        store: Store,
        outside: Outside,
        *,
        tokens: ReplyTokens,
        links: AnswerLinks | None = None,
        worker: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        checklist: Checklist | None = None,
        renderer: Renderer | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if config.mail is None:
            raise AssistantError("the service needs a [mail] section: who it writes as")
        self.config, self.store, self.outside = config, store, outside
        self.tokens, self.links = tokens, links
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.checklist = checklist or load_checklist(config.checklist)
        self.renderer = renderer or Renderer()
        self.assessor = Assessor(config, self.checklist, self.renderer)
        self.sender = Sender(config.mail.sender, config.organisation.name)
        self.lease = timedelta(seconds=config.service.lease_seconds)
        self.metrics = metrics or Metrics()
        # Through self.clock at each call, so that a clock set later (tests) reaches it too.
        self.effects = Effects(store, self.sender, lambda: self.clock(), self.lease,
                               dry_run=config.policy.dry_run)
        self.push = PushChannels(self)
        self._delivering = threading.Lock()
        # Emails and invite writes are mostly waiting on a server: a few at once.
        self._senders = ThreadPoolExecutor(config.service.delivery_threads,
                                           thread_name_prefix="deliver")
        self._deliver_wanted = threading.Event()  # deliver() was called while another ran
        # Called when new effects are queued mid-job, so that delivery starts before the job
        # ends; the worker points it at its delivery job (by default nothing happens).
        self.effects_waiting: Callable[[], None] = lambda: None
        self._stopping = threading.Event()  # finish the current step, start no new one
        self._ask_again_soon = threading.Event()  # a digest went stale: ask its rest again
        self._detected = _RecentAssessments()
        self._language_reader: threading.Thread | None = None
        self._closing = threading.Event()  # close() was called: background work ends

    # -- the calendars to watch ------------------------------------------------------------------

    def reconcile_calendars(self) -> None:
        """Watch what the config lists (see assistant.calendar_admin for who wins)."""
        with self.store.transaction() as session:
            calendar_admin.reconcile(session, self.config, self.clock())

    def sync_soon(self, provider: Provider, address: str) -> None:
        """A push notification said this calendar changed: sync it at the next chance."""
        with self.store.transaction() as session:
            session.execute(update(WatchedCalendar)
                            .where(WatchedCalendar.provider == provider.value,
                                   WatchedCalendar.address == address)
                            .values(sync_due=self.clock()))

    def stop_soon(self) -> None:
        """Let the running steps end at their next row or calendar, leaving the rest queued."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """stop_soon() was called: a long step should start nothing new."""
        return self._stopping.is_set()

    def close(self) -> None:
        """Let the delivery threads finish their rows and end (their SMTP connections too),
        and the languages being read."""
        self._closing.set()
        self._senders.shutdown(wait=True)
        if self._language_reader is not None:
            self._language_reader.join()

    def release_leases(self) -> None:
        """Give back everything this worker holds, so others need not wait for it to expire."""
        with self.store.transaction() as session:
            for model in (WatchedCalendar, Outbox):
                session.execute(update(model).where(model.lease_owner.startswith(self.worker + "/"))
                                .values(lease_owner=None, lease_expires=None))
            session.execute(update(JobLease).where(JobLease.owner.startswith(self.worker + "/"))
                            .values(owner=None, expires=None))

    # -- one full cycle, for `assistant run --once` and tests ------------------------------------

    def cycle(self) -> str:
        """Everything once, every calendar synced whether due or not; what it did, in words."""
        self.reconcile_calendars()
        changes = self.sync(every_calendar=True)
        replies = self.read_replies()
        self.follow_up()
        delivered = self.deliver()
        watched = sum(self.watched().values())
        return (f"one cycle: {watched} calendars watched, {changes} changed events handled, "
                f"{replies} replies read, {delivered} emails and invite writes "
                + ("a dry run did not make (see its log)" if self.config.policy.dry_run
                   else "delivered"))

    def watched(self) -> dict[str, int]:
        """How many calendars are watched, per provider's name (paused and removed left out)."""
        with self.store.transaction() as session:
            rows = session.execute(select(WatchedCalendar.provider, func.count())
                                   .where(WatchedCalendar.watched())
                                   .group_by(WatchedCalendar.provider)).all()
        return {calendar_admin.PROVIDER_NAMES[Provider(provider)]: count
                for provider, count in rows}

    # -- sync ------------------------------------------------------------------------------------

    def sync(self, *, every_calendar: bool = False) -> int:
        """Sync every calendar that is due (or every one); the number of changes handled.

        Each provider's calendars sync in a thread of their own while this one writes what
        they found, so Google's round trips and Microsoft's overlap, and the store is written
        by one thread. Questions go out as the round goes, not only at its end.
        """
        handled = 0
        self._start_reading_languages()
        if every_calendar:
            with self.store.transaction() as session:
                session.execute(update(WatchedCalendar).values(sync_due=self.clock()))
        while not self._stopping.is_set() and (claimed := self._claim_calendars()):
            handled += self._sync_round(claimed)
        self.ask()
        return handled

    def _claim_calendars(self) -> dict[Provider, dict[str, Claimed]]:
        """Due calendars, up to CLAIM_CALENDARS of each provider, so that both sync at once."""
        now = self.clock()
        due_again = now + timedelta(seconds=self.config.service.sync_interval_seconds)
        claimed: dict[Provider, dict[str, Claimed]] = {}
        with self.store.transaction() as session:
            for provider in Provider:
                owner = self._claim_id()
                # Due again one interval on; a failed or interrupted sync is simply repeated.
                rows = Store.claim_columns(
                    session, WatchedCalendar,
                    (WatchedCalendar.id, WatchedCalendar.address, WatchedCalendar.cursor),
                    owner=owner, now=now, lease=self.lease, limit=CLAIM_CALENDARS,
                    where=[WatchedCalendar.provider == provider.value, WatchedCalendar.watched(),
                           WatchedCalendar.sync_due <= now],
                    order_by=[WatchedCalendar.sync_due], also={"sync_due": due_again})
                if rows:
                    claimed[provider] = {address: Claimed(row_id, address, cursor, owner)
                                         for row_id, address, cursor in rows}
        return claimed

    def _sync_round(self, claimed: dict[Provider, dict[str, Claimed]]) -> int:
        handled = 0
        calendars = {(provider, address): row for provider, rows in claimed.items()
                     for address, row in rows.items()}
        quiet: list[tuple[Claimed, CalendarChanges]] = []
        changed: list[tuple[Claimed, CalendarChanges]] = []
        for provider, result in self._provider_results(claimed):
            calendar = calendars[(provider, result.calendar)]
            if isinstance(result, SyncFailed):
                self._sync_failed([calendar], without_tokens(str(result.error)))
            elif result.changes:
                changed.append((calendar, result))
            else:
                quiet.append((calendar, result))
            if len(quiet) >= QUIET_TOGETHER:
                self._apply_quiet(quiet)
                quiet = []
            if len(changed) >= CHANGED_TOGETHER:
                if news := self._apply(changed):
                    handled += news
                    self.ask()  # the meetings found so far are asked about as the round goes on
                    self.effects_waiting()
                changed = []
        self._apply_quiet(quiet)
        return handled + self._apply(changed)

    def _provider_results(self, claimed: dict[Provider, dict[str, Claimed]]
                          ) -> Iterator[tuple[Provider, CalendarChanges | SyncFailed]]:
        """Every claimed calendar's result, as each provider's thread delivers them."""
        # Unbounded: a feeder must never block on a writer that stopped reading (it raised).
        results: _Results = queue.Queue()
        running = 0
        for provider, calendars in claimed.items():
            port = self.outside.calendars.get(provider)
            if port is None:
                self._sync_failed(calendars.values(), f"no {provider.value} sign-in configured")
                continue
            cursors = {c.address: c.cursor for c in calendars.values()}
            threading.Thread(target=_feed, args=(port, provider, cursors, results),
                             name=f"sync-{provider.value}", daemon=True).start()
            running += 1
        while running:
            item = results.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    def _sync_failed(self, calendars: Iterable[Claimed], error: str) -> None:
        with self.store.transaction() as session:
            for calendar in calendars:
                row = session.get(WatchedCalendar, calendar.id)
                if row is not None and row.lease_owner == calendar.lease_owner:
                    row.last_error, row.lease_owner, row.lease_expires = error, None, None
                log.warning("sync of %s failed: %s", redacted(calendar.address), error)
                self.metrics.error("sync")

    def _apply_quiet(self, results: list[tuple[Claimed, CalendarChanges]]) -> None:
        """Calendars with nothing new: synced now, with the cursor the provider gave.

        Most of a poll is such calendars, so they are written together (see update_each).
        Only calendars still leased to us are written: another worker that took one over
        repeats its sync.
        """
        if not results:
            return
        with self.store.transaction() as session:
            update_each(session, WatchedCalendar.__table__,
                        [{"id": calendar.id, "lease_owner": calendar.lease_owner,
                          "cursor": result.cursor} for calendar, result in results],
                        key=("id", "lease_owner"),
                        also={"last_synced_at": self.clock(), "last_error": None,
                              "lease_owner": None, "lease_expires": None})

    def _apply(self, results: list[tuple[Claimed, CalendarChanges]]) -> int:
        """Calendars' changes and their new cursors, together in one transaction.

        Each kind of row is read once for the whole batch (the calendars, the meetings already
        seen, the organisers' history), not once per calendar or meeting.
        """
        if not results:
            return 0
        now = self.clock()
        with self.store.transaction() as session:
            locked = {row.id: row for row in session.scalars(
                select(WatchedCalendar).where(WatchedCalendar.id.in_([c.id for c, _ in results]))
                .with_for_update().execution_options(populate_existing=True))}
            # A calendar whose lease ran out is another worker's now: it repeats this sync.
            ours = [(locked[claimed.id], result) for claimed, result in results
                    if claimed.id in locked
                    and locked[claimed.id].lease_owner == claimed.lease_owner]
            known = _seen_meetings(session, [(calendar.id, change.event_id)
                                             for calendar, result in ours
                                             for change in result.changes])
            fresh = [self._remember(session, calendar, change, now,
                                    known.get((calendar.id, change.event_id)))
                     for calendar, result in ours for change in result.changes]
            news = [(seen, change) for seen, change in fresh if seen is not None]
            session.flush()  # every new meeting has its id before the history is read
            history = History.of_session(session, now)
            history.read([change.organizer.email for _, change in news
                          if isinstance(change, Meeting)])
            for seen, change in news:
                self._step(session, seen, change, history, now)
            for calendar, result in ours:
                calendar.cursor, calendar.last_synced_at = result.cursor, now
                calendar.last_error, calendar.lease_owner, calendar.lease_expires = None, None, None
        return len(news)

    def _remember(self, session: Session, calendar: WatchedCalendar,
                  change: Meeting | EventRemoved, now: datetime, seen: SeenMeeting | None
                  ) -> tuple[SeenMeeting | None, Meeting | EventRemoved]:
        """Store what the event now says (seen: as stored so far); None when it is not news
        (same ETag, or unknown and gone)."""
        if isinstance(change, EventRemoved) or change.cancelled:
            if seen is None or seen.removed:
                return None, change
            seen.removed, seen.last_seen_at = True, now
            return seen, change
        if seen is not None and seen.etag == change.etag and not seen.removed:
            return None, change
        if seen is None:
            seen = SeenMeeting(calendar_id=calendar.id, event_id=change.event_id,
                               first_seen_at=now, conversation=None)
            session.add(seen)
        elif change.mark is None and seen.snapshot.get("mark"):
            # Graph's delta query cannot expand extended properties, so its listings come
            # without our mark: the one we wrote last still tells our changes from a person's.
            change = replace(change, mark=meeting_from_json(seen.snapshot).mark)
        span = change.timed_span
        seen.series_id, seen.etag, seen.removed = change.series_id, change.etag, False
        seen.organiser, seen.title = change.organizer.email.lower(), change.title
        seen.start_at = span[0] if span else None
        seen.snapshot, seen.last_seen_at = meeting_to_json(change), now
        return seen, change

    def _step(self, session: Session, seen: SeenMeeting, change: Meeting | EventRemoved,
              history: History, now: datetime) -> None:
        talk = seen.conversation
        if isinstance(change, EventRemoved) or change.cancelled:
            if talk is not None and talk.state not in (State.CANCELLED, State.SKIPPED):
                self._cancel(session, talk, now, "the meeting was cancelled")
            return
        assessment = self._assess(session, change, talk, history.of(change, seen.id))
        if talk is None or talk.state in (State.SKIPPED, State.CANCELLED):
            self._open(session, seen, talk, assessment, now)
        elif State(talk.state).open:
            self._still_open(session, talk, assessment, now)
        elif talk.state == State.ANNOTATED and not talk.left_alone and \
                conversation.rewrite_needed(change, self._decided_plan(session, talk, change)):
            self._queue_annotation(session, talk, now, "the meeting changed")
        elif talk.state in (State.ANSWERED, State.DECIDED) and not self._annotation_pending(
                session, talk):
            # Its write failed for good earlier (say, a sign-in was missing): try afresh.
            self._queue_annotation(session, talk, now, "decided")

    def _decided_plan(self, session: Session, talk: Conversation,
                      meeting: Meeting) -> AnnotationPlan | None:
        decided = self._decided(session, talk)
        return self.assessor.plan_decided(meeting, decided) if decided else None

    def _open(self, session: Session, seen: SeenMeeting, talk: Conversation | None,
              assessment: Assessment, now: datetime) -> None:
        begin = conversation.start(assessment, now, self.config.policy)
        if talk is None:  # flushed with the rest of the batch, unless decided below
            talk = Conversation.first_for(seen, now)
            session.add(talk)
        elif begin.opening is conversation.Opening.SKIP:
            talk.why = begin.why
            return  # still nothing to do
        talk.why = begin.why  # a new conversation's first reason, or the reopened one's
        talk.deadline_at = begin.deadline
        talk.customer_domains = list(assessment.detection.customer_domains)
        if begin.opening is conversation.Opening.SKIP:
            talk.state = State.SKIPPED
            return
        talk.detected_at, talk.cancelled_at = now, None
        talk.round += 1
        self.metrics.count("meetings_detected")
        self._audit(session, talk, "detected", f"{seen.title!r}: {begin.why}")
        if begin.opening is conversation.Opening.DECIDE:
            session.flush()  # the decision's rows name the conversation by its id
            self._decide(session, talk, assessment, now, State.DECIDED, without_answer=True,
                         unasked=begin.unasked)
        else:
            talk.questions = list(assessment.questions)
            talk.state = State.DETECTED  # the ask stage sends it, within the daily cap
            self._detected.keep(seen.id, seen.etag, assessment)

    def _still_open(self, session: Session, talk: Conversation, assessment: Assessment,
                    now: datetime) -> None:
        begin = conversation.start(assessment, now, self.config.policy)
        if begin.opening is conversation.Opening.SKIP:
            self._cancel(session, talk, now, f"no longer a meeting to ask about: {begin.why}",
                         state=State.SKIPPED)
            return
        talk.deadline_at = begin.deadline  # a moved meeting moves its deadline
        talk.customer_domains = list(assessment.detection.customer_domains)

    def _cancel(self, session: Session, talk: Conversation, now: datetime, why: str,
                state: State = State.CANCELLED) -> None:
        talk.state, talk.why, talk.cancelled_at = state, why, now
        session.execute(update(Outbox).where(Outbox.conversation_id == talk.id,
                                             Outbox.state == "pending")
                        .values(state="cancelled", done_at=now))
        self._audit(session, talk, "cancelled", why)

    # -- asking ----------------------------------------------------------------------------------

    def ask(self) -> None:
        """Send the questions of newly detected meetings, at most the daily cap per organiser.

        A few organisers to a transaction: a burst's thousand questions in one would keep
        every other writer (the outbox above all) waiting for seconds, and its first
        questions from going out until its last was written.
        """
        with self.store.turn("ask", self.worker, self.clock(), self.lease) as turn:
            if turn is None:
                return
            with self.store.reading() as session:
                organisers = list(dict.fromkeys(session.scalars(
                    _waiting_for_question(select(SeenMeeting.organiser)).order_by(Conversation.id))))
            self._read_owner_languages(organisers)
            for chunk in in_chunks(organisers, ASK_TOGETHER):
                self._ask_organisers(chunk)

    def languages_read(self) -> None:
        """Wait until the language settings being read in the background are read."""
        if self._language_reader is not None:
            self._language_reader.join()

    def _start_reading_languages(self) -> None:
        """Read the organisers' language settings that are due, in the background, so that a
        burst of new meetings finds them read and its questions wait for none."""
        if self._language_reader is None or not self._language_reader.is_alive():
            self._language_reader = threading.Thread(target=self._read_due_languages,
                                                     name="languages", daemon=True)
            self._language_reader.start()

    def _read_due_languages(self) -> None:
        try:
            with self.store.reading() as session:
                addresses = list(session.scalars(select(WatchedCalendar.address).where(
                    WatchedCalendar.watched(), _language_due(self.clock()))))
            for chunk in in_chunks(addresses, LANGUAGES_TOGETHER):
                if self._closing.is_set() or self._stopping.is_set():
                    return
                self._read_owner_languages(chunk)
        except Exception:  # a background courtesy: ask() reads what is still missing
            log.exception("reading the organisers' language settings failed")

    def _read_owner_languages(self, organisers: list[str]) -> None:
        """Read the provider's language setting of these organisers' calendars, where config
        leaves their language open and it was not read this month; outside any transaction,
        a few at once. A provider that cannot say leaves the organiser in English, for now."""
        now = self.clock()
        open_ = [o for o in organisers if self.config.language_left_to_provider(o)]
        with self.store.reading() as session:
            due = [row for chunk in in_chunks(open_) for row in session.execute(
                select(WatchedCalendar.id, WatchedCalendar.provider, WatchedCalendar.address)
                .where(WatchedCalendar.address.in_(chunk), WatchedCalendar.watched(),
                       _language_due(now)))]
        if not due:
            return
        with ThreadPoolExecutor(LANGUAGE_READERS, thread_name_prefix="language") as pool:
            read = list(pool.map(lambda row: self._owner_language(row[1], row[2]), due))
        with self.store.transaction() as session:
            update_each(session, WatchedCalendar.__table__, [
                {"id": row[0], "owner_language": language}
                for row, language in zip(due, read, strict=True) if language is not None],
                key=["id"], also={"owner_language_read_at": now})

    def _owner_language(self, provider: str, address: str) -> str | None:
        """The supported language address's provider states for its owner ("" for none or
        another one); None when it could not be read now, to be tried again."""
        port = self.outside.calendars.get(Provider(provider))
        if port is None:
            return None
        try:
            return negotiate(port.language(address)) or ""
        except ProviderError as err:
            log.info("the language of %s could not be read: %s", redacted(address),
                     without_tokens(str(err)))
            return None

    def _language_of(self, talk: Conversation) -> str:
        """The language of the emails to talk's organiser: config's, else their calendar's
        own setting (read into the calendar's row), else English."""
        organiser, calendar = talk.meeting.organiser, talk.meeting.calendar
        stated = calendar.owner_language if calendar.address == organiser else None
        return self.config.organiser_language(organiser, stated or None)

    def _ask_organisers(self, organisers: list[str]) -> None:
        now = self.clock()
        with self.store.transaction() as session:
            waiting = session.scalars(
                _waiting_for_question(select(Conversation))
                .options(contains_eager(Conversation.meeting))
                .where(SeenMeeting.organiser.in_(organisers))
                .order_by(Conversation.id)).all()
            by_organiser: dict[str, list[Conversation]] = defaultdict(list)
            for talk in waiting:
                by_organiser[talk.meeting.organiser].append(talk)
            sent = self._sent_to(session, list(by_organiser), now)
            for organiser, talks in by_organiser.items():
                self._ask_organiser(session, organiser, talks, sent[organiser], now)

    def _ask_organiser(self, session: Session, organiser: str, talks: list[Conversation],
                       sent: list[follow_ups.Sent], now: datetime) -> None:
        assert self.config.mail is not None
        talks = [talk for talk in talks if self._still_worth_asking(session, talk, now)]
        keys = {str(talk.id): talk for talk in talks}
        singles, digested = follow_ups.split_for_cap(
            sent, organiser, list(keys), now, self.config.mail.daily_question_cap)
        for key in singles:
            talk = keys[key]
            self._issue_token(talk)
            self.effects.add_email(session, f"question:{talk.id}:{talk.round}", "question",
                                   self._question(session, talk, reminder=False), talk)
            talk.state, talk.asked_at = State.ASKED, now
        if digested:
            items = []
            for key in digested:
                talk = keys[key]
                self._issue_token(talk)
                items.append(DigestItem(self._meeting(talk), talk.questions, talk.token or "",
                                        self._asked_about(session, talk).default_format))
                talk.state, talk.asked_at = State.ASKED, now
            mail = digest_email(organiser, items, checklist=self.checklist, sender=self.sender,
                                renderer=self.renderer,
                                language=self._language_of(keys[digested[0]]))
            asked = ",".join(f"{key}:{keys[key].round}" for key in digested)
            batch = hashlib.sha256(asked.encode()).hexdigest()[:16]
            self.effects.add_email(session, f"digest:{organiser}:{batch}", "digest", mail, None,
                                   about=[keys[key].id for key in digested])

    def _still_worth_asking(self, session: Session, talk: Conversation, now: datetime) -> bool:
        """False (and decided or dropped) for a question that waited past its deadline."""
        start = talk.meeting.start_at
        if start is not None and start <= now:
            self._cancel(session, talk, now, "it started before it was asked about",
                         state=State.SKIPPED)
            return False
        if talk.deadline_at is not None and now >= talk.deadline_at:
            self._decide(session, talk, self._assess_stored(session, talk), now, State.DECIDED,
                         without_answer=True, unasked=conversation.Unasked.TOO_LATE)
            return False
        return True

    def _issue_token(self, talk: Conversation) -> str:
        """The conversation's reply token, issued once, valid well past the meeting.

        Generous, because a meeting can move later after the question went out and the
        organiser may reply to the confirmation until it starts; a token only ever opens a
        question that is still answerable (see _open_question).
        """
        if talk.token is None:
            start = max(talk.meeting.start_at or self.clock(), self.clock())
            talk.token = self.tokens.issue(talk.id, start + TOKEN_VALID_AFTER_MEETING)
        return talk.token

    def _question(self, session: Session, talk: Conversation, *, reminder: bool,
                  assessment: Assessment | None = None) -> OutgoingEmail:
        meeting = self._meeting(talk)
        assessment = assessment or self._asked_about(session, talk)
        links = None
        if self.links is not None and talk.deadline_at is not None:
            links = OneClick(self.links, talk.id, talk.deadline_at)
        return question_email(
            meeting, customers=talk.customer_domains, inferred=assessment.told,
            questions=talk.questions, checklist=self.checklist, token=talk.token or "",
            sender=self.sender, deadline=talk.deadline_at, renderer=self.renderer,
            reminder=reminder, links=links, default=assessment.default_format,
            language=self._language_of(talk))

    def _asked_about(self, session: Session, talk: Conversation) -> Assessment:
        """The assessment detection made moments ago, or, if gone, the stored meeting's."""
        return (self._detected.take(talk.meeting_id, talk.meeting.etag)
                or self._assess_stored(session, talk))

    def _sent(self, session: Session, organiser: str, now: datetime) -> list[follow_ups.Sent]:
        return self._sent_to(session, [organiser], now)[organiser]

    def _sent_to(self, session: Session, organisers: list[str], now: datetime
                 ) -> dict[str, list[follow_ups.Sent]]:
        """The emails of the last week to each organiser, in as few queries as it takes."""
        sent: dict[str, list[follow_ups.Sent]] = {organiser: [] for organiser in organisers}
        for chunk in in_chunks(organisers):
            for row in session.execute(select(  # not the messages themselves
                    Outbox.email_kind, Outbox.recipient, Outbox.conversation_id,
                    Outbox.created_at).where(
                    Outbox.kind == "email", Outbox.recipient.in_(chunk),
                    Outbox.created_at > now - follow_ups.DAY * 7, Outbox.state != "cancelled")):
                sent[row.recipient].append(follow_ups.Sent(
                    follow_ups.Kind(row.email_kind), row.recipient,
                    str(row.conversation_id or ""), row.created_at))
        return sent

    # -- replies ---------------------------------------------------------------------------------

    def read_replies(self) -> int:
        """Read the inbox; each reply is applied once, then moved out of the way."""
        inbox = self.outside.inbox
        if inbox is None:
            return 0
        read = 0
        with self.store.turn("inbox", self.worker, self.clock(), self.lease) as turn:
            if turn is None:
                return 0
            try:
                for mail in inbox.messages():
                    if not turn.renew(self.clock()):
                        break  # our turn lapsed and another worker reads on: leave it the rest
                    read += self._take_reply(inbox, mail)
            except TransientProviderError as err:
                log.warning("the inbox could not be read: %s", err)
                self.metrics.error("inbox")
        return read

    def _take_reply(self, inbox: MailIn, mail: InboundMail) -> int:
        """Handle one message, then move it to the processed folder; 1 if it was applied.

        Whatever goes wrong with one message sets it aside, into the failed folder, with an
        audit entry saying why: it is kept for a person, and the next reply is read. Only a
        store or an inbox out of reach is not the message's fault: it stays, to be read again.
        """
        try:
            applied = self._handle_reply(mail.raw)
        except (TransientProviderError, OperationalError, InterfaceError):
            raise
        except UnreadableMail as err:
            self._set_aside(inbox, mail, str(err))
            return 0
        except Exception as err:  # one hostile message must never stop the replies behind it
            log.exception("inbox message %d could not be handled", mail.uid)
            self._set_aside(inbox, mail, f"handling it failed ({type(err).__name__}: {err})")
            return 0
        inbox.mark_processed(mail.uid)
        return applied

    def _set_aside(self, inbox: MailIn, mail: InboundMail, why: str) -> None:
        sender, message_id = mail_headers(mail.raw or mail.headers)
        with self.store.transaction() as session:
            self._audit(session, None, "reply set aside",
                        f"inbox message {message_id or mail.uid} from "
                        f"{redacted(sender) if sender else 'an unknown sender'} was moved to the "
                        f"failed folder, unhandled: {why}")
        inbox.mark_failed(mail.uid)
        self.metrics.error("inbox_message")

    def _handle_reply(self, raw: bytes) -> int:
        """Apply one reply unless it was applied before (by Message-ID); 1 if applied now."""
        if not raw:
            raise UnreadableMail("it is too big for a reply, so it was not downloaded")
        reply = read_reply_email(raw, self.sender.address, self.config.mail.dmarc_authserv_id)
        if reply.unreadable:
            raise UnreadableMail(reply.unreadable)
        key = (reply.message_id or "sha256:" + hashlib.sha256(raw).hexdigest())[:255]
        try:
            with self.store.transaction() as session:
                if session.get(HandledReply, key) is not None:
                    return 0
                outcome = self._on_reply(session, reply)
                session.add(HandledReply(message_key=key, outcome=outcome, at=self.clock()))
                return 1
        except IntegrityError:
            with self.store.transaction() as session:
                if session.get(HandledReply, key) is not None:
                    return 0  # another worker applied it at the same moment: it counts once
            raise

    def _on_reply(self, session: Session, reply: ReplyEmail) -> str:
        assert self.config.mail is not None
        now = self.clock()
        verdict = judge_reply(reply, tokens=self.tokens,
                              open_question=lambda cid: self._open_question(session, cid),
                              assistant_address=self.sender.address, now=now,
                              require_dmarc=self.config.mail.dmarc_required,
                              checklist=self.checklist)
        self.metrics.count("replies_read")
        if isinstance(verdict, Ignored):
            log.info("reply from %s ignored: %s", redacted(reply.sender), verdict.reason)
            return f"ignored: {verdict.reason}"
        talk = session.get(Conversation, verdict.question.conversation_id,
                           with_for_update=True, populate_existing=True)
        assert talk is not None
        if isinstance(verdict, Unclear):
            return self._clarify(session, talk, verdict, now)
        talk.last_reply_written_at = reply.written_at or talk.last_reply_written_at
        return self._answered(session, talk, verdict, now)

    def _open_question(self, session: Session, conversation_id: int) -> OpenQuestion | None:
        assert self.config.mail is not None
        talk = session.get(Conversation, conversation_id)
        if talk is None or talk.state not in _ANSWERABLE or talk.left_alone:
            return None
        start = talk.meeting.start_at
        if start is None or start <= self.clock():
            return None  # too late to change anything
        organiser = talk.meeting.organiser
        delegates = {d.lower() for owner, names in self.config.mail.delegates.items()
                     if owner.lower() == organiser for d in names}
        return OpenQuestion(talk.id, organiser, tuple(talk.questions), frozenset(delegates),
                            talk.last_reply_written_at)

    def _clarify(self, session: Session, talk: Conversation, verdict: Unclear,
                 now: datetime) -> str:
        sent = self._sent(session, talk.meeting.organiser, now)
        if not follow_ups.clarification_allowed(sent, str(talk.id), now):
            return "unclear; a clarification went out less than a day ago"
        mail = clarification_email(self._meeting(talk), verdict.reading, checklist=self.checklist,
                                   questions=talk.questions, token=talk.token or "",
                                   sender=self.sender, renderer=self.renderer,
                                   language=self._language_of(talk))
        self.effects.add_email(session, f"clarification:{talk.id}:{now.isoformat()}",
                               "clarification", mail, talk)
        talk.clarified_at = now
        self._audit(session, talk, "clarification",
                    "; ".join(map(str, verdict.reading.problems)))
        return "unclear: clarification asked"

    def _answered(self, session: Session, talk: Conversation, verdict: Answered,
                  now: datetime) -> str:
        for number, side in verdict.answers.items():
            row = self.checklist.find(number)
            talk.answers = [a for a in talk.answers if a.row_key != row.key]
            session.flush()
            talk.answers.append(Answer(row_key=row.key, side=side.value, at=now,
                                       provenance=Provenance.ORGANISER.value,
                                       why="the organiser's reply"))
        remember(session, self.checklist, talk,
                 {self.checklist.find(number).key: side
                  for number, side in verdict.answers.items()}, now)
        if verdict.decision is not None:
            talk.organiser_choice = verdict.decision.value
        talk.answered_at = now
        self._decide(session, talk, self._assess_stored(session, talk), now, State.ANSWERED,
                     without_answer=False)
        return f"answered: {len(verdict.answers)} rows" + (
            f", decision {verdict.decision.words}" if verdict.decision else "")

    # -- one-click answers -----------------------------------------------------------------------

    def describe_link(self, token: str) -> str:
        """What following a one-click link would do, in words; BadToken if it is no link."""
        claims = self._link_claims(token)
        with self.store.transaction() as session:
            talk = session.get(Conversation, claims.conversation_id)
            title = talk.meeting.title if talk else "this meeting"
        return f"{title}: {_link_choice_words(self.checklist, claims)}."

    def answer_by_link(self, token: str) -> str:
        """Apply a one-click answer once; what happened, in words."""
        claims = self._link_claims(token)
        now = self.clock()
        with self.store.transaction() as session:
            if session.get(UsedLink, claims.nonce) is not None:
                return "This link was used already; nothing changed."
            talk = session.get(Conversation, claims.conversation_id,
                               with_for_update=True, populate_existing=True)
            question = self._open_question(session, claims.conversation_id)
            # A link answers the question it came with; a later change of mind is a reply.
            if question is None or talk is None or talk.state not in (State.ASKED, State.REMINDED):
                return "This meeting is decided already; reply to its email to change it."
            session.add(UsedLink(nonce=claims.nonce, at=now))
            if claims.row == DECISION_ROW:
                verdict = Answered(question, {}, Format(claims.choice))
            else:
                verdict = Answered(question, {claims.row: Side(claims.choice)}, None)
            self._answered(session, talk, verdict, now)
        return f"Thank you: {_link_choice_words(self.checklist, claims)}. The invite follows."

    def _link_claims(self, token: str) -> LinkClaims:
        if self.links is None:
            raise BadToken("one-click answers are not enabled")
        return self.links.verify(token, self.clock())

    # -- deciding and annotating -----------------------------------------------------------------

    def _decide(self, session: Session, talk: Conversation, assessment: Assessment,
                now: datetime, state: State, *, without_answer: bool,
                unasked: conversation.Unasked | None = None) -> None:
        recommendation = assessment.recommendation
        assert recommendation is not None
        talk.state, talk.decided_at = state, now
        # A question still waiting to go out (its calendar was paused, say) is moot now.
        session.execute(update(Outbox).where(
            Outbox.conversation_id == talk.id, Outbox.state == "pending",
            Outbox.email_kind.in_(["question", "reminder", "clarification"]))
            .values(state="cancelled", done_at=now))
        session.add(RecommendationRecord(
            conversation_id=talk.id, format=recommendation.format.value,
            decided_by=recommendation.decided_by.value, without_answer=without_answer,
            detail=recommendation_json(recommendation), at=now))
        self._audit(session, talk, "decided", f"{recommendation.format.words}: "
                    + "; ".join(recommendation.reasons[:3]))
        self._queue_annotation(session, talk, now, "decided", without_answer=without_answer,
                               unasked=unasked)

    def _queue_annotation(self, session: Session, talk: Conversation, now: datetime, why: str,
                          *, without_answer: bool = False,
                          unasked: conversation.Unasked | None = None) -> None:
        talk.revision += 1
        self.effects.add(session, f"annotate:{talk.id}:{talk.revision}", "annotate", talk,
                         {"why": why, "without_answer": without_answer,
                          "unasked": unasked.value if unasked else None,
                          "revision": talk.revision})

    def _decided(self, session: Session, talk: Conversation) -> Recommendation | None:
        """The recommendation last decided for talk: the one its confirmation told."""
        detail = session.scalar(
            select(RecommendationRecord.detail)
            .where(RecommendationRecord.conversation_id == talk.id)
            .order_by(RecommendationRecord.id.desc()).limit(1))
        recorded = recommendation_from_json(detail) if detail is not None else None
        # Recorded by an earlier version, without the invite's reasons: decide it again from
        # the stored meeting, as that version did before each write.
        return recorded or self._assess_stored(session, talk).recommendation

    def _annotation_pending(self, session: Session, talk: Conversation) -> bool:
        return session.scalar(select(Outbox.id).where(
            Outbox.conversation_id == talk.id, Outbox.kind == "annotate",
            Outbox.state == "pending").limit(1)) is not None

    def _assess(self, session: Session, meeting: Meeting, talk: Conversation | None,
                history: list[Meeting]) -> Assessment:
        """The meeting assessed with the organiser's answers so far, their calendar around it
        and what organisers told before.

        Every stage (detection, the question, the decision, the write) passes the same
        history, so a row inferred from it reads the same in the email and in the invite.
        """
        answers = {a.row_key: RowAnswer(Side(a.side), Provenance(a.provenance), a.why)
                   for a in (talk.answers if talk else [])}
        choice = talk.organiser_choice if talk else None
        facts = HardFacts(organiser_choice=Format(choice) if choice else None)
        earlier = AnswerMemory.of_session(session, self.clock(),
                                          self.config.policy.remember_answers_days)
        return self.assessor.assess(meeting, now=self.clock(), history=history,
                                    organiser_answers=answers, organiser_facts=facts,
                                    earlier=earlier)

    def _assess_stored(self, session: Session, talk: Conversation) -> Assessment:
        """The assessment of talk's meeting as last read, in its organiser's stored history."""
        meeting = self._meeting(talk)
        history = History.of_session(session, self.clock()).of(meeting, talk.meeting_id)
        return self._assess(session, meeting, talk, history)

    # -- follow-ups ------------------------------------------------------------------------------

    def follow_up(self) -> None:
        """Reminders once, and decisions at the deadline for questions nobody answered."""
        with self.store.turn("follow_up", self.worker, self.clock(), self.lease) as turn:
            if turn is None:
                return
            now = self.clock()
            policy = self.config.policy
            with self.store.transaction() as session:
                # A paused calendar's conversations wait with it.
                waiting = session.scalars(
                    select(Conversation).join(SeenMeeting).join(WatchedCalendar)
                    .where(Conversation.state.in_([State.DETECTED, State.ASKED, State.REMINDED]),
                           WatchedCalendar.watched())).all()
                for talk in waiting:
                    start = talk.meeting.start_at
                    if start is None or talk.deadline_at is None:
                        continue
                    if start <= now:  # e.g. the worker was down: an annotation is too late
                        self._cancel(session, talk, now, "it started before it was decided",
                                     state=State.SKIPPED)
                    elif follow_ups.deadline_passed(start, now, policy.decide_before_hours):
                        self._decide(session, talk, self._assess_stored(session, talk), now,
                                     State.DECIDED, without_answer=True)
                    elif talk.state == State.ASKED and follow_ups.reminder_due(
                            self._sent(session, talk.meeting.organiser, now), str(talk.id), start,
                            now, reminder_after_hours=policy.reminder_after_hours,
                            decide_before_hours=policy.decide_before_hours):
                        assessment = self._assess_stored(session, talk)
                        if not assessment.questions:
                            continue  # nothing an answer could change now: no reminder
                        reminder = self._question(session, talk, reminder=True,
                                                  assessment=assessment)
                        self.effects.add_email(session, f"reminder:{talk.id}:{talk.round}",
                                               "reminder", reminder, talk)
                        talk.state, talk.reminded_at = State.REMINDED, now

    # -- delivery --------------------------------------------------------------------------------

    def deliver(self) -> int:
        """Deliver every due outbox row; the number delivered.

        One thread of a worker claims at a time. A call while another thread delivers
        returns at once, and that thread goes round again before it stops, so rows queued
        meanwhile never wait for the next interval. The rows of a claim go out
        service.delivery_threads at a time, each conversation's in order on one thread, so
        a worker killed mid-delivery leaves at most that many emails in doubt.
        """
        self._deliver_wanted.set()
        delivered = 0
        while self._deliver_wanted.is_set() and self._delivering.acquire(blocking=False):
            try:
                self._deliver_wanted.clear()
                delivered += self._deliver_due()
            finally:
                self._delivering.release()
        return delivered

    def _deliver_due(self) -> int:
        delivered = 0
        while not self._stopping.is_set() and (rows := self.effects.claim(self._claim_id())):
            delivered += sum(self._senders.map(self._deliver_in_order, _by_conversation(rows)))
            if self._ask_again_soon.is_set():  # a digest was withdrawn: its rest, now
                self._ask_again_soon.clear()
                self.ask()
        return delivered

    def _deliver_in_order(self, rows: list[Outbox]) -> int:
        delivered = 0
        for row in rows:
            if self._stopping.is_set():
                break  # the rest of the batch is released with the worker's leases
            delivered += self._deliver_one(row)
        return delivered

    def _deliver_one(self, row: Outbox) -> int:
        if not self.effects.still_ours(row):
            return 0  # our lease ran out while earlier rows were delivered: another has it
        try:
            if row.kind == "email":
                if row.payload.get("conversations") and self._digest_not_now(row):
                    return 0
                self.outside.mailer.send(message_of(row))
                self.effects.done(row.id, self._email_delivered)
            else:
                self._annotate(row)
            return 1
        except (TransientProviderError, AuthFailed, Conflict) as err:
            # Passing trouble, credentials being fixed, or people busy editing the event.
            log.warning("%s %s will be retried: %s", row.kind, row.idempotency_key, err)
            self.metrics.error(row.kind)
            self.effects.retry_later(row, err)
        except AssistantError as err:
            log.error("%s %s failed for good: %s", row.kind, row.idempotency_key, err)
            self.metrics.error(row.kind)
            self.effects.failed(row, err)
        except Exception as err:  # a bug of ours, or the store hiccuped: never hold the batch
            log.exception("%s %s failed unexpectedly; it will be retried", row.kind,
                          row.idempotency_key)
            self.metrics.error(row.kind)
            self.effects.retry_later(row, err)
        return 0

    def _annotate(self, row: Outbox) -> None:
        with self.store.transaction() as session:
            talk = session.get(Conversation, row.conversation_id)
            assert talk is not None
            calendar = talk.meeting.calendar
            before = self._meeting(talk)
            event_id = talk.meeting.event_id
            organiser = talk.meeting.organiser
            language_unread = calendar.owner_language_read_at is None
            decided = self._decided(session, talk)
            occurrences = list(session.scalars(select(SeenMeeting.event_id).where(
                SeenMeeting.calendar_id == talk.meeting.calendar_id,
                SeenMeeting.series_id == event_id, SeenMeeting.event_id != event_id,
                SeenMeeting.removed.is_(False))))
        plans: list[tuple[Meeting, AnnotationPlan | None]] = []

        def planner(current: Meeting) -> AnnotationPlan | None:
            # The decision as recorded, never one made again from today's calendar: then a
            # retry of this write finds it written, and the invite says what the
            # confirmation does.
            plan = self.assessor.plan_decided(current, decided) if decided else None
            plans.append((current, plan))
            return plan

        port = self.outside.calendars.get(Provider(calendar.provider))
        if port is None:
            raise AssistantError(f"no {calendar.provider} sign-in is configured any more")
        outcome = port.update(calendar.address, event_id, planner)
        read, plan = plans[-1] if plans else (before, None)
        if outcome.result is not WriteResult.GONE:
            # A moved or edited occurrence is an event of its own at both providers, which
            # the series' write does not reach; one moved later starts as a copy of the
            # annotated series, so the note travels with it.
            for occurrence in occurrences:
                port.update(calendar.address, occurrence, planner)
        if decided and language_unread:
            self._read_owner_languages([organiser])  # for the confirmation

        def follow(session: Session, done: Outbox) -> None:
            talk = session.get(Conversation, done.conversation_id,
                               with_for_update=True, populate_existing=True)
            assert talk is not None
            if outcome.result is WriteResult.GONE:
                self._cancel(session, talk, self.clock(), "the meeting is gone")
                return
            if outcome.result is WriteResult.NOT_ORGANISER:
                talk.state, talk.why = State.SKIPPED, "not organised by the calendar's owner"
                return
            if outcome.meeting is not None:
                seen = talk.meeting
                seen.etag, seen.snapshot = outcome.meeting.etag, meeting_to_json(outcome.meeting)
            talk.state, talk.annotated_at = State.ANNOTATED, self.clock()
            if outcome.result is WriteResult.LEFT_ALONE:
                talk.left_alone = True
                self._audit(session, talk, "left_alone", "a person edited the assistant's note")
                return
            if self.config.policy.dry_run:
                self._audit(session, talk, "annotated", "dry run: nothing written, the invite "
                            "would read as planned")
            else:
                self.metrics.count("annotations_written")
                self._audit(session, talk, "annotated", f"{outcome.result.value} after "
                            f"{outcome.attempts} attempt(s)")
            # Each decision is confirmed once (a change of mind too); a move is not news.
            if done.payload.get("why") == "decided" and plan is not None and decided:
                unasked = done.payload.get("unasked")
                mail = confirmation_email(
                    read, decided, conversation.changes_made(read, plan),
                    without_answer=bool(done.payload.get("without_answer")),
                    unasked=conversation.Unasked(unasked) if unasked else None,
                    token=self._issue_token(talk),
                    sender=self.sender, renderer=self.renderer,
                    language=self._language_of(talk))
                revision = done.payload.get("revision", talk.revision)
                self.effects.add_email(session, f"confirmation:{talk.id}:{revision}",
                                       "confirmation", mail, talk)

        self.effects.done(row.id, follow)

    def _email_delivered(self, session: Session, row: Outbox) -> None:
        if not self.config.policy.dry_run:
            self.metrics.count("emails_sent", row.email_kind)
            return
        talk = session.get(Conversation, row.conversation_id) if row.conversation_id else None
        subject = str(message_of(row).headers()["Subject"]).strip()
        self._audit(session, talk, "dry_run_email", f"dry run: the {row.email_kind} email "
                    f"to {row.recipient} was not sent: {subject!r}")

    def _digest_not_now(self, row: Outbox) -> bool:
        """A digest must wait while one of its meetings' calendars is paused, and must not go
        once one of its meetings is no longer asked about (decided, cancelled, its calendar
        removed): then it is withdrawn and the others are asked again in a fresh email."""
        ids = list(row.payload["conversations"])
        with self.store.reading() as session:
            found = session.execute(select(Conversation.state, WatchedCalendar.paused,
                                           WatchedCalendar.removed_at)
                                    .join(SeenMeeting, Conversation.meeting_id == SeenMeeting.id)
                                    .join(WatchedCalendar)
                                    .where(Conversation.id.in_(ids))).all()
        stale = len(found) < len(ids) or any(
            state not in (State.ASKED, State.REMINDED) or removed is not None
            for state, _, removed in found)
        if stale:
            self.effects.withdraw(row, "a meeting in it is no longer asked about",
                                  lambda session, _: self._ask_again(session, ids))
            self._ask_again_soon.set()
            return True
        if any(paused for _, paused, _ in found):
            self.effects.postpone(row, timedelta(seconds=self.config.service.sync_interval_seconds))
            return True
        return False

    def _ask_again(self, session: Session, ids: list[int]) -> None:
        for talk in session.scalars(select(Conversation).where(
                Conversation.id.in_(ids), Conversation.state.in_([State.ASKED, State.REMINDED]))
                .with_for_update()):
            talk.state, talk.asked_at = State.DETECTED, None

    # -- small helpers ---------------------------------------------------------------------------

    def _claim_id(self) -> str:
        """A lease owner per claim: two jobs of one worker must not take each other's rows."""
        return f"{self.worker}/{uuid.uuid4().hex[:12]}"

    def _meeting(self, talk: Conversation) -> Meeting:
        return meeting_from_json(talk.meeting.snapshot)

    def _audit(self, session: Session, talk: Conversation | None, action: str,
               detail: str) -> None:
        session.add(AuditEntry.of(talk, self.clock(), action, detail))


@dataclass(frozen=True)
class Claimed:
    """A calendar this worker leased for one sync round."""

    id: int
    address: str
    cursor: str | None
    lease_owner: str


class History:
    """The organisers' meetings around now, read once per transaction, for inference."""

    def __init__(self, session: Session, now: datetime) -> None:
        self._session, self._now = session, now
        self._by_organiser: dict[str, list[tuple[int, Meeting]]] = {}

    @classmethod
    def of_session(cls, session: Session, now: datetime) -> History:
        """The one history of this transaction: each organiser's meetings are read once,
        however many of their conversations a job goes through."""
        history = session.info.get(cls)
        if history is None:
            history = session.info[cls] = cls(session, now)
        return history

    def of(self, meeting: Meeting, seen_id: int) -> list[Meeting]:
        organiser = meeting.organizer.email.lower()
        self.read([organiser])
        return [m for row_id, m in self._by_organiser[organiser] if row_id != seen_id]

    def read(self, organisers: Iterable[str]) -> None:
        """Read the meetings of the organisers not read yet, in as few queries as it takes."""
        missing = sorted({o.lower() for o in organisers} - self._by_organiser.keys())
        window = timedelta(weeks=HISTORY_WEEKS)
        for chunk in in_chunks(missing):
            rows = self._session.scalars(select(SeenMeeting).where(
                SeenMeeting.organiser.in_(chunk), SeenMeeting.removed.is_(False),
                SeenMeeting.start_at >= self._now - window * 4,
                SeenMeeting.start_at <= self._now + window))
            for organiser in chunk:
                self._by_organiser[organiser] = []
            for row in rows:
                self._by_organiser[row.organiser].append((row.id, meeting_from_json(row.snapshot)))


def _link_choice_words(checklist: Checklist, claims: LinkClaims) -> str:
    if claims.row == DECISION_ROW:
        return f"meet {Format(claims.choice).words}"
    row = checklist.find(claims.row)
    return f"question {row.number}, {row.wording(Side(claims.choice))}"


# One provider thread's results, its exception, or None when it is done.
_Results = queue.Queue[tuple[Provider, CalendarChanges | SyncFailed] | BaseException | None]


def _feed(port: CalendarPort, provider: Provider, cursors: Mapping[str, str | None],
          results: _Results) -> None:
    """One provider's sync results into the queue, then None; an exception is passed on."""
    try:
        for result in port.sync(cursors):
            results.put((provider, result))
    except BaseException as err:  # raised again by the thread that writes the results
        results.put(err)
    finally:
        results.put(None)


def _by_conversation(rows: list[Outbox]) -> list[list[Outbox]]:
    """rows in runs that may go out side by side: a conversation's together, in their order
    (its annotation before the confirmation that follows it); a digest, about several, alone."""
    runs: dict[int, list[Outbox]] = defaultdict(list)
    alone: list[list[Outbox]] = []
    for row in rows:
        if row.conversation_id is None:
            alone.append([row])
        else:
            runs[row.conversation_id].append(row)
    return [*runs.values(), *alone]


def _language_due(now: datetime) -> Any:
    """The SQL condition of a calendar whose owner's language is unread or a month old."""
    return (WatchedCalendar.owner_language_read_at.is_(None)
            | (WatchedCalendar.owner_language_read_at < now - READ_LANGUAGE_AGAIN))


def _waiting_for_question(statement: Select[Any]) -> Select[Any]:
    """statement over the conversations of watched calendars waiting for their question."""
    return (statement.select_from(Conversation).join(SeenMeeting).join(WatchedCalendar)
            .where(Conversation.state == State.DETECTED, WatchedCalendar.watched()))


def _seen_meetings(session: Session, keys: list[tuple[int, str]]
                   ) -> dict[tuple[int, str], SeenMeeting]:
    """The stored meetings among (calendar id, event id) keys, with their conversations.

    The conversations are locked until the transaction ends: their state decides what a
    change leads to, and a delivery settling one of them meanwhile (an annotation written,
    say) must wait rather than have the change judged on the state before it.
    """
    found: dict[tuple[int, str], SeenMeeting] = {}
    for chunk in in_chunks(keys):
        for seen in session.scalars(select(SeenMeeting).where(
                tuple_(SeenMeeting.calendar_id, SeenMeeting.event_id).in_(chunk))):
            found[(seen.calendar_id, seen.event_id)] = seen
    by_meeting: dict[int, Conversation] = {}
    for chunk in in_chunks([seen.id for seen in found.values()]):
        for talk in session.scalars(
                select(Conversation).where(Conversation.meeting_id.in_(chunk))
                .order_by(Conversation.id).with_for_update()
                .execution_options(populate_existing=True)):
            by_meeting[talk.meeting_id] = talk
    for seen in found.values():  # known now: no query per meeting when it is asked for
        set_committed_value(seen, "conversation", by_meeting.get(seen.id))
    return found


class _RecentAssessments:
    """The assessments of meetings just detected, for their question moments later.

    Asking follows detection within seconds, so the question reuses what detection worked
    out (the same history, so the email reads as detection judged) instead of reading the
    organiser's history and assessing again. Kept only while the meeting reads the same
    (its ETag), for a bounded number of meetings; anything missing is assessed afresh.
    """

    LIMIT = 2_000  # a burst between two asks; a few MB

    def __init__(self) -> None:
        self._kept: OrderedDict[int, tuple[str, Assessment]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, meeting_id: int, etag: str, assessment: Assessment) -> None:
        with self._lock:
            self._kept[meeting_id] = (etag, assessment)
            while len(self._kept) > self.LIMIT:
                self._kept.popitem(last=False)

    def take(self, meeting_id: int, etag: str) -> Assessment | None:
        with self._lock:
            kept = self._kept.pop(meeting_id, None)
        return kept[1] if kept is not None and kept[0] == etag else None
