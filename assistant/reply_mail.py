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
- Authentication-Results (RFC 8601) is read with authres, a parser of the whole grammar, so
  text a sender chose (a comment, a quoted reason) never passes for our server's verdict.
The token travels in the Reply-To plus-address (assistant+TOKEN@domain) and in the subject tag
[MFA-TOKEN]; this module only finds it (reply_tokens checks it).

Anyone can mail the assistant, so every step is bounded: the MIME tree's depth and number of
parts, the length of a header given to a parser, the HTML parsed and the text read for
answers; HTML is walked once, without recursion, and address lists are searched, not parsed.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

import authres
from bs4 import BeautifulSoup, CData, NavigableString, ParserRejectedMarkup, Tag
from mailparser_reply import EmailReplyParser

TOKEN = r"[a-z2-7]{26,40}"
_SUBJECT_TAG = re.compile(rf"\[MFA-({TOKEN})\]", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|undeliverable|delivery status notification|"
    r"mail delivery failed|returned mail)", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_ATTRIBUTION_START = re.compile(r"^\s*(on|am|le|el|il|op|den|w dniu)\s", re.IGNORECASE)
_BULK = {"bulk", "auto_reply", "list", "junk"}
# What the email package's header parser raises on headers it cannot make sense of, besides
# HeaderParseError (a ValueError): CPython 3.11's address parser even raises TypeError on
# `From: "":, ."":` (found by tests/fuzz/atheris_targets.py), and recurses once per `(` of a
# comment, so 300 of them in a From exceed Python's recursion limit.
_HEADER_PARSER_FAILURES = (ValueError, IndexError, AttributeError, TypeError, RecursionError)
# CPython's header parser takes time that grows with the square of a header's length (a
# 600 KB Content-Type of encoded words takes minutes), and every look at a header parses it
# again. A header longer than this reads as empty; the headers read are far shorter (From,
# Subject, Content-Type, Date), and the long ones (To, Cc, References) are never parsed.
MAX_PARSED_HEADER_CHARS = 1_000
MAX_AUTH_RESULTS_CHARS = 8_000  # authres's parser is linear; a busy server writes ~600
# Deeper than this, a MIME tree is not a person's reply: real mail nests 3 or 4 levels, a
# forwarded message a few more. CPython's parser and get_body recurse once per level.
MAX_MIME_DEPTH = 24
# Nor has a reply this many parts (a dozen inline images is a lot). Counted before parsing,
# from the Content-Type lines, since the parser reads each part's headers as it goes.
MAX_MIME_PARTS = 256
_PART_HEADER = re.compile(rb"^content-type:", re.IGNORECASE | re.MULTILINE)
# A reply's answers come first (or under the question they answer): no person types more
# text than this, and no client sends more HTML before the quoted original. HTML is parsed in
# linear time, but at about 2 s a megabyte.
MAX_TEXT_CHARS = 100_000
MAX_HTML_CHARS = 1_000_000
# Where clients put the quoted original: these elements hold it ...
_QUOTE_CLASSES = {"gmail_quote", "moz-cite-prefix"}
_QUOTE_TAGS = {"blockquote"}
# ... or it follows one of these (Outlook), up to the end of the message.
_QUOTE_MARKER_IDS = {"divRplyFwdMsg", "appendonsend", "mail-editor-reference-message-container"}
_INVISIBLE = {"script", "style", "head", "template"}
# What ends a line (or separates cells) when HTML becomes text.
_AFTER = {**dict.fromkeys(("p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4",
                           "blockquote", "pre"), "\n"),
          "td": " ", "th": " "}
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "ja"]


class _BoundedPolicy(email.policy.EmailPolicy):
    """policy.default, except that a header over MAX_PARSED_HEADER_CHARS reads as empty."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if isinstance(value, str) and len(value) > MAX_PARSED_HEADER_CHARS:
            value = ""
        return super().header_fetch_parse(name, value)


_POLICY = _BoundedPolicy()


@dataclass(frozen=True)
class ReplyEmail:
    sender: str  # the From address, lower-cased
    token: str | None
    auto_reply: bool
    new_text: str  # what the sender wrote, without quotes, signature and footers
    message_id: str = ""
    dmarc_pass: bool = False  # our receiving server said dmarc=pass, for the From domain
    written_at: datetime | None = None  # its Date header, when it has a readable one
    unreadable: str = ""  # why the mail could not be read at all; "" when it could


def read_reply_email(raw: bytes, assistant_address: str | None = None,
                     authserv_id: str | None = None) -> ReplyEmail:
    """Read a reply; never raises. Mail that cannot be read at all (nested too deeply, or
    breaking the parser) comes back `unreadable`, saying why, with what its headers tell.

    Without the assistant's address, a plus-address token in any address is taken. With
    authserv_id, only an Authentication-Results header of that receiving server can say the
    sender passed DMARC.
    """
    try:
        if len(_PART_HEADER.findall(raw)) > MAX_MIME_PARTS:
            return _unreadable(raw, f"it has more than {MAX_MIME_PARTS} MIME parts")
        message = email.message_from_bytes(raw, policy=_POLICY)
        assert isinstance(message, EmailMessage)
        if mime_depth(message) > MAX_MIME_DEPTH:
            return _unreadable(raw, f"its MIME parts are nested more than {MAX_MIME_DEPTH} deep")
        return _read(message, assistant_address, authserv_id)
    except Exception as err:  # the promise: a hostile mail is a reading, never a crash
        return _unreadable(raw, f"the mail reader failed on it ({type(err).__name__})")


def _read(message: EmailMessage, assistant_address: str | None,
          authserv_id: str | None) -> ReplyEmail:
    sender = _address(_header(message, "From"))
    return ReplyEmail(
        sender=sender,
        token=_token(message, assistant_address),
        auto_reply=is_auto_reply(message, sender),
        new_text=_new_text(message),
        message_id=_header(message, "Message-ID").strip(),
        dmarc_pass=_dmarc_pass(message, sender.rpartition("@")[2], authserv_id),
        written_at=_written_at(_header(message, "Date")),
    )


def _unreadable(raw: bytes, why: str) -> ReplyEmail:
    sender, message_id = mail_headers(raw)
    return ReplyEmail(sender=sender, token=None, auto_reply=False, new_text="",
                      message_id=message_id, unreadable=why)


def mail_headers(raw: bytes) -> tuple[str, str]:
    """(sender, Message-ID) of any bytes, for saying which mail could not be read: only the
    header block is parsed, with compat32, which keeps each value as its raw text."""
    try:
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        return (_address(_raw_header(headers, "From")),
                _raw_header(headers, "Message-ID").strip()[:255])
    except Exception:  # a courtesy to the audit log, which must not fail for want of it
        return "", ""


def mime_depth(message: Message) -> int:
    """How deep message's MIME tree goes (a single part is 1), walked without recursion."""
    deepest, waiting = 0, [(message, 1)]
    while waiting:
        part, depth = waiting.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_MIME_DEPTH:
            return deepest
        payload = part.get_payload()
        if isinstance(payload, list):
            waiting += [(child, depth + 1) for child in payload if isinstance(child, Message)]
    return deepest


