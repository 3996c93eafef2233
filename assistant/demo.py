"""`assistant demo`: the whole product, in seconds, with nothing to install or configure.

It starts the sandbox (the Google Calendar and Microsoft Graph emulators and a real SMTP sink,
in this process), books a realistic week in two calendars, runs the real service against them
(the same code `assistant run` runs), plays the organisers' replies, and tells what happens at
each step. Everything it shows is read back from the emulators and the mail sink, never from
the service's own idea of what it did; an HTML report of the same is left for reading later.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bs4 import BeautifulSoup
from sqlalchemy import select

from assistant import block
from assistant.config import Config
from assistant.environ import environ_set
from assistant.errors import InputError
from assistant.models import Provider
from assistant.rendering import Renderer
from assistant.secret_files import write_owner_only
from assistant.store.tables import Conversation, RecommendationRecord, SeenMeeting
from assistant.wiring import Built, build_service
from integrations.sandbox.environment import SandboxEnvironment, to_toml
from integrations.sandbox.mail import SandboxInbox

ALICE, BOB = "alice@example.com", "bob@example.com"
CAROL, DAN = "carol@example.com", "dan@example.com"  # not watched until an admin adds them
# What an admin told the assistant about two customers (config [customers]).
DEMO_CUSTOMERS = {
    "acme.example": {"name": "Acme", "values": "virtual"},
    "northwind.example": {"name": "Northwind Traders", "values": "in_person",
                          "competitors_active": True, "power": "balanced"},
}
BERLIN = ZoneInfo("Europe/Berlin")
Say = Callable[[str], None]


@dataclass
class Booking:
    """One meeting of the demo week, and what the demo does with it."""

    key: str
    provider: Provider
    organiser: str
    title: str
    day: int  # working days from today
    hour: int
    minutes: int
    guests: tuple[str, ...]
    reply: str = ""  # what the organiser answers, if asked
    cancel: bool = False  # the organiser cancels it after the first sync
    fields: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""
    before: dict[str, Any] = field(default_factory=dict)


def newcomers() -> list[Booking]:
    """Meetings in two calendars nobody watches yet, for `demo --serve`'s admin to add."""
    return [Booking("carol", Provider.GOOGLE, CAROL, "Kick-off with Globex", 3, 11, 60,
                    ("ann@globex.example",)),
            Booking("dan", Provider.MICROSOFT, DAN, "Contoso renewal negotiation", 4, 14, 60,
                    ("li@contoso.example", "ravi@contoso.example"))]


def demo_week() -> list[Booking]:
    return [
        Booking("standup", Provider.GOOGLE, ALICE, "Team stand-up", 1, 9, 30,
                ("carol@example.com",)),
        Booking("pitch", Provider.GOOGLE, ALICE, "First pitch to Northwind Traders", 3, 10, 60,
                ("dana@northwind.example", "eli@northwind.example"), reply="3A 6A 9A"),
        Booking("checkin", Provider.GOOGLE, ALICE, "Acme weekly check-in", 2, 14, 60,
                ("erin@acme.example",), reply="virtual"),
        Booking("call", Provider.GOOGLE, ALICE, "Call with Initech", 4, 11, 30,
                ("finn@initech.example",), cancel=True),
        Booking("workshop", Provider.MICROSOFT, BOB, "Design workshop with Globex", 4, 13, 90,
                ("gus@globex.example", "hana@globex.example", "ivan@globex.example"),
                reply="A B A A"),
        Booking("review", Provider.MICROSOFT, BOB, "Contoso progress review", 5, 15, 60,
                ("jo@contoso.example",), reply="6B 9B 11B"),
        Booking("one-to-one", Provider.MICROSOFT, BOB, "1:1 with Carol", 2, 16, 30,
                ("carol@example.com",)),
    ]


def run_demo(folder: Path, say: Say, *, serve: bool = False,
             listen: str = "127.0.0.1:8080") -> Path:
    """Play the demo in folder; returns the HTML report's path."""
    if serve:
        _check_free(listen)  # before the story, not after it
    folder = folder.resolve()  # the config it leaves must work from any directory
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = SandboxEnvironment(folder / "sandbox", google_users=[ALICE],
                                 microsoft_users=[BOB]).start()
    try:
        # The sandbox's secrets in the environment, as production reads them, then gone.
        with environ_set(sandbox.environ):
            return _play(sandbox, folder, say, serve, listen)
    finally:
        sandbox.stop()


