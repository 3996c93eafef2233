"""Exactly once: three `assistant run` workers share hundreds of meetings on PostgreSQL while one
of them is killed with SIGKILL at random moments and started again.

Everything is real but the providers: the workers are separate processes running the CLI, the
database is a PostgreSQL server, the inbox is Dovecot over IMAP, mail goes out over SMTP to a
local server that, like a mailbox server, keeps one copy per Message-ID. The test plays every
organiser: it answers each question email as it arrives. At the end every organiser got one
question and one confirmation per meeting, every invite was written once, and nothing is lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imapclient
from sqlalchemy import func, select

from assistant import config
from assistant.store.tables import Conversation, HandledReply, State
from integrations.sandbox.environment import SENDER, SandboxEnvironment, to_toml
from integrations.sandbox.server import free_port
from tests.contract.mail_servers import Dovecot
from tests.end_to_end.conftest import book_google, book_outlook, reply_to, store_session

GOOGLE_USERS = [f"g{n}@example.com" for n in range(6)]
OUTLOOK_USERS = [f"m{n}@example.com" for n in range(6)]
MEETINGS_PER_USER = 20  # 240 meetings in all
WORKERS = 3
SEED = int(os.environ.get("EXACTLY_ONCE_SEED", "20261201"))
DEADLINE_SECONDS = 240


def test_three_workers_with_one_killed_again_and_again_do_everything_exactly_once(
    tmp_path, postgres_url
):
    sandbox = SandboxEnvironment(tmp_path / "sandbox", google_users=GOOGLE_USERS,
                                 microsoft_users=OUTLOOK_USERS).start()
    dovecot = Dovecot().start()
    pool = WorkerPool(tmp_path, sandbox, dovecot, postgres_url)
    try:
        meetings = book_half(sandbox, 0)
        pool.start_all()
        meetings += book_half(sandbox, 1)
        kills = play_until_done(sandbox, dovecot, pool, meetings)
        pool.stop_all()
        check_everything_exactly_once(sandbox, postgres_url, meetings, kills)
    finally:
        pool.kill_all()
        dovecot.stop()
        sandbox.stop()


class WorkerPool:
    """The workers, each `python -m assistant run` with its own web port and log file."""

    def __init__(self, folder: Path, sandbox: SandboxEnvironment, dovecot: Dovecot,
                 database_url: str) -> None:
        self.folder = folder
        self.env = {**os.environ, **sandbox.environ, "ASSISTANT_IMAP_PASSWORD": dovecot.password}
        self.configs = []
        for number in range(WORKERS):
            data = sandbox.config(
                database_url,
                service={"sync_interval_seconds": 1, "outbox_interval_seconds": 1,
                         "inbox_interval_seconds": 1, "follow_up_interval_seconds": 2,
                         "lease_seconds": 3, "listen": f"127.0.0.1:{free_port()}"},
                mail={"daily_question_cap": 100, "imap": {
                    "host": "127.0.0.1", "port": dovecot.port, "security": "none",
                    "username": SENDER, "password_env": "ASSISTANT_IMAP_PASSWORD"}})
            path = folder / f"worker-{number}.toml"
            path.write_text(to_toml(data))
            self.configs.append(path)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * WORKERS

    def start(self, number: int) -> None:
        log = (self.folder / f"worker-{number}.log").open("ab")
        self.processes[number] = subprocess.Popen(
            [sys.executable, "-m", "assistant", "-v", "run", "--config",
             str(self.configs[number])],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()

    def start_all(self) -> None:
        for number in range(WORKERS):
            self.start(number)

    def kill(self, number: int) -> None:
        process = self.processes[number]
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        """SIGTERM: each worker finishes its step, gives back its leases and exits 0."""
        for process in self.processes:
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for number, process in enumerate(self.processes):
            if process is not None:
                assert process.wait(timeout=30) == 0, self.log(number)

    def kill_all(self) -> None:
        for number in range(WORKERS):
            process = self.processes[number]
            if process is not None and process.poll() is None:
                self.kill(number)

    def log(self, number: int) -> str:
        return (self.folder / f"worker-{number}.log").read_text(errors="replace")[-4000:]


def book_half(sandbox: SandboxEnvironment, half: int) -> list[tuple[str, str, str]]:
    """Half of every organiser's customer meetings: (calendar, event id, title)."""
    booked = []
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    numbers = range(half * MEETINGS_PER_USER // 2, (half + 1) * MEETINGS_PER_USER // 2)
    for user in GOOGLE_USERS + OUTLOOK_USERS:
        book = book_google if user in GOOGLE_USERS else book_outlook
        for number in numbers:
            title = f"Customer call {user.partition('@')[0]}-{number}"
            event = book(sandbox, title, organiser=user, start=start + timedelta(hours=number),
                         guests=(f"buyer{number}@customer{number % 7}.example",))
            booked.append((user, event["id"], title))
    return booked


def play_until_done(sandbox: SandboxEnvironment, dovecot: Dovecot, pool: WorkerPool,
                    meetings: list[tuple[str, str, str]]) -> int:
    """Answer every question as it comes while killing worker 0 at random; the kills made."""
    chooser = random.Random(SEED)
    answered: set[str] = set()
    kills, next_kill = 0, time.monotonic() + chooser.uniform(0.5, 2.0)
    deadline = time.monotonic() + DEADLINE_SECONDS
    with imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as imap:
        imap.login(SENDER, dovecot.password)
        while not everything_done(sandbox, meetings):
            assert time.monotonic() < deadline, "not done in time:\n" + pool.log(0)
            for question in questions(sandbox):
                if question["Message-ID"] not in answered:
                    answer = chooser.choice(["virtual", "in person", "1A 4A", "A B B"])
                    imap.append("INBOX", reply_to(question, answer).as_bytes())
                    answered.add(question["Message-ID"])
            if time.monotonic() >= next_kill and kills < 12:
                pool.kill(0)
                kills += 1
                pool.start(0)
                next_kill = time.monotonic() + chooser.uniform(0.3, 2.5)
            time.sleep(0.1)
    return kills


def questions(sandbox: SandboxEnvironment) -> list:
    return [m for m in list(sandbox.mail.messages) if "in person or virtual?" in m["Subject"]]


def confirmations(sandbox: SandboxEnvironment) -> list:
    return [m for m in list(sandbox.mail.messages)
            if "[MFA-" in m["Subject"] and "in person or virtual?" not in m["Subject"]]


def everything_done(sandbox: SandboxEnvironment, meetings: list[tuple[str, str, str]]) -> bool:
    return len(confirmations(sandbox)) >= len(meetings)


DELIVERY_THREADS = config.Service.model_fields["delivery_threads"].default  # the workers'


def check_everything_exactly_once(sandbox: SandboxEnvironment, database_url: str,
                                  meetings: list[tuple[str, str, str]], kills: int) -> None:
    # strip(): a long subject is folded right after "Subject:", and Python's parser keeps the
    # space that unfolding leaves in front.
    titles = Counter(str(m["Subject"]).split(": in person or virtual?")[0].strip()
                     for m in questions(sandbox))
    confirmed = Counter(str(m["Subject"]).rsplit(": ", 1)[0].strip()
                        for m in confirmations(sandbox))
    expected = {title for _, _, title in meetings}
    assert kills >= 5
    assert set(titles) == expected and set(titles.values()) == {1}  # one question each
    assert set(confirmed) == expected and set(confirmed.values()) == {1}
    writes = {**sandbox.google.api_writes, **sandbox.graph.api_writes}
    assert {writes.get((calendar, event_id)) for calendar, event_id, _ in meetings} == {1}
    # A kill between the mail server's "250 accepted" and the commit of "sent" makes the
    # retry a delivery of the same Message-ID, which the mailbox keeps once: at most one per
    # delivery thread.
    repeats = sandbox.mail.deliveries - len(sandbox.mail.messages)
    assert 0 <= repeats <= kills * DELIVERY_THREADS
    with store_session(database_url) as session:
        states = Counter(session.scalars(select(Conversation.state)))
        replies = session.scalar(select(func.count()).select_from(HandledReply))
    assert states == {State.ANNOTATED: len(meetings)}
    assert replies == len(meetings)
