"""The emails the assistant writes: composed from templates, then made into real messages.

Every email is text/plain with a text/html alternative, both rendered from templates/. A question
carries its token twice: in the Reply-To plus-address (assistant+TOKEN@domain) and in the
subject tag [MFA-TOKEN], so a reply still counts when a client drops one of them. Outgoing mail
says Auto-Submitted: auto-generated (RFC 3834), which keeps vacation responders from answering
it. Header values are cleaned of line breaks and control characters first, so a meeting title
cannot inject headers.

Each email is written in one language (English unless told): its templates' sentences, the
subject, the checklist's wording, the reasons, the format's words and the dates. Organisers may
reply in any language; the example answers show the words of theirs.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.header import Header, decode_header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses, make_msgid
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from assistant.answer_links import DECISION_ROW, AnswerLinks
from assistant.checklist import Checklist
from assistant.conversation import Unasked
from assistant.language import DEFAULT
from assistant.language.phrases import Voice, voice
from assistant.models import Format, Meeting, Recommendation, RowAnswer, Side
from assistant.ports import MessageToSend
from assistant.rendering import Renderer
from assistant.replies import Problem, Reading

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
MAX_SUBJECT_TITLE = 80


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    reply_to: str = ""


@dataclass(frozen=True)
class OneClick:
    """The one-click links of one question email."""

    links: AnswerLinks
    conversation_id: int
    expires: datetime

    def row(self, number: int, side: Side) -> str:
        return self.links.link(self.conversation_id, number, side, self.expires)

    def decision(self, choice: Format) -> str:
        return self.links.link(self.conversation_id, DECISION_ROW, choice, self.expires)


@dataclass(frozen=True)
class Sender:
    """Who the assistant writes as."""

    address: str  # e.g. meeting-assistant@example.com
    organisation_name: str

    def reply_address(self, token: str) -> str:
        local, _, domain = self.address.partition("@")
        return f"{local}+{token}@{domain}"


def question_email(
    meeting: Meeting,
    *,
    customers: Sequence[str],
    inferred: Mapping[str, RowAnswer],
    questions: Sequence[int],
    checklist: Checklist,
    token: str,
    sender: Sender,
    deadline: datetime | None,
    renderer: Renderer,
    reminder: bool = False,
    links: OneClick | None = None,
    default: Format | None = None,
    language: str = DEFAULT,
) -> OutgoingEmail:
    """The one email that asks the organiser the rows whose answers could change the format.

    It says what is known already (inferred: the rows known without asking) and, with
    default, what the assistant will decide without an answer, so that silence is a choice.
    As a reminder it says so up front and keeps the same token, so either email's reply counts.
    With links (a public URL is configured), every option in the HTML part is also a one-click
    link; the text part stays short.
    """
    says = voice(language)
    checklist = checklist.in_language(language)
    title = header_text(meeting.title) or says.gettext("Your customer meeting")
    asked = [checklist.find(number) for number in questions]
    context = {
        "greeting_name": _greeting_name(meeting),
        "title": title,
        "customers": list(customers),
        "when": describe_when(meeting, language),
        "inferred": [
            {"number": row.number, "key": says.gettext(row.key), "side": answer.side.value,
             "wording": row.wording(answer.side), "why": says.say(answer.why)}
            for row in checklist
            if (answer := inferred.get(row.key)) is not None and answer.side is not None
        ],
        "questions": [{"number": row.number, "question": row.question, "a": row.a, "b": row.b,
                       "link_a": links.row(row.number, Side.A) if links else "",
                       "link_b": links.row(row.number, Side.B) if links else ""}
                      for row in asked],
        "link_in_person": links.decision(Format.IN_PERSON) if links else "",
        "link_virtual": links.decision(Format.VIRTUAL) if links else "",
        "example": _example([row.number for row in asked]),
        "deadline": _short_time(deadline, meeting, says) if deadline else "",
        "default_words": says.gettext(default.words) if default else "",
        "organisation_name": sender.organisation_name,
        "reminder": reminder,
    }
    subject = (says.gettext("Reminder: {title}: in person or virtual?") if reminder
               else says.gettext("{title}: in person or virtual?"))
    return OutgoingEmail(
        to=meeting.organizer.email,
        subject=f"{subject.format(title=_shorten(title))} [MFA-{token}]",
        text=renderer.render("question.txt.j2", context, language),
        html=renderer.render("question.html.j2", context, language),
        reply_to=sender.reply_address(token),
    )


def clarification_email(
    meeting: Meeting,
    reading: Reading,
    *,
    checklist: Checklist,
    questions: Sequence[int],
    token: str,
    sender: Sender,
    renderer: Renderer,
    language: str = DEFAULT,
) -> OutgoingEmail:
    """Says what was understood of a reply and what was not, and how to answer."""
    says = voice(language)
    title = header_text(meeting.title) or says.gettext("your customer meeting")
    understood = [says.gettext("{number}. {row}: {side}").format(
                      number=n, row=says.gettext(checklist.find(n).key), side=side.value)
                  for n, side in sorted(reading.answers.items())]
    if reading.positional:
        understood.append(says.gettext("in the order asked: {sides}").format(
            sides=" ".join(s.value for s in reading.positional)))
    if reading.decision:
        understood.append(says.gettext("decision: {format}").format(
            format=says.gettext(reading.decision.words)))
    problems = [_problem(problem, says) for problem in reading.problems]
    context = {
        "greeting_name": _greeting_name(meeting),
        "title": title,
        "understood": understood,
        "problems": problems or [says.gettext("no answer could be found in the reply")],
        "example": _example(list(questions) or [1]),
        "organisation_name": sender.organisation_name,
    }
    subject = says.gettext("{title}: in person or virtual?").format(title=_shorten(title))
    return OutgoingEmail(
        to=meeting.organizer.email,
        subject=f"Re: {subject} [MFA-{token}]",
        text=renderer.render("clarification.txt.j2", context, language),
        html=renderer.render("clarification.html.j2", context, language),
        reply_to=sender.reply_address(token),
    )


def _problem(problem: Problem | str, says: Voice) -> str:
    """What a reply's reading could not read, in the language of says."""
    if isinstance(problem, Problem):  # an English message id with {placeholders}, and values
        return says.gettext(problem.message).format(**problem.values)
    return says.say(problem)