def _play(sandbox: SandboxEnvironment, folder: Path, say: Say, serve: bool,
          listen: str) -> Path:
    database = folder / "assistant.sqlite3"
    database.unlink(missing_ok=True)
    data = sandbox.config(f"sqlite:///{database}", customers=DEMO_CUSTOMERS,
                          service={"listen": listen, "sync_interval_seconds": 10})
    config = Config.model_validate(data)
    # For `assistant run` beside `demo --serve`: the next port, as the demo holds its own.
    host, _, port = listen.rpartition(":")
    (folder / "assistant.toml").write_text(to_toml(
        {**data, "service": {**data["service"], "listen": f"{host}:{int(port) + 1}"}}))
    inbox = SandboxInbox()
    built = build_service(config, inbox=inbox)
    story = Story(say)
    try:
        week = demo_week()
        _history(sandbox, week)
        for booking in week:
            _book(sandbox, booking)
        _tell_the_week(story, built, week)
        questions = _tell_the_questions(story, sandbox, week)
        _tell_the_cancellation(story, built, sandbox, week)
        _tell_the_replies(story, built, inbox, week, questions)
        built.service.cycle()
        _tell_the_outcomes(story, built, sandbox, week)
        report = story.write_report(folder / "report.html")
        if serve:
            _serve(built, config, sandbox, say, folder)
        return report
    finally:
        built.close()


def _tell_the_week(story: Story, built: Built, week: list[Booking]) -> None:
    story.heading("1. A week in two calendars",
                  f"Alice ({ALICE}) uses Google Calendar and Bob ({BOB}) Outlook. {len(week)} "
                  "meetings are booked for the coming days (Alice also met Acme twice "
                  "before); the assistant syncs both calendars and tells customer meetings "
                  "from the rest.")
    built.service.cycle()
    story.recognised(_conversations(built))


def _tell_the_questions(story: Story, sandbox: SandboxEnvironment, week: list[Booking]
                        ) -> dict[str, EmailMessage]:
    questions = _questions(sandbox)
    story.heading("2. The question emails",
                  f"{len(questions)} emails went out, one per upcoming customer meeting; each "
                  "asks only what the calendar and the admin's customer facts could not "
                  "tell. The first:")
    # In the week's order: both calendars sync at once, so the emails arrive in any order.
    first = next((questions[b.title] for b in week if b.title in questions), None)
    if first is not None:
        story.email(first)
    return questions


def _tell_the_cancellation(story: Story, built: Built, sandbox: SandboxEnvironment,
                           week: list[Booking]) -> None:
    story.heading("3. Plans change", "An organiser cancels a meeting after its question went out.")
    for booking in week:
        if booking.cancel:
            _cancel(sandbox, booking)
    built.service.cycle()
    for booking in week:
        if booking.cancel:
            story.line(f"{booking.organiser} cancels {booking.title!r}; the assistant now has "
                       f"it as {_state(built, booking)}: no reminder, decision or "
                       "confirmation will follow.")


def _tell_the_replies(story: Story, built: Built, inbox: SandboxInbox, week: list[Booking],
                      questions: dict[str, EmailMessage]) -> None:
    story.heading("4. The organisers reply", "Short answers, as typed on a phone.")
    for booking in week:
        question = questions.get(booking.title)
        if booking.reply and question is not None:
            inbox.receive(_reply(question, booking.reply))
            letters = booking.reply.split()
            order = ""
            if len(letters) > 1 and all(letter in ("A", "B") for letter in letters):
                rows = ", ".join(map(str, _asked(built, booking)[: len(letters)]))
                order = f" (letters in the order asked: rows {rows})"
            story.line(f"{booking.organiser} answers {booking.title!r}: "
                       f"{booking.reply!r}{order}")


