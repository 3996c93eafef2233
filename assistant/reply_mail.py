"""From a reply email's bytes to who sent it, which question it answers, and its new text.

- MIME, charsets and transfer encodings are the standard library's `email` package
  (policy.default), which reads any charset Python has a codec for.
- HTML-only mail becomes text with BeautifulSoup, after the blocks where clients put the quoted
  original are removed (Gmail's gmail_quote, Outlook's divRplyFwdMsg and appendonsend, Apple's
  blockquote type=cite, Thunderbird's moz-cite-prefix).
- `>` quotes and the attribution line before each ("On … wrote:") are removed here first, so
  bottom-posted and interleaved answers survive; then mail-parser-reply removes Outlook's
  From/Sent blocks, other attributions ("Am … schrieb:"), signatures and mobile footers.
- Auto-replies and bounces follow RFC 3834 (Auto-Submitted), the de-facto X-Autoreply,
  X-Autorespond and Precedence headers, out-of-office subjects, and RFC 3464 delivery reports.
The token travels in the Reply-To plus-address (assistant+TOKEN@domain) and in the subject tag
[MFA-TOKEN]; this module only finds it (reply_tokens checks it).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from bs4 import BeautifulSoup, ParserRejectedMarkup
from mailparser_reply import EmailReplyParser

TOKEN = r"[a-z2-7]{26,40}"
_SUBJECT_TAG = re.compile(rf"\[MFA-({TOKEN})\]", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|undeliverable|delivery status notification|"
    r"mail delivery failed|returned mail)", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_ATTRIBUTION_START = re.compile(r"^\s*(on|am|le|el|il|op|den|w dniu)\s", re.IGNORECASE)
# RFC 8601's dmarc result and the From domain it was checked for (RFC 7489 section 11.2).
_DMARC_PASS = re.compile(r"\bdmarc=pass\b[^;]*?\bheader\.from=([^\s;()]+)", re.IGNORECASE)
_BULK = {"bulk", "auto_reply", "list", "junk"}
# What the email package's header parser raises on headers it cannot make sense of, besides
# HeaderParseError (a ValueError): CPython 3.11's address parser even raises TypeError on
# `From: "":, ."":` (found by tests/fuzz/atheris_targets.py).
_HEADER_PARSER_FAILURES = (ValueError, IndexError, AttributeError, TypeError)
# Where clients put the quoted original: inside these elements ...
_QUOTE_ELEMENTS = ("div.gmail_quote", "blockquote", "div.moz-cite-prefix")
# ... or after these markers (Outlook), up to the end of the message.
_QUOTE_MARKERS = ("div#divRplyFwdMsg", "div#appendonsend",
                  "div#mail-editor-reference-message-container")
_BLOCKS = ("p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "blockquote", "pre")
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "ja"]


@dataclass(frozen=True)
class ReplyEmail:
    sender: str  # the From address, lower-cased
    token: str | None
    auto_reply: bool
    new_text: str  # what the sender wrote, without quotes, signature and footers
    message_id: str = ""
    dmarc_pass: bool = False  # our receiving server said dmarc=pass, for the From domain
    written_at: datetime | None = None  # its Date header, when it has a readable one


def read_reply_email(raw: bytes, assistant_address: str | None = None,
                     authserv_id: str | None = None) -> ReplyEmail:
    """Read a reply; never raises on malformed mail (the worst case is an empty reading).

    Without the assistant's address, a plus-address token in any address is taken. With
    authserv_id, only an Authentication-Results header of that receiving server can say the
    sender passed DMARC.
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(_header(message, "From"))[1].lower()
    return ReplyEmail(
        sender=sender,
        token=_token(message, assistant_address),
        auto_reply=is_auto_reply(message, sender),
        new_text=_new_text(message),
        message_id=_header(message, "Message-ID").strip(),
        dmarc_pass=_dmarc_pass(message, sender.rpartition("@")[2], authserv_id),
        written_at=_written_at(_header(message, "Date")),
    )


def _written_at(date: str) -> datetime | None:
    """RFC 5322's Date as an aware datetime (a zone-less one read as UTC); None if unreadable."""
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dmarc_pass(message: EmailMessage, from_domain: str, authserv_id: str | None) -> bool:
    """What the topmost Authentication-Results (RFC 8601) says: the one our own server added.

    Lower ones may have been written by anyone along the way, the sender included; and when
    our server writes none, the topmost is the sender's, which only the authserv-id (the
    header's first word, naming the server that checked) tells apart. The pass must be for the
    domain in From, not for some other domain the message also carried.
    """
    try:
        results = message.get_all("Authentication-Results") or []
    except _HEADER_PARSER_FAILURES:
        return False
    if not results or not from_domain:
        return False
    topmost = str(results[0])
    if authserv_id and topmost.split(";", 1)[0].split()[:1] != [authserv_id]:
        return False
    verdict = _DMARC_PASS.search(topmost)
    return verdict is not None and verdict.group(1).lower() == from_domain