def confirmation_email(
    meeting: Meeting,
    recommendation: Recommendation,
    changes: Sequence[str],
    *,
    without_answer: bool,
    token: str,
    sender: Sender,
    renderer: Renderer,
    unasked: Unasked | None = None,
    language: str = DEFAULT,
) -> OutgoingEmail:
    """Tells the organiser what was decided and written, why nothing was asked (unasked),
    and how to change it in one word."""
    says = voice(language)
    title = header_text(meeting.title) or says.gettext("Your customer meeting")
    format_words = says.gettext(recommendation.format.words)
    context = {
        "greeting_name": _greeting_name(meeting),
        "title": title,
        "when": describe_when(meeting, language),
        "format_words": format_words,
        "without_answer": without_answer,
        "unasked": unasked.value if unasked else "",
        "other_format_words": says.gettext(recommendation.format.other.words),
        "reasons": [says.say(reason) for reason in recommendation.reasons[:3]],
        "changes": [says.say(change) for change in changes],
        "answered": len(recommendation.answered),
        "inferred": len(recommendation.inferred) + len(recommendation.defaulted),
        "remembered": len(recommendation.remembered),
        "unknown": len(recommendation.unknown),
        "organisation_name": sender.organisation_name,
    }
    subject = says.gettext("{title}: {format}").format(title=_shorten(title),
                                                       format=format_words)
    return OutgoingEmail(
        to=meeting.organizer.email,
        subject=f"{subject} [MFA-{token}]",
        text=renderer.render("confirmation.txt.j2", context, language),
        html=renderer.render("confirmation.html.j2", context, language),
        reply_to=sender.reply_address(token),
    )


@dataclass(frozen=True)
class DigestItem:
    meeting: Meeting
    questions: Sequence[int]
    token: str
    default: Format | None = None  # what the assistant decides without an answer


def digest_email(
    organiser_email: str,
    items: Sequence[DigestItem],
    *,
    checklist: Checklist,
    sender: Sender,
    renderer: Renderer,
    language: str = DEFAULT,
) -> OutgoingEmail:
    """Many new meetings for one organiser in one email; each answered through its own link.

    A reply can carry one token only, so each meeting gets a mailto: link to its own reply
    address and subject: tapping it on a phone starts the right reply.
    """
    says = voice(language)
    checklist = checklist.in_language(language)
    organiser = items[0].meeting.organizer if items else None
    meetings = []
    for item in items:
        title = header_text(item.meeting.title) or says.gettext("Customer meeting")
        subject = says.gettext("{title}: in person or virtual?").format(title=_shorten(title))
        subject = f"Re: {subject} [MFA-{item.token}]"
        meetings.append({
            "title": title,
            "when": describe_when(item.meeting, language),
            "questions": [{"number": row.number, "question": row.question, "a": row.a,
                           "b": row.b} for row in map(checklist.find, item.questions)],
            "reply_link": f"mailto:{sender.reply_address(item.token)}?subject={quote(subject)}",
            "default_words": says.gettext(item.default.words) if item.default else "",
        })
    context = {
        "greeting_name": _first_name(organiser.name if organiser else "", organiser_email),
        "meetings": meetings,
        "organisation_name": sender.organisation_name,
    }
    subject = says.ngettext("{count} customer meeting: in person or virtual?",
                            "{count} customer meetings: in person or virtual?", len(items))
    return OutgoingEmail(
        to=organiser_email,
        subject=subject.format(count=len(items)),
        text=renderer.render("digest.txt.j2", context, language),
        html=renderer.render("digest.html.j2", context, language),
    )


