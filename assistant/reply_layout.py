"""Which lines of a reply the organiser wrote, and which they quoted: the reply's layout.

A reply's text (its plain part, or its HTML made text by reply_mail, which marks the quoted
original with `>` too) comes in three kinds of line:
- the organiser's own, read for answers;
- quoted lines, never read for answers but kept, so that an answer typed under a quoted
  question can be tied to it (a Thunderbird bottom-post, an Outlook inline reply);
- lines that are neither: the attribution before a quote ("On … wrote:"), a signature, a
  sign-off and what follows it, a phone's footer, a company disclaimer. These are dropped.

Everything after an Outlook header block ("From: … Sent: …", "-----Original Message-----")
is the original, quoted though it has no `>`; in it, a line Outlook marks as the
organiser's inline comment ("[Jane Doe] B") is theirs again. The header blocks and
attributions of English, German, French, Spanish and more are mail-parser-reply's; the
sign-offs, footers and disclaimers are assistant/language/words'.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailparser_reply.constants import GENERIC_MAIL_SEPARATOR, MAIL_LANGUAGES

from assistant.language.vocabulary import vocabulary, words

_QUOTED = re.compile(r"^\s*>")
_WROTE = re.compile(r"^\s*(?:on|am|le|el|il|op)\s.{4,300}\s(?:wrote|schrieb|a écrit|escribió)"
                    r"\s*:\s*$", re.IGNORECASE)
_QUOTE_MARKS = re.compile(r"^(?:\s*>)+\s?")
_ATTRIBUTION_START = re.compile(r"^\s*(on|am|le|el|il|op|den|w dniu)\s", re.IGNORECASE)
_INLINE_COMMENT = re.compile(r"^\s*(?:\[[^\]\n]{1,60}\]\s*)+(.*)$")  # Outlook: "[Jane Doe] B"
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")  # RFC 3676, 4.3
_SIGNED_INITIAL = re.compile(r"^\s*[-–—~]+\s*\w{1,3}\.?\s*$")  # "– A."
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "ja"]
# The longest sign-off line that may still carry a name after it ("Best, Jane Doe").
_SIGN_OFF_NAME_WORDS = 3
_LEGAL_WORDS = 2  # this many words of legal small print make a line a disclaimer


@dataclass(frozen=True)
class Line:
    text: str
    quoted: bool


def lay_out(text: str) -> tuple[Line, ...]:
    """text's lines, each the organiser's or quoted; attribution, signatures and the like
    left out (see the module docstring)."""
    lines: list[Line] = []
    for line in _with_original_quoted(text.splitlines()):
        if line.quoted:
            _drop_attribution(lines)
        lines.append(line)
    return tuple(_without_signatures(lines))


def body_text(lines: tuple[Line, ...]) -> str:
    """The lines as text, quoted ones marked `> `: what replies.read_answer reads."""
    return "\n".join(f"> {line.text}" if line.quoted else line.text for line in lines).strip()


def own_text(lines: tuple[Line, ...]) -> str:
    """Only the organiser's own lines."""
    return "\n".join(line.text for line in lines if not line.quoted).strip()


def has_unquoted_original(text: str) -> bool:
    """Whether text quotes an original without `>`, after an Outlook header block."""
    lines = text.splitlines()
    return _original_starts(lines) < len(lines)


def _with_original_quoted(raw: list[str]) -> Iterator[Line]:
    """raw's lines, `>` lines quoted, and so every line after an Outlook header block."""
    original_from = _original_starts(raw)
    for index, text in enumerate(raw):
        if _QUOTED.match(text):
            yield Line(_QUOTE_MARKS.sub("", text).rstrip(), quoted=True)
        elif comment := _INLINE_COMMENT.match(text):
            yield Line(comment.group(1).strip(), quoted=False)
        else:
            yield Line(text.strip(), quoted=index >= original_from)


def _original_starts(raw: list[str]) -> int:
    """The index of the first line of an unquoted original (an Outlook header), else len."""
    unquoted = "\n".join("" if _QUOTED.match(line) else line for line in raw)
    header = _HEADERS.search(unquoted)
    start = len(raw)
    if header is not None:
        offset = header.start()
        while offset < len(unquoted) and unquoted[offset] == "\n":
            offset += 1
        start = unquoted.count("\n", 0, offset)
    return min(start, _unquoted_after_attribution(raw))