def _address(value: str) -> str:
    try:
        return parseaddr(value)[1].lower()
    except _HEADER_PARSER_FAILURES:
        return ""


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
    our server writes none, the topmost is the sender's, which only the authserv-id (naming
    the server that checked) tells apart. Only the dmarc method's own result counts, and only
    for the domain in From, not for some other domain the message also carried.
    """
    topmost = _raw_header(message, "Authentication-Results")
    if not topmost or not from_domain or len(topmost) > MAX_AUTH_RESULTS_CHARS:
        return False
    try:
        results = authres.AuthenticationResultsHeader.parse_value(topmost)
    except (authres.AuthResError, *_HEADER_PARSER_FAILURES):
        return False
    if authserv_id and (results.authserv_id or "").lower() != authserv_id.lower():
        return False
    return any(result.method.lower() == "dmarc" and result.result.lower() == "pass"
               and any(prop.type.lower() == "header" and prop.name.lower() == "from"
                       and (prop.value or "").lower() == from_domain
                       for prop in result.properties)
               for result in results.results)


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
    """The token of the plus-address the reply was sent to, else of the subject's tag.

    The address lists are searched as raw text, not parsed: a To of 100,000 addresses costs
    a parser seconds, and a plus-address is never encoded (RFC 2047 leaves addr-spec alone).
    """
    if assistant_address:
        local, _, domain = assistant_address.lower().partition("@")
        address = rf"{re.escape(local)}\+({TOKEN})@{re.escape(domain)}"
    else:
        address = rf"[^@+\s<>,;:\"()\[\]]+\+({TOKEN})@[^@\s<>,;:\"()\[\]]+"
    plus = re.compile(rf"(?<![^\s<,;:\"(]){address}(?![^\s>,;\"()])", re.IGNORECASE)
    for name in ("To", "Cc", "Delivered-To"):
        for value in _raw_headers(message, name):
            found = plus.search(value)
            if found:
                return found.group(1).lower()
    tag = _SUBJECT_TAG.search(_header(message, "Subject"))
    return tag.group(1).lower() if tag else None


def _new_text(message: EmailMessage) -> str:
    text = without_quoted_lines(_body_text(message))[:MAX_TEXT_CHARS]
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
        soup = BeautifulSoup(html[:MAX_HTML_CHARS], "html.parser")
    except ParserRejectedMarkup:
        return ""
    text = "".join(_visible_strings(soup))
    return "\n".join(line.strip() for line in text.splitlines())


def _visible_strings(root: Tag) -> Iterator[str]:
    """root's visible text in document order, with a line break after each block.

    One walk with a stack of its own and no change to the tree, so that its cost is linear
    however deeply a hostile sender nests elements (inserting a break after every block costs
    a walk of its subtree each time: 20,000 nested divs took 17 s). The quoted original is
    skipped; an Outlook reply marker ends the walk, as all after it is the original.
    """
    stack: list[tuple[Iterator[object], str]] = [(iter(root.contents), "")]
    while stack:
        children, after = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            yield after
        elif isinstance(child, Tag):
            if child.get("id") in _QUOTE_MARKER_IDS and child.name == "div":
                return
            if not _quoted_or_invisible(child):
                stack.append((iter(child.contents), _AFTER.get(child.name, "")))
        elif type(child) in (NavigableString, CData):  # not comments, doctypes, scripts
            yield str(child)


def _quoted_or_invisible(element: Tag) -> bool:
    if element.name in _INVISIBLE or element.name in _QUOTE_TAGS:
        return True
    return element.name == "div" and not _QUOTE_CLASSES.isdisjoint(element.get("class") or ())


def _header(message: EmailMessage, name: str) -> str:
    """The first `name` header, decoded; "" when absent, too long or beyond the parser."""
    try:
        value = message.get(name)
    except _HEADER_PARSER_FAILURES:
        return ""  # a header so malformed the parser cannot even produce it
    return str(value) if value is not None else ""


def _raw_header(message: Message, name: str) -> str:
    return next(_raw_headers(message, name), "")


def _raw_headers(message: Message, name: str) -> Iterator[str]:
    """Each `name` header's value as it came, unparsed (only unfolded)."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted and isinstance(value, str):
            yield re.sub(r"\r?\n[ \t]", " ", value)