def to_message(email: OutgoingEmail, sender: Sender, now: datetime, *,
               message_id: str = "") -> Message:
    """A complete RFC 5322 message, multipart/alternative; a fresh Message-ID unless given.

    Built with the email package's classic MIME classes: its EmailMessage API parses every
    header it is given into objects and folds them again, four times the cost, and a burst's
    thousand questions are built in a few seconds. Bodies are UTF-8 in quoted-printable,
    readable and safe for any server; a non-ASCII word in a header is an RFC 2047 encoded
    word; a non-ASCII address goes as raw UTF-8, for SMTPUTF8 (RFC 6532).
    """
    message = MIMEMultipart("alternative")
    message["From"] = _address_header(f"Meeting assistant <{sender.address}>")
    message["To"] = _address_header(email.to)
    if email.reply_to:
        message["Reply-To"] = _address_header(email.reply_to)
    message["Subject"] = _text_header(header_text(email.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id or make_msgid(
        domain=sender.address.partition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.attach(_body("plain", email.text))
    message.attach(_body("html", email.html))
    return message


def _body(subtype: str, text: str) -> MIMENonMultipart:
    """A text part in UTF-8, quoted-printable, encoded by binascii's C code rather than the
    email package's Python (RFC 2045: soft breaks within 76 columns, trailing blanks kept)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode(), istext=True).decode("ascii"))
    return part


def for_sending(message: Message) -> MessageToSend:
    """message flattened for the wire, its envelope read from its headers as smtplib's
    send_message reads it (Sender or From; To, Cc and Bcc), and any Bcc taken out."""
    sender = getaddresses([_unescaped(message["Sender"] or message["From"])])[0][1]
    recipients = tuple(address for _, address in getaddresses(
        [_unescaped(value) for field in ("To", "Cc", "Bcc")
         for value in message.get_all(field, [])]))
    international = not all(address.isascii() for address in (sender, *recipients))
    del message["Bcc"]
    policy = message.policy.clone(linesep="\r\n")
    if international and isinstance(policy, EmailPolicy):  # a message read back (an old row)
        policy = policy.clone(utf8=True)
    return MessageToSend(sender, recipients, message.as_bytes(policy=policy), international)


def _address_header(value: str) -> str:
    """An address header's value: ASCII as it is, or UTF-8 that the generator writes raw."""
    return value if value.isascii() else value.encode().decode("ascii", "surrogateescape")


def _text_header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _unescaped(value: object) -> str:
    """A header's text, with raw UTF-8 (see _address_header) read back as the characters."""
    if isinstance(value, Header):  # how the classic API hands back raw 8-bit bytes
        return "".join(part.decode("utf-8", "replace") if isinstance(part, bytes) else part
                       for part, _ in decode_header(value))
    return str(value)


def header_text(text: str) -> str:
    """text fit for a header: no line breaks or control characters, spaces collapsed."""
    return " ".join(_CONTROL.sub(" ", text).split())


def describe_when(meeting: Meeting, language: str = DEFAULT) -> str:
    """'Thu 3 Dec, 10:00-11:00 (Europe/Berlin)', in the meeting's own zone; in German
    'Do., 3. Dez., 10:00–11:00 (Europe/Berlin)'."""
    says = voice(language)
    if isinstance(meeting.start, datetime) and isinstance(meeting.end, datetime):
        zone = _zone(meeting.time_zone)
        start, end = meeting.start.astimezone(zone), meeting.end.astimezone(zone)
        return says.gettext("{day}, {start}-{end} ({zone})").format(
            day=says.day(start), start=says.clock(start), end=says.clock(end), zone=zone.key)
    if isinstance(meeting.start, date):
        return says.gettext("{day}, all day").format(day=says.day(meeting.start))
    return ""


def _short_time(moment: datetime, meeting: Meeting, says: Voice) -> str:
    """'Wed 2 Dec 10:00': a deadline, in the meeting's own zone."""
    local = moment.astimezone(_zone(meeting.time_zone))
    # TRANSLATORS: a deadline, as in "Without an answer by Wed 2 Dec 10:00, ..."
    return says.gettext("{day} {time}").format(day=says.day(local), time=says.clock(local))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(win_tz.get(name, name) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _greeting_name(meeting: Meeting) -> str:
    """The organiser's first name, or '' when there is none to greet (the template says so)."""
    return _first_name(meeting.organizer.name, meeting.organizer.email)


def _example(rows: Sequence[int]) -> str:
    """How an answer looks, on the rows actually asked: '2A 5B 9A'."""
    return " ".join(f"{number}{'AB'[i % 2]}" for i, number in enumerate(rows[:3]))


def _first_name(name: str, email: str) -> str:
    words = header_text(name).split()
    if words:
        return words[0]
    return email.partition("@")[0].split(".")[0].capitalize()


def _shorten(title: str) -> str:
    if len(title) <= MAX_SUBJECT_TITLE:
        return title
    return title[: MAX_SUBJECT_TITLE - 1].rstrip() + "…"