def _unquoted_after_attribution(raw: list[str]) -> int:
    """The index of an attribution ("On … wrote:") whose original follows without `>`, as
    Yahoo writes it, else len(raw)."""
    for index, line in enumerate(raw):
        if _QUOTED.match(line) or not _WROTE.match(line):
            continue
        following = next((text for text in raw[index + 1:] if text.strip()), "")
        if following and not _QUOTED.match(following):
            return index
    return len(raw)


def _drop_attribution(lines: list[Line]) -> None:
    """Remove the attribution ("On … wrote:", maybe wrapped over two lines) ending lines."""
    while lines and not lines[-1].quoted and not lines[-1].text:
        lines.pop()
    if not lines or lines[-1].quoted or not lines[-1].text.endswith(":"):
        return
    lines.pop()
    if lines and not lines[-1].quoted and _ATTRIBUTION_START.match(lines[-1].text) and \
            not lines[-1].text.endswith((".", "!", "?", ":")):
        lines.pop()  # the first half of an attribution the client wrapped


def _without_signatures(lines: list[Line]) -> Iterator[Line]:
    """lines without what closes each run of the organiser's own lines: the signature after
    "-- ", a sign-off line and what follows it, a phone's footer, a disclaimer."""
    signing = False  # in the closing part of the current run of own lines
    written = False  # the current run has had a line of content
    for index, line in enumerate(lines):
        if line.quoted:
            signing = written = False
            yield line
            continue
        if signing or not line.text:
            if not signing:
                yield line
            continue
        if _closes(line.text, written or _a_name(_next_own(lines, index))):
            signing = True
            if vocabulary().courtesy.only(words(line.text)):
                yield line  # "Thanks!": a thank-you still, though a signature follows
            continue
        if _SIGNED_INITIAL.match(line.text):
            continue
        written = True
        yield line


def _next_own(lines: list[Line], index: int) -> str:
    """The text of the next non-empty own line after index, before any quoted one."""
    for line in lines[index + 1:]:
        if line.quoted:
            return ""
        if line.text:
            return line.text
    return ""


def _a_name(text: str) -> bool:
    """Whether text reads like a name under a sign-off: "Lucas Silva", "J.", "B"."""
    names = text.replace(".", " ").split()
    return 0 < len(names) <= _SIGN_OFF_NAME_WORDS and all(
        name[:1].isupper() and name.isalpha() for name in names)


def _closes(text: str, written: bool) -> bool:
    """Whether text begins the closing part of a message: a signature delimiter, a footer,
    a disclaimer; or, after some content, a sign-off ("Thanks," then a name or initial)."""
    if _SIGNATURE_DELIMITER.match(text):
        return True
    said = words(text)
    known = vocabulary()
    if _starts_with(known.mobile_footers, said) or _starts_with(known.disclaimers, said):
        return True
    if len(list(known.legal_words.find(said))) >= _LEGAL_WORDS:
        return True  # small print, however its first sentence begins
    if not written:
        return False
    signs = next(known.sign_offs.find(said), None)
    return signs is not None and signs.start == 0 and \
        len(said) - signs.end <= _SIGN_OFF_NAME_WORDS and not re.search(r"\d", text)


def _starts_with(phrases, said: tuple[str, ...]) -> bool:
    match = next(phrases.find(said[:12]), None)
    return match is not None and match.start == 0


# Outlook's header blocks in each language mail-parser-reply knows, and the separators.
_HEADERS = re.compile("|".join(
    [MAIL_LANGUAGES[language]["from_header"] for language in _LANGUAGES
     if "from_header" in MAIL_LANGUAGES.get(language, {})]
    + [GENERIC_MAIL_SEPARATOR, r"^[ \t]*_{20,}[ \t]*$",
       r"^-{2,} ?(?:On|Am|Le|El) .{4,200} (?:wrote|schrieb|a écrit|escribió):? ?-{2,}[ \t]*$",
       r"^-{3,} ?(?:Urspr(?:ü|ue)ngliche Nachricht|Message d'origine|Mensaje original) ?-{3,}$"]),
    re.MULTILINE | re.IGNORECASE)
