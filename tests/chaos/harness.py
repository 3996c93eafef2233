"""The chaos run: real `assistant run` workers doing real work while everything around them fails.

The providers are the emulators with a share of all requests failing (429 with Retry-After,
500, 503, connections dropped before or after the work, answers cut off mid-JSON after the
work, answers so late that the worker has asked again before the first is done); the mail
server answers 421 or drops connections; the inbox is Dovecot over IMAP; the store is SQLite
or a PostgreSQL server. A seeded schedule meanwhile kills workers with SIGKILL and starts them
again, expires every sync token and delta link, suspends a Google user and (at full size)
withdraws the Microsoft app's admin consent, each put right a few seconds later, restarts
Dovecot and the database server, and has people edit meetings by hand, some just before a
worker's write lands. The harness plays every organiser: it answers each question as it
arrives. `check_outcome` then holds the run to the guarantees.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import imapclient
from sqlalchemy import func, select

from assistant import config
from assistant.block import HTML_START, TEXT_START
from assistant.store.tables import Conversation, HandledReply, State
from integrations.sandbox.environment import (
    GRAPH_SECRET_ENV,
    SENDER,
    TOKEN_SECRET_ENV,
    SandboxEnvironment,
    to_toml,
)
from integrations.sandbox.mail import MAIL_FAULTS
from integrations.sandbox.server import HANG, TRUNCATED, Faults, free_port
from tests.contract.mail_servers import Dovecot
from tests.end_to_end.conftest import book_google, book_outlook, reply_to, store_session

SEED = int(os.environ.get("CHAOS_SEED", "20261203"))
# A hung request: the workers give up on an answer after REQUEST_TIMEOUT seconds and ask
# again, while the emulator does the work only after HANG_SECONDS, behind their retry.
REQUEST_TIMEOUT, HANG_SECONDS = 1.5, 3.0
DELIVERY_THREADS = config.Service.model_fields["delivery_threads"].default  # the workers'
EDITED_LINE = "Parking: level 2, ask at reception."
RACING_EDIT_RATE = 0.05  # of the workers' invite writes, a person edits just before it lands


@dataclass(frozen=True)
class Size:
    organisers: int  # half on Google, half on Outlook
    meetings_per_organiser: int
    workers: int
    kills: int
    deadline_seconds: float
    provider_fault_rate: float = 0.10
    mail_fault_rate: float = 0.05
    # Withdraw the Microsoft app's consent for a few seconds. A worker refused then goes on
    # being refused for a minute after the consent is back: msal keeps an OAuth 400 for 60 s
    # before it asks Entra again (msal/throttled_http_client.py), longer than CI can wait.
    withdraw_consent: bool = True

    @property
    def meetings(self) -> int:
        return self.organisers * self.meetings_per_organiser


@dataclass
class Meeting:
    calendar: str
    event_id: str
    title: str
    google: bool
    edited: bool = False


@dataclass
class Figures:
    """What the run did and met, for the README's Guarantees table."""

    store: str
    meetings: int = 0
    workers: int = 0
    kills: int = 0
    provider_faults: Counter[str] = field(default_factory=Counter)
    mail_faults: Counter[str] = field(default_factory=Counter)
    cursors_expired: int = 0
    suspensions: int = 0
    consents_withdrawn: int = 0
    restarts: list[str] = field(default_factory=list)
    human_edits: int = 0
    edits_racing_a_write: int = 0  # a person's edit landed between a worker's read and write
    conflicts: int = 0  # writes refused with 412: the event had changed since it was read
    deliveries: int = 0
    emails_kept: int = 0
    seconds: float = 0.0

    def as_json(self) -> str:
        return json.dumps(self.__dict__, default=dict, indent=1)