def is_auto_reply(message: EmailMessage, sender: str = "") -> bool:
    auto_submitted = _header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return True
    if _header(message, "Precedence").strip().lower() in _BULK:
        return True
    if message.get_content_type() == "multipart/report":
        return True
    local = sender.partition("@")[0]
    if local in ("mailer-daemon", "postmaster"):
        return True
    return bool(_AUTO_SUBJECT.match(_header(message, "Subject")))


def _token(message: EmailMessage, assistant_address: str | None) -> str | None:
    if assistant_address:
        local, _, domain = assistant_address.lower().partition("@")
        plus = re.compile(rf"^{re.escape(local)}\+({TOKEN})@{re.escape(domain)}$", re.IGNORECASE)
    else:
        plus = re.compile(rf"^[^@+\s]+\+({TOKEN})@[^@\s]+$", re.IGNORECASE)
    headers = [_header(message, name) for name in ("To", "Cc", "Delivered-To")]
    for _, address in getaddresses(headers):
        found = plus.match(address.strip())
        if found:
            return found.group(1).lower()
    tag = _SUBJECT_TAG.search(_header(message, "Subject"))
    return tag.group(1).lower() if tag else None


def _new_text(message: EmailMessage) -> str:
    text = without_quoted_lines(_body_text(message))
    if not text.strip():
        return ""
    parser = EmailReplyParser(languages=_LANGUAGES)
    try:
        replies = parser.read(text=text).replies
    except (ValueError, IndexError, re.error):
        return text.strip()
    return replies[0].body.strip() if replies else ""


def without_quoted_lines(text: str) -> str:
    """text without its `>` quotes and the attribution line(s) that introduce each of them.

    Done before mail-parser-reply, which takes everything after an attribution for the quote
    and so would lose a bottom-posted or interleaved answer, and would take a reply made only
    of a quote for new text.
    """
    lines = text.splitlines()
    kept: list[str] = []
    for line in lines:
        if _QUOTED.match(line):
            _drop_attribution(kept)
            continue
        kept.append(line)
    return "\n".join(kept)


def _drop_attribution(kept: list[str]) -> None:
    """Remove the attribution ("On … wrote:", maybe wrapped over two lines) ending kept."""
    while kept and not kept[-1].strip():
        kept.pop()
    if not kept or not kept[-1].rstrip().endswith(":"):
        return
    kept.pop()
    if kept and kept[-1].strip() and _ATTRIBUTION_START.match(kept[-1]) and not \
            kept[-1].rstrip().endswith((".", "!", "?", ":")):
        kept.pop()  # the first half of an attribution the client wrapped


def _body_text(message: EmailMessage) -> str:
    """The plain text of the message, from its text part or, failing that, its HTML."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, LookupError, AttributeError):
        # AttributeError: CPython's get_body walks into a multipart/related whose boundary
        # never comes, whose payload is then text, not parts (found by hypothesis).
        part = None
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content


def html_to_text(html: str) -> str:
    """Visible text of an HTML reply, without the quoted original, line breaks kept.

    HTML that Python's parser gives up on (`<![<!DOCTYPE`, found by atheris) reads as no
    text: its quoted original could not be told apart, and a guess is worse than none.
    """
    try:
        soup = BeautifulSoup(html, "html.parser")
    except ParserRejectedMarkup:
        return ""
    for selector in _QUOTE_MARKERS:
        marker = soup.select_one(selector)
        if marker is not None:
            for following in list(marker.find_all_next(string=True)):
                following.extract()
            marker.decompose()
    for selector in _QUOTE_ELEMENTS:
        for element in soup.select(selector):
            element.decompose()
    for element in soup(["script", "style", "head"]):
        element.decompose()
    for element in soup.find_all(_BLOCKS):
        element.insert_after("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" ")
    return "\n".join(line.strip() for line in soup.get_text().splitlines())


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except _HEADER_PARSER_FAILURES:
        return ""  # a header so malformed the parser cannot even produce it
    return str(value) if value is not None else ""
