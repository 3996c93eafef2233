"""From a reply email's bytes to who sent it, which question it answers, and its new text.

- MIME, charsets and transfer encodings are the standard library's `email` package
  (policy.default), which reads any charset Python has a codec for.
- HTML-only mail becomes text with BeautifulSoup. The blocks where clients put the quoted
  original (Gmail's gmail_quote, Outlook's divRplyFwdMsg and appendonsend, Apple's
  blockquote type=cite, Thunderbird's moz-cite-prefix) become `>` lines, as plain text quotes
  them; inside them, text the organiser typed in a colour of their own (Outlook's inline
  comments) becomes a line of theirs, marked as Outlook marks it in plain text ("[…] B").
- reply_layout then tells the organiser's lines from quoted ones and drops attributions,
  Outlook's From/Sent blocks, signatures, sign-offs, phones' footers and disclaimers. The
  quoted lines stay in `body`, so that an answer typed under a question can be read as its.
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

from assistant.reply_layout import body_text, has_unquoted_original, lay_out, own_text

TOKEN = r"[a-z2-7]{26,40}"
_SUBJECT_TAG = re.compile(rf"\[MFA-({TOKEN})\]", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|undeliverable|delivery status notification|"
    r"mail delivery failed|returned mail)", re.IGNORECASE)
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
_OUTLOOK_HEADER_FRAME = re.compile(r"border\s*:\s*none\s*;\s*border-top\s*:\s*solid",
                                   re.IGNORECASE)
_INVISIBLE = {"script", "style", "head", "template"}
# What ends a line (or separates cells) when HTML becomes text.
_AFTER = {**dict.fromkeys(("p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4",
                           "blockquote", "pre"), "\n"),
          "td": " ", "th": " "}
# Colours of text that is not the organiser's own in a quoted original: black and greys (the
# original's own text), and "windowtext", Outlook's name for the default.
_PLAIN_COLOURS = {"black", "windowtext", "inherit", "initial", "currentcolor", "auto", "gray",
                  "grey", "dimgray", "dimgrey", "darkgray", "darkgrey", "silver", "white",
                  "lightgray", "lightgrey", "gainsboro", "whitesmoke"}
_COLOUR = re.compile(r"(?<![-\w])color\s*:\s*([^;\"']+)", re.IGNORECASE)
_HTML_SPACE = re.compile(r"\s+")  # HTML's white space: any run of it is one space
_INLINE_MARK = "[…] "  # how a line typed into the quoted original is marked, as Outlook does


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
    body: str = ""  # new_text with the quoted lines around it, marked `> `; "": as new_text
    attachments: tuple[str, ...] = ()  # the names of files attached (not inline images)
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
    lines = lay_out(_body_text(message)[:MAX_TEXT_CHARS])
    return ReplyEmail(
        sender=sender,
        token=_token(message, assistant_address),
        auto_reply=is_auto_reply(message, sender),
        new_text=own_text(lines),
        body=body_text(lines),
        attachments=_attachments(message),
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


def _attachments(message: EmailMessage) -> tuple[str, ...]:
    """The files attached: parts marked as attachments, or of another type than text and
    without a Content-ID (which an inline image, such as a signature's logo, has)."""
    names = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() == "text" and \
                part.get_content_disposition() != "attachment":
            continue
        if part.get_content_disposition() == "attachment" or (
                part.get_content_disposition() != "inline" and not part.get("Content-ID")):
            names.append(_filename(part))
    return tuple(names)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except _HEADER_PARSER_FAILURES:
        name = None
    return header_free(name) if name else f"a {part.get_content_type()} file"


def header_free(text: str) -> str:
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())[:120]


def _body_text(message: EmailMessage) -> str:
    """The plain text of the message, from its text part or, failing that, its HTML.

    Outlook's text part of an inline reply has the original unquoted, and the organiser's
    inline answers in it cannot be told apart there (only the HTML has their colour): then
    the HTML is read.
    """
    plain = _part_text(message, "plain")
    if plain is not None and not has_unquoted_original(plain):
        return plain
    html = _part_text(message, "html")
    return html_to_text(html) if html is not None else plain or ""


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, LookupError, AttributeError):
        # AttributeError: CPython's get_body walks into a multipart/related whose boundary
        # never comes, whose payload is then text, not parts (found by hypothesis).
        return None
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def html_to_text(html: str) -> str:
    """Visible text of an HTML reply, line breaks kept, the quoted original as `>` lines and
    the organiser's inline comments in it as lines marked "[…] ".

    HTML that Python's parser gives up on (`<![<!DOCTYPE`, found by atheris) reads as no
    text: its quoted original could not be told apart, and a guess is worse than none.
    """
    try:
        soup = BeautifulSoup(html[:MAX_HTML_CHARS], "html.parser")
    except ParserRejectedMarkup:
        return ""
    lines: list[str] = []
    pieces: list[tuple[str, bool, bool]] = []
    for text, quoted, inline in _visible_strings(soup):
        parts = text.split("\n")
        for index, part in enumerate(parts):
            if index:
                lines += _line_of(pieces)
                pieces = []
            pieces.append((part, quoted, inline))
    lines += _line_of(pieces)
    return "\n".join(lines)


