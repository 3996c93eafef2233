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
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant import team_report
from assistant.commands.report import number
from assistant.config import Config
from assistant.demo_calendars import (
    BERLIN,
    Booking,
    book,
    cancel,
    event_of,
    minutes_of,
    note_of,
    own_text,
    video_link_of,
    when_on,
)
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
JUERGEN = "juergen@example.com"  # his Google Calendar is in German
# What an admin told the assistant about two customers (config [customers]).
DEMO_CUSTOMERS = {
    "acme.example": {"name": "Acme", "values": "virtual"},
    "northwind.example": {"name": "Northwind Traders", "values": "in_person",
                          "competitors_active": True, "power": "balanced"},
    "kunde.example": {"name": "Kunde GmbH", "language": "de"},
}
Say = Callable[[str], None]


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
                ("jo@contoso.example",), reply="B B B"),
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
    sandbox = SandboxEnvironment(folder / "sandbox", google_users=[ALICE, JUERGEN],
                                 microsoft_users=[BOB], locales={JUERGEN: "de"}).start()
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
            book(sandbox, booking)
        _tell_the_week(story, built, week)
        questions = _tell_the_questions(story, sandbox, week)
        _tell_the_cancellation(story, built, sandbox, week)
        _tell_the_replies(story, built, inbox, week, questions)
        built.service.cycle()
        _tell_the_outcomes(story, built, sandbox, week)
        _tell_what_is_remembered(story, built, sandbox)
        _tell_it_in_german(story, built, sandbox, inbox)
        _tell_the_figures(story, built)
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
                  f"{len(questions)} emails went out. Each asks only the rows whose answers "
                  "could change the format, and says what happens without an answer; "
                  "meetings no answer could change are decided without asking. The first:")
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
            cancel(sandbox, booking)
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
            story.outcome(booking, _recommendation(built, booking), event_of(sandbox, booking))
    confirmations = [m for m in sandbox.mail.messages if "[MFA-" in m["Subject"]
                     and "in person or virtual?" not in m["Subject"]]
    story.line(f"{len(confirmations)} confirmation emails told the organisers what changed. "
               "The one for a meeting decided without a question:")
    unasked = next((m for m in confirmations
                    if "so I didn't ask" in m.get_body(("plain",)).get_content()), None)
    if unasked is not None:
        story.email(unasked)
    built.service.cycle()
    story.line(f"A further cycle changed nothing: {sandbox.mail.deliveries} emails in all, "
               "none twice.")


def _tell_what_is_remembered(story: Story, built: Built, sandbox: SandboxEnvironment) -> None:
    story.heading("6. Answers about a customer are remembered",
                  "Bob's answer to row 5 (what Contoso values) describes the customer, not the "
                  "meeting: his next Contoso meeting reuses it.")
    booking = Booking("next", Provider.MICROSOFT, BOB, "Contoso renewal call", 7, 10, 60,
                      ("jo@contoso.example", "kim@contoso.example"))
    book(sandbox, booking)
    built.service.cycle()
    question = _questions(sandbox).get(booking.title)
    body = question.get_body(("plain",)).get_content() if question else ""  # type: ignore
    remembered = [line.strip() for line in body.splitlines() if "answer of" in line]
    for line in remembered:
        story.line(f"{booking.title!r}, known already: {line}")
    asked = _asked(built, booking)
    story.line(f"It asks {_rows_words(asked)}.")