class WorkerPool:
    """The workers, each `python -m assistant -v run` with its own web port and log file."""

    def __init__(self, folder: Path, sandbox: SandboxEnvironment, dovecot: Dovecot,
                 database_url: str, workers: int) -> None:
        self.folder = folder
        self.env = {**os.environ, **sandbox.environ, "ASSISTANT_IMAP_PASSWORD": dovecot.password}
        self.ports = [free_port() for _ in range(workers)]
        self.configs = []
        for number, port in enumerate(self.ports):
            data = sandbox.config(
                database_url,
                service={"sync_interval_seconds": 1, "outbox_interval_seconds": 1,
                         "inbox_interval_seconds": 1, "follow_up_interval_seconds": 2,
                         "lease_seconds": 3, "listen": f"127.0.0.1:{port}"},
                google={"request_timeout_seconds": REQUEST_TIMEOUT},
                microsoft={"request_timeout_seconds": REQUEST_TIMEOUT},
                mail={"daily_question_cap": 100, "imap": {
                    "host": "127.0.0.1", "port": dovecot.port, "security": "none",
                    "username": SENDER, "password_env": "ASSISTANT_IMAP_PASSWORD"}})
            path = folder / f"worker-{number}.toml"
            path.write_text(to_toml(data))
            self.configs.append(path)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * workers

    def start(self, number: int) -> None:
        with (self.folder / f"worker-{number}.log").open("ab") as log:
            self.processes[number] = subprocess.Popen(
                [sys.executable, "-m", "assistant", "-v", "run", "--config",
                 str(self.configs[number])],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)

    def start_all(self) -> None:
        for number in range(len(self.processes)):
            self.start(number)

    def kill(self, number: int) -> None:
        process = self.processes[number]
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        """SIGTERM once each worker is up: it finishes its step, gives back its leases, exits 0.

        A worker still starting has no handler yet and would die of the signal, which says
        nothing about how it stops."""
        for number in range(len(self.processes)):
            self._wait_until_up(number)
        for process in self.processes:
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for number, process in enumerate(self.processes):
            if process is not None:
                assert process.wait(timeout=30) == 0, self.log(number)

    def check_running(self) -> None:
        """Only the harness stops a worker: one that exited by itself failed."""
        for number, process in enumerate(self.processes):
            if process is not None and process.poll() is not None:
                raise AssertionError(f"worker {number} exited with {process.returncode}:\n"
                                     + self.log(number))

    def kill_all(self) -> None:
        for number, process in enumerate(self.processes):
            if process is not None and process.poll() is None:
                self.kill(number)

    def log(self, number: int) -> str:
        return (self.folder / f"worker-{number}.log").read_text(errors="replace")[-4000:]

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace")
                       for path in sorted(self.folder.glob("worker-*.log")))

    def _wait_until_up(self, number: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[number]}/healthz",
                                            timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"worker {number} never came up:\n{self.log(number)}")