def _line_of(pieces: list[tuple[str, bool, bool]]) -> list[str]:
    """One line of HTML text as text lines: the quoted part as a `>` line, and the
    organiser's own part (outside a quote, or typed into it in a colour) after it."""
    quoted = "".join(text for text, is_quoted, inline in pieces if is_quoted and not inline)
    inline = "".join(text for text, _, is_inline in pieces if is_inline).strip()
    own = "".join(text for text, is_quoted, is_inline in pieces
                  if not is_quoted and not is_inline).strip()
    lines = [f"> {quoted.strip()}"] if quoted.strip() else []
    if own or inline:
        lines.append(" ".join(filter(None, (own, _INLINE_MARK + inline if inline else ""))))
    return lines or [""]


def _visible_strings(root: Tag) -> Iterator[tuple[str, bool, bool]]:
    """root's visible text in document order, with a line break after each block, each
    piece with whether it is quoted and whether it is an inline comment (coloured text).

    One walk with a stack of its own and no change to the tree, so that its cost is linear
    however deeply a hostile sender nests elements (inserting a break after every block costs
    a walk of its subtree each time: 20,000 nested divs took 17 s). After an Outlook reply
    marker, all is the quoted original.
    """
    stack = [_Frame(iter(root.contents))]
    original = False  # past an Outlook reply marker
    while stack:
        frame = stack[-1]
        child = next(frame.children, None)
        if child is None:
            stack.pop()
            yield frame.after, frame.quoted or original, False
        elif isinstance(child, Tag):
            if child.name == "div" and _marks_the_original(child):
                original = True
            if child.name in _INVISIBLE:
                continue
            quoted = frame.quoted or original or _quoting(child)
            in_cell = frame.in_cell or child.name in ("td", "th")
            after = _AFTER.get(child.name, "")
            stack.append(_Frame(
                iter(child.contents), " " if in_cell and after and child.name != "br" else after,
                quoted, child.name != "a" and (frame.inline or (quoted and _coloured(child))),
                in_cell, frame.pre or child.name == "pre"))
        elif type(child) in (NavigableString, CData):  # not comments, doctypes, scripts
            text = str(child) if frame.pre else _HTML_SPACE.sub(" ", str(child))
            yield text, frame.quoted or original, frame.inline


@dataclass
class _Frame:
    """An element being walked: its children left, what ends it, and what its text is."""

    children: Iterator[object]
    after: str = ""  # a line break after a block, a space after a table cell
    quoted: bool = False
    inline: bool = False  # typed into the quoted original in a colour of its own
    in_cell: bool = False  # inside a table cell, where blocks do not break the line
    pre: bool = False  # inside <pre>, where line breaks in the text are kept


def _marks_the_original(div: Tag) -> bool:
    """Outlook's reply marker: a known id, or (Outlook for Windows) the header block's frame,
    a div with no border but a solid one on top."""
    style = div.get("style")
    return div.get("id") in _QUOTE_MARKER_IDS or (
        isinstance(style, str) and bool(_OUTLOOK_HEADER_FRAME.search(style)))


def _quoting(element: Tag) -> bool:
    if element.name in _QUOTE_TAGS:
        return True
    return element.name == "div" and not _QUOTE_CLASSES.isdisjoint(element.get("class") or ())


def _coloured(element: Tag) -> bool:
    """Whether element's style gives its text a colour other than black, white or a grey."""
    style = element.get("style")
    found = _COLOUR.search(style) if isinstance(style, str) else None
    colour = found.group(1).strip().lower().replace(" ", "") if found else ""
    if not colour or colour in _PLAIN_COLOURS:
        return False
    channels = _channels(colour)
    return channels is None or max(channels) - min(channels) > 24


def _channels(colour: str) -> tuple[int, ...] | None:
    """The red, green and blue of #rgb, #rrggbb or rgb(r,g,b); None for other names."""
    if re.fullmatch(r"#[0-9a-f]{3}", colour):
        return tuple(int(c * 2, 16) for c in colour[1:])
    if re.fullmatch(r"#[0-9a-f]{6}", colour):
        return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    numbers = re.fullmatch(r"rgba?\((\d+),(\d+),(\d+)(?:,[\d.]+)?\)", colour)
    return tuple(int(n) for n in numbers.groups()) if numbers else None


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