def _tell_it_in_german(story: Story, built: Built, sandbox: SandboxEnvironment,
                       inbox: SandboxInbox) -> None:
    story.heading("7. In the organiser's and the customer's language",
                  f"Jürgen ({JUERGEN}) uses Google Calendar in German, so his emails are "
                  "German; the admin noted that Kunde GmbH reads German, so its invite note "
                  "is too. Nothing needs asking, and he changes the decision in German, as "
                  "he would.")
    booking = Booking("german", Provider.GOOGLE, JUERGEN, "Workshop mit Kunde GmbH", 6, 10, 60,
                      ("petra@kunde.example", "tom@kunde.example"),
                      reply="Lieber per Video, Teams reicht.")
    book(sandbox, booking)
    built.service.cycle()
    question = next((m for m in sandbox.mail.to(JUERGEN) if "[MFA-" in m["Subject"]), None)
    if question is None:
        story.line(f"{booking.title!r}: no email went to {JUERGEN}")
        return
    story.email(question)
    inbox.receive(_reply(question, booking.reply))
    story.line(f"{JUERGEN} answers: {booking.reply!r}")
    built.service.cycle()
    story.outcome(booking, _recommendation(built, booking), event_of(sandbox, booking))


def _rows_words(rows: list[int]) -> str:
    """'no question', '1 question (row 1)', '2 questions (rows 2, 3)'."""
    if not rows:
        return "no question"
    numbers = ", ".join(map(str, rows))
    return (f"1 question (row {numbers})" if len(rows) == 1
            else f"{len(rows)} questions (rows {numbers})")


def _tell_the_figures(story: Story, built: Built) -> None:
    with built.service.store.reading() as session:
        report = team_report.gather(session, since=datetime.now(UTC).date(), teams=(),
                                    now=datetime.now(UTC))
    burden = report.burden
    story.heading("8. The week in figures", "As `assistant report` counts them.")
    story.line(f"{report.meetings.detected} customer meetings; questions per meeting: median "
               f"{number(burden.median_questions_per_meeting)}; per meeting asked: median "
               f"{number(burden.median_questions)}, 90th percentile "
               f"{number(burden.p90_questions)}.")
    story.line(f"Decided with no question: {burden.decided_unasked} of {burden.decided}; "
               f"emails per meeting: {number(burden.emails_per_meeting)} "
               f"({burden.emails} emails).")


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

    def recognised(self, talks: list[tuple[str, datetime | None, str, str, list[int]]]) -> None:
        for title, start, state, why, asked in talks:
            when = f"{start.astimezone(BERLIN):%a %d %b}" if start else "all day"
            verdict = "left alone" if state == "skipped" else "customer meeting"
            asks = f"; asks {_rows_words(asked)}" if state in ("detected", "asked") else ""
            self.line(f"{title} ({when}): {verdict}, {why}{asks}")

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
        before_minutes, after_minutes = minutes_of(booking.before), minutes_of(after)
        note = note_of(booking.provider, after)
        totals = recommendation.detail.get("totals", {})
        item = {"kind": "outcome", "title": booking.title, "format": words, "reasons": reasons,
                "organiser": booking.organiser, "totals": totals,
                "decided_by": recommendation.decided_by.replace("_", " "),
                "before_minutes": before_minutes, "after_minutes": after_minutes,
                "video": video_link_of(booking.provider, after), "note": note,
                "had_video": video_link_of(booking.provider, booking.before),
                "kept": own_text(booking.provider, after)}
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


def _history(sandbox: SandboxEnvironment, week: list[Booking]) -> None:
    """Alice has met Acme before: two past check-ins make the next one routine, not a first."""
    [checkin] = [booking for booking in week if booking.key == "checkin"]
    for weeks in (1, 2):
        start = when_on(checkin.day, checkin.hour) - timedelta(weeks=weeks)
        book(sandbox, Booking("past", Provider.GOOGLE, ALICE, checkin.title, 0, 0, 60,
                               checkin.guests), start=start)


# -- reading back what the service did ---------------------------------------------------------


def _conversations(built: Built) -> list[tuple[str, datetime | None, str, str, list[int]]]:
    with built.service.store.transaction() as session:
        rows = session.execute(select(SeenMeeting.title, SeenMeeting.start_at, Conversation.state,
                                      Conversation.why, Conversation.questions)
                               .join(Conversation).order_by(SeenMeeting.start_at)).all()
        return [(title, start, state, why, list(asked or []))
                for title, start, state, why, asked in rows]


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
        book(sandbox, booking)
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