def _tell_the_outcomes(story: Story, built: Built, sandbox: SandboxEnvironment,
                       week: list[Booking]) -> None:
    story.heading("5. Decisions and invites", "Read back from the calendars themselves.")
    for booking in week:
        if booking.reply:
            story.outcome(booking, _recommendation(built, booking), _event(sandbox, booking))
    confirmations = [m for m in sandbox.mail.messages if "[MFA-" in m["Subject"]
                     and "in person or virtual?" not in m["Subject"]]
    story.line(f"{len(confirmations)} confirmation emails told the organisers what changed.")
    built.service.cycle()
    story.line(f"A further cycle changed nothing: {sandbox.mail.deliveries} emails in all, "
               "none twice.")


class Story:
    """What the demo tells, on the terminal as it happens and in the report afterwards."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.sections: list[dict[str, Any]] = []

    def heading(self, title: str, text: str) -> None:
        self.sections.append({"title": title, "text": text, "items": []})
        self.say(f"\n== {title} ==\n{text}")

    def line(self, text: str) -> None:
        self.sections[-1]["items"].append({"kind": "line", "text": text})
        self.say(f"  {text}")

    def recognised(self, talks: list[tuple[str, datetime | None, str, str]]) -> None:
        for title, start, state, why in talks:
            when = f"{start.astimezone(BERLIN):%a %d %b}" if start else "all day"
            verdict = "left alone" if state == "skipped" else "customer meeting"
            self.line(f"{title} ({when}): {verdict}, {why}")

    def email(self, message: EmailMessage) -> None:
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        self.sections[-1]["items"].append({"kind": "email", "to": message["To"],
                                           "subject": message["Subject"], "text": text})
        self.say(f"  To: {message['To']}\n  Subject: {message['Subject']}\n")
        self.say("\n".join("  | " + line for line in text.splitlines()))

    def outcome(self, booking: Booking, recommendation: RecommendationRecord | None,
                after: dict[str, Any]) -> None:
        if recommendation is None:
            self.line(f"{booking.title}: no decision yet")
            return
        words = "in person" if recommendation.format == "in_person" else "virtual"
        reasons = recommendation.detail.get("reasons", [])[:3]
        before_minutes, after_minutes = _minutes(booking.before), _minutes(after)
        note = _note(booking.provider, after)
        totals = recommendation.detail.get("totals", {})
        item = {"kind": "outcome", "title": booking.title, "format": words, "reasons": reasons,
                "organiser": booking.organiser, "totals": totals,
                "decided_by": recommendation.decided_by.replace("_", " "),
                "before_minutes": before_minutes, "after_minutes": after_minutes,
                "video": _video_link(booking.provider, after), "note": note,
                "had_video": _video_link(booking.provider, booking.before),
                "kept": _own_text(booking.provider, after)}
        self.sections[-1]["items"].append(item)
        self.say(f"\n  {booking.title} ({booking.organiser}): {words.upper()}")
        for reason in reasons:
            self.say(f"    - {reason}")
        length = (f"{before_minutes} minutes became {after_minutes}"
                  if before_minutes != after_minutes else f"{after_minutes} minutes, unchanged")
        video = "video link added" if item["video"] and not item["had_video"] else (
            "video link kept" if item["video"] else "no video link")
        self.say(f"    invite: {length}; {video}; note:")
        self.say("\n".join("    | " + line for line in note.splitlines()))

    def write_report(self, path: Path) -> Path:
        html = Renderer().render("demo_report.html.j2", {
            "sections": self.sections, "made": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")})
        path.write_text(html, encoding="utf-8")
        self.say(f"\nThe same story, to read later: {path}")
        return path


# -- the sandbox calendars -------------------------------------------------------------------


def _when(workday: int, hour: int) -> datetime:
    """hour o'clock in Berlin on the workday-th working day from today (1: the next one)."""
    date = datetime.now(UTC).astimezone(BERLIN)
    while workday > 0:
        date += timedelta(days=1)
        workday -= date.weekday() < 5
    return date.replace(hour=hour, minute=0, second=0, microsecond=0)