class ChaosRun:
    """One run: book the meetings, start the workers, answer and disrupt until all is done."""

    def __init__(self, folder: Path, size: Size, store: str, database_url: str,
                 restart_database: Callable[[], None] | None = None) -> None:
        self.size, self.database_url = size, database_url
        # The schedule, whom it hits and what the organisers answer: each from its own seeded
        # generator, so that how fast questions arrive cannot change the disruptions.
        self.random = random.Random(SEED)
        self.answers = random.Random(SEED + 2)
        self.racing = random.Random(SEED + 3)  # which writes a person's edit beats
        half = size.organisers // 2
        self.google_users = [f"g{n}@example.com" for n in range(half)]
        self.outlook_users = [f"m{n}@example.com" for n in range(size.organisers - half)]
        faults = Faults(rate=size.provider_fault_rate, kinds=(*Faults().kinds, TRUNCATED, HANG),
                        hang_seconds=HANG_SECONDS, seed=SEED)
        self.sandbox = SandboxEnvironment(folder / "sandbox", google_users=self.google_users,
                                          microsoft_users=self.outlook_users, faults=faults)
        self.sandbox.mail.faults = Faults(rate=size.mail_fault_rate, kinds=MAIL_FAULTS,
                                          seed=SEED + 1)
        self.dovecot = Dovecot()
        self.folder = folder
        self.restart_database = restart_database
        self.figures = Figures(store=store, meetings=size.meetings, workers=size.workers)
        self.meetings: list[Meeting] = []
        self._by_event: dict[tuple[str, str], Meeting] = {}
        self._editing = threading.Lock()  # people edit from the harness and the emulators
        self.answered: set[str] = set()
        self._restore_later: list[tuple[float, Callable[[], None]]] = []  # (when, how)

    def run(self) -> Figures:
        started = time.monotonic()
        self.sandbox.start()
        self.dovecot.start()
        pool = WorkerPool(self.folder, self.sandbox, self.dovecot, self.database_url,
                          self.size.workers)
        try:
            self._book(first_half=True)
            self.sandbox.google.before_write = self.sandbox.graph.before_write = self._race
            pool.start_all()
            self._book(first_half=False)
            self._play(pool, self._schedule())
            pool.stop_all()
            self.figures.seconds = round(time.monotonic() - started, 1)
            self._count_faults()
            check_outcome(self, pool)
        finally:
            pool.kill_all()
            self.dovecot.stop()
            self.sandbox.stop()
        return self.figures

    # -- the organisers ---------------------------------------------------------------------

    def _book(self, *, first_half: bool) -> None:
        """Half of every organiser's customer meetings: an hour apart, three days from now."""
        per = self.size.meetings_per_organiser
        numbers = range(per // 2) if first_half else range(per // 2, per)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        for user in self.google_users + self.outlook_users:
            google = user in self.google_users
            book = book_google if google else book_outlook
            for number in numbers:
                title = f"Customer call {user.partition('@')[0]}-{number}"
                event = book(self.sandbox, title, organiser=user,
                             start=start + timedelta(hours=number),
                             guests=(f"buyer{number}@customer{number % 7}.example",),
                             **_agenda(google))
                self.meetings.append(Meeting(user, event["id"], title, google))
                self._by_event[(user, event["id"])] = self.meetings[-1]

    def _answer_new_questions(self, imap: imapclient.IMAPClient) -> None:
        for question in questions(self.sandbox):
            if question["Message-ID"] not in self.answered:
                # "A": one letter, for the first row asked, however few were asked.
                answer = self.answers.choice(["virtual", "in person", "1A 4A", "A"])
                imap.append("INBOX", reply_to(question, answer).as_bytes())
                self.answered.add(question["Message-ID"])

    def _edit_by_hand(self) -> None:
        """A person adds a line to a meeting's description, as a calendar app saves it."""
        with self._editing:
            meeting = self.random.choice([m for m in self.meetings if not m.edited])
            self._edit(meeting)
            self.figures.human_edits += 1

    def _race(self, calendar: str, event_id: str) -> None:
        """A worker's write of an invite is on its way: now and then a person's edit lands
        first, so the write meets a 412 and must merge (the emulators call this)."""
        with self._editing:
            meeting = self._by_event.get((calendar, event_id))
            if meeting and not meeting.edited and self.racing.random() < RACING_EDIT_RATE:
                self._edit(meeting)
                self.figures.edits_racing_a_write += 1

    def _edit(self, meeting: Meeting) -> None:
        emulator = self.sandbox.google if meeting.google else self.sandbox.graph
        with emulator.store.lock:  # read and save as one: the person's app is not under test
            event = emulator.event(meeting.calendar, meeting.event_id)
            if meeting.google:
                emulator.edit_event(meeting.calendar, meeting.event_id,
                                    description=event.get("description", "") + f"\n{EDITED_LINE}")
            else:
                body = event["body"]
                emulator.edit_event(meeting.calendar, meeting.event_id, body={
                    "contentType": body["contentType"],
                    "content": body["content"] + f"<p>{EDITED_LINE}</p>"})
        meeting.edited = True

    # -- the disruptions --------------------------------------------------------------------

    def _schedule(self) -> list[tuple[float, str]]:
        """(seconds after the start, what happens), seeded: the kills spread over the run."""
        spread = max(15.0, self.size.kills * 0.9, self.size.meetings * 0.08)
        events = [(self.random.uniform(0.5, spread), "kill") for _ in range(self.size.kills)]
        events += [(self.random.uniform(1, spread), "expire cursors") for _ in range(2)]
        events += [(self.random.uniform(1, spread), "suspend a Google user")]
        if self.size.withdraw_consent:
            events += [(self.random.uniform(1, spread), "withdraw the Microsoft app's consent")]
        events += [(self.random.uniform(1, spread), "restart Dovecot")]
        if self.restart_database:
            events += [(self.random.uniform(2, spread), "restart the database")]
        edits = max(3, self.size.meetings // 20)
        events += [(self.random.uniform(0.5, spread * 1.5), "edit by hand") for _ in range(edits)]
        return sorted(events)

    def _disrupt(self, what: str, pool: WorkerPool) -> None:
        if what == "kill":
            number = self.random.randrange(self.size.workers)
            pool.kill(number)
            self.figures.kills += 1
            pool.start(number)
        elif what == "expire cursors":
            self.sandbox.google.store.expire_sync_tokens()
            self.sandbox.graph.store.expire_delta_tokens()
            self.figures.cursors_expired += 1
        elif what == "suspend a Google user":
            user = self.random.choice(self.google_users)
            self.sandbox.google.oauth.suspend_user(user)
            self.figures.suspensions += 1
            self._later(lambda: self.sandbox.google.oauth.restore_user(user))
        elif what == "withdraw the Microsoft app's consent":
            identity, app = self.sandbox.graph.identity, self.sandbox.graph_app.client_id
            identity.withdraw_consent(app)
            self.figures.consents_withdrawn += 1
            self._later(lambda: identity.grant_consent(app))
        elif what == "restart Dovecot":
            self.dovecot.restart()
            self.figures.restarts.append("Dovecot")
        elif what == "restart the database":
            assert self.restart_database is not None
            self.restart_database()
            self.figures.restarts.append("database")
        elif what == "edit by hand":
            self._edit_by_hand()

    def _play(self, pool: WorkerPool, schedule: list[tuple[float, str]]) -> None:
        started = time.monotonic()
        deadline = started + self.size.deadline_seconds
        imap: imapclient.IMAPClient | None = None
        while schedule or not everything_done(self):
            assert time.monotonic() < deadline, "not done in time:\n" + pool.log(0)
            pool.check_running()
            while schedule and time.monotonic() - started >= schedule[0][0]:
                what = schedule.pop(0)[1]
                self._disrupt(what, pool)
                if what == "restart Dovecot":  # the organisers' mail app signs in again
                    _closed(imap)
                    imap = None
            self._restore(due_by=time.monotonic())
            try:
                imap = imap or _signed_in(self.dovecot)
                self._answer_new_questions(imap)
            except (OSError, imapclient.exceptions.IMAPClientError):
                _closed(imap)  # Dovecot is restarting: the next round signs in again
                imap = None
            time.sleep(0.1)
        _closed(imap)
        self._restore(due_by=float("inf"))

    def _later(self, restore: Callable[[], None]) -> None:
        """An admin puts a revoked sign-in right a few seconds later."""
        self._restore_later.append((time.monotonic() + self.random.uniform(2, 5), restore))

    def _restore(self, due_by: float) -> None:
        for entry in [entry for entry in self._restore_later if entry[0] <= due_by]:
            entry[1]()
            self._restore_later.remove(entry)

    def _count_faults(self) -> None:
        self.figures.provider_faults = (self.sandbox.google.injected
                                        + self.sandbox.graph.injected)
        self.figures.mail_faults = Counter(self.sandbox.mail.injected)
        self.figures.conflicts = (self.sandbox.google.refused[412]
                                  + self.sandbox.graph.refused[412])
        self.figures.deliveries = self.sandbox.mail.deliveries
        self.figures.emails_kept = len(self.sandbox.mail.messages)


def _agenda(google: bool) -> dict:
    agenda = "Agenda: the renewal."
    if google:
        return {"description": agenda}
    return {"body": {"contentType": "html", "content": f"<p>{agenda}</p>"}}


def _signed_in(dovecot: Dovecot) -> imapclient.IMAPClient:
    imap = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=5)
    try:
        imap.login(SENDER, dovecot.password)
    except BaseException:
        imap.shutdown()  # connected to a server still starting: leave nothing open
        raise
    return imap


def _closed(imap: imapclient.IMAPClient | None) -> None:
    if imap is not None:
        try:
            imap.logout()
        except (OSError, imapclient.exceptions.IMAPClientError):
            imap.shutdown()  # the server is gone, and imaplib's logout left the socket open


def questions(sandbox: SandboxEnvironment) -> list:
    return [m for m in sandbox.mail.messages if "in person or virtual?" in m["Subject"]]


def confirmations(sandbox: SandboxEnvironment) -> list:
    return [m for m in sandbox.mail.messages
            if "[MFA-" in m["Subject"] and "in person or virtual?" not in m["Subject"]]


def _text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def everything_done(run: ChaosRun) -> bool:
    return len(confirmations(run.sandbox)) >= len(run.meetings)


# -- the guarantees -----------------------------------------------------------------------------


def check_outcome(run: ChaosRun, pool: WorkerPool) -> None:
    sandbox, figures = run.sandbox, run.figures
    expected = {meeting.title for meeting in run.meetings}
    # strip(): a long subject is folded right after "Subject:", and Python's parser keeps the
    # space that unfolding leaves in front.
    asked = Counter(str(m["Subject"]).split(": in person or virtual?")[0].strip()
                    for m in questions(sandbox))
    told = [str(m["Subject"]).rsplit(" [MFA-", 1)[0].rsplit(": ", 1)
            for m in confirmations(sandbox)]
    confirmed = Counter(title.strip() for title, _ in told)
    # One question each, except for meetings no answer could change, decided without one.
    assert set(asked) <= expected and set(asked.values()) <= {1}
    assert set(confirmed) == expected and set(confirmed.values()) == {1}
    unasked = {title.strip() for m in confirmations(sandbox) if "so I didn't ask" in _text(m)
               for title, _ in [str(m["Subject"]).rsplit(" [MFA-", 1)[0].rsplit(": ", 1)]}
    assert unasked == expected - set(asked), (unasked, expected - set(asked))
    # An email goes out again only when the connection died between the server's "250" and
    # the record of it (a dropped connection, or a kill): the same Message-ID, which the
    # mailbox keeps once. Never more often than that.
    repeats = figures.deliveries - figures.emails_kept
    assert 0 <= repeats <= figures.mail_faults["drop_after"] + figures.kills * DELIVERY_THREADS
    writes = {**sandbox.google.api_writes, **sandbox.graph.api_writes}
    not_once = {m.title: writes.get((m.calendar, m.event_id)) for m in run.meetings
                if writes.get((m.calendar, m.event_id)) != 1}
    assert not not_once, f"invites not written exactly once: {not_once}"
    assert figures.conflicts >= figures.edits_racing_a_write  # each such edit meant a 412
    format_told = {title.strip(): words for title, words in told}
    for meeting in run.meetings:
        _check_invite(sandbox, meeting, format_told[meeting.title])
    with store_session(run.database_url) as session:
        states = Counter(session.scalars(select(Conversation.state)))
        replies = session.scalar(select(func.count()).select_from(HandledReply))
    assert states == {State.ANNOTATED: len(run.meetings)}
    assert replies == len(asked)  # every answer applied, none twice
    _check_no_secret_in_logs(run, pool.logs())


def _check_invite(sandbox: SandboxEnvironment, meeting: Meeting, format_told: str) -> None:
    """The note is there once, it says the format the organiser was told, and whatever a
    person wrote is still there."""
    if meeting.google:
        text = sandbox.google.event(meeting.calendar, meeting.event_id).get("description", "")
    else:
        text = sandbox.graph.event(meeting.calendar, meeting.event_id)["body"]["content"]
    marker = HTML_START if HTML_START in text else TEXT_START  # an HTML note has both
    assert text.count(marker) == 1, (meeting, text)
    assert ("cameras on" in text) == (format_told == "virtual"), (meeting, format_told, text)
    assert "Agenda: the renewal." in text, (meeting, text)
    if meeting.edited:
        assert EDITED_LINE in text, (meeting, text)


_CURSOR_IN_URL = re.compile(r"(?:syncToken|deltatoken|skiptoken|pageToken)=(?!…)[^&\s]",
                            re.IGNORECASE)


def _check_no_secret_in_logs(run: ChaosRun, logs: str) -> None:
    assert "INFO" in logs and "WARNING" in logs  # the logs are there, verbose, with failures
    secrets = {TOKEN_SECRET_ENV: run.sandbox.environ[TOKEN_SECRET_ENV],
               GRAPH_SECRET_ENV: run.sandbox.environ[GRAPH_SECRET_ENV],
               "the IMAP password": run.dovecot.password}
    for name, value in secrets.items():
        assert value not in logs, f"{name} is in a worker's log"
    assert not _CURSOR_IN_URL.search(logs), _CURSOR_IN_URL.search(logs)
    assert "Bearer " not in logs and "access_token" not in logs