def _history(sandbox: SandboxEnvironment, week: list[Booking]) -> None:
    """Alice has met Acme before: two past check-ins make the next one routine, not a first."""
    [checkin] = [booking for booking in week if booking.key == "checkin"]
    for weeks in (1, 2):
        start = _when(checkin.day, checkin.hour) - timedelta(weeks=weeks)
        _book(sandbox, Booking("past", Provider.GOOGLE, ALICE, checkin.title, 0, 0, 60,
                               checkin.guests), start=start)


def _book(sandbox: SandboxEnvironment, booking: Booking, start: datetime | None = None) -> None:
    start = start or _when(booking.day, booking.hour)
    end = start + timedelta(minutes=booking.minutes)
    if booking.provider is Provider.GOOGLE:
        event = sandbox.google.create_event(
            booking.organiser, summary=booking.title, description="Agenda to follow.",
            start={"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
            end={"dateTime": end.isoformat(), "timeZone": "Europe/Berlin"},
            attendees=[{"email": booking.organiser},
                       *({"email": guest} for guest in booking.guests)], **booking.fields)
    else:
        event = sandbox.graph.create_event(
            booking.organiser, subject=booking.title,
            body={"contentType": "html", "content": "<p>Agenda to follow.</p>"},
            start={"dateTime": _utc(start), "timeZone": "UTC"},
            end={"dateTime": _utc(end), "timeZone": "UTC"},
            attendees=[{"emailAddress": {"address": guest}, "type": "required"}
                       for guest in booking.guests], **booking.fields)
    booking.event_id = event["id"]
    booking.before = _event(sandbox, booking)


def _cancel(sandbox: SandboxEnvironment, booking: Booking) -> None:
    if booking.provider is Provider.GOOGLE:
        sandbox.google.cancel_event(booking.organiser, booking.event_id)
    else:
        sandbox.graph.cancel_event(booking.organiser, booking.event_id)


def _event(sandbox: SandboxEnvironment, booking: Booking) -> dict[str, Any]:
    if booking.provider is Provider.GOOGLE:
        return sandbox.google.event(booking.organiser, booking.event_id)
    return sandbox.graph.event(booking.organiser, booking.event_id)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def _minutes(event: dict[str, Any]) -> int:
    start, end = (datetime.fromisoformat(event[k]["dateTime"][:19]) for k in ("start", "end"))
    return int((end - start).total_seconds() // 60)


def _video_link(provider: Provider, event: dict[str, Any]) -> str:
    if provider is Provider.GOOGLE:
        return str(event.get("hangoutLink") or "")
    return str((event.get("onlineMeeting") or {}).get("joinUrl") or "")


def _description(provider: Provider, event: dict[str, Any]) -> tuple[str, bool]:
    if provider is Provider.GOOGLE:
        return str(event.get("description") or ""), False
    return str(event["body"]["content"]), event["body"].get("contentType") == "html"


def _own_text(provider: Provider, event: dict[str, Any]) -> str:
    """The organiser's own words in the description, around the assistant's note."""
    description, is_html = _description(provider, event)
    rest = block.remove_block(description, is_html)
    return BeautifulSoup(rest, "html.parser").get_text(" ", strip=True) if is_html else rest.strip()


def _note(provider: Provider, event: dict[str, Any]) -> str:
    description, is_html = _description(provider, event)
    span = block.find_block(description, is_html)
    if span is None:
        return "(no note)"
    note = description[span[0] : span[1]]
    return BeautifulSoup(note, "html.parser").get_text("\n", strip=True) if is_html else note


# -- reading back what the service did ---------------------------------------------------------


def _conversations(built: Built) -> list[tuple[str, datetime | None, str, str]]:
    with built.service.store.transaction() as session:
        rows = session.execute(select(SeenMeeting.title, SeenMeeting.start_at, Conversation.state,
                                      Conversation.why)
                               .join(Conversation).order_by(SeenMeeting.start_at)).all()
        return [(title, start, state, why) for title, start, state, why in rows]


def _asked(built: Built, booking: Booking) -> list[int]:
    with built.service.store.transaction() as session:
        return list(session.scalars(select(Conversation.questions).join(SeenMeeting).where(
            SeenMeeting.event_id == booking.event_id)).first() or [])


def _state(built: Built, booking: Booking) -> str:
    with built.service.store.transaction() as session:
        return session.scalars(select(Conversation.state).join(SeenMeeting).where(
            SeenMeeting.event_id == booking.event_id)).first() or "unknown"


def _recommendation(built: Built, booking: Booking) -> RecommendationRecord | None:
    with built.service.store.transaction() as session:
        return session.scalars(
            select(RecommendationRecord).join(Conversation).join(SeenMeeting)
            .where(SeenMeeting.event_id == booking.event_id)
            .order_by(RecommendationRecord.id.desc())).first()


def _questions(sandbox: SandboxEnvironment) -> dict[str, EmailMessage]:
    """The question emails the sink holds, by meeting title."""
    found = {}
    for message in sandbox.mail.messages:
        subject = str(message["Subject"])
        if subject.endswith("]") and ": in person or virtual?" in subject:
            found[subject.split(": in person or virtual?")[0]] = message
    return found


def _reply(question: EmailMessage, text: str) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = question["To"]
    reply["To"] = question["Reply-To"]
    reply["Subject"] = "Re: " + str(question["Subject"])
    reply["In-Reply-To"] = question["Message-ID"]
    reply["Message-ID"] = f"<demo.{secrets.token_hex(8)}@example.com>"
    reply.set_content(f"{text}\n\nSent from my phone\n")
    return reply


def _serve(built: Built, config: Config, sandbox: SandboxEnvironment, say: Say,
           folder: Path) -> None:
    from assistant.scheduler import Worker  # only --serve needs the web server

    _admin_password(sandbox, config)  # before the web app is made: it reads it then
    for booking in newcomers():  # calendars the admin may add: each has a meeting waiting
        (sandbox.google if booking.provider is Provider.GOOGLE else sandbox.graph).add_user(
            booking.organiser)
        _book(sandbox, booking)
    client_file = sandbox.google_oauth_client_file()
    certificate_app, pem = sandbox.microsoft_certificate_app()
    secrets_file = folder / "sandbox.env"
    write_owner_only(secrets_file, "".join(f"{k}={v}\n" for k, v in sandbox.environ.items()))
    toml = folder / "assistant.toml"
    web = f"http://{config.service.listen}"
    key, app_id = sandbox.folder / "google-service-account.json", certificate_app.client_id
    say(f"""
Serving {web}: the admin page is {web}/admin/ (its password is ASSISTANT_ADMIN_PASSWORD in
{secrets_file}); also /healthz and /metrics. The emulators stay up until Ctrl-C.

Try it as an admin, in a second terminal:
  set -a; . {secrets_file}; set +a
  export PATH={Path(sys.executable).parent}:$PATH ASSISTANT_CONFIG={toml}
  export ASSISTANT_SECRETS_DIR=~/.config/meeting-format-assistant-sandbox
  assistant auth google --service-account {key} --check-user {CAROL}
  assistant calendars add {CAROL} --provider google
  assistant calendars add {DAN} --provider microsoft
  assistant status          (each new calendar has a customer meeting waiting)
  assistant report --format html --out {folder / 'team-report.html'}
Other sign-ins to try:
  assistant auth google --client-secrets {client_file} --user {ALICE}
  assistant auth microsoft --check-user {BOB}
  assistant auth microsoft --client-id {app_id} --certificate {pem} --check-user {BOB}
  assistant auth microsoft --device-code    (its sign-in page is on the emulator)
  assistant auth google --service-account ... --check-user dana@other.example    (a refusal)""")
    Worker(built, config).run()


def _check_free(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError as err:
            raise InputError(f"cannot serve on {listen} ({err.strerror}): pass --listen "
                             "HOST:PORT with a free port") from None


def _admin_password(sandbox: SandboxEnvironment, config: Config) -> None:
    """The admin page's password for this sandbox: always a new one, so that a real password
    in this shell's environment never lands in sandbox.env."""
    variable = config.service.admin_password_env
    os.environ[variable] = sandbox.environ[variable] = secrets.token_urlsafe(12)
