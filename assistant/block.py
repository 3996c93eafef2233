"""The assistant's one marked block inside an event description: insert, replace, remove.

The markers are fixed here, not in the templates, so that editing a template can never make
the assistant lose track of its own block and write a second one. Everything outside the
block is the organiser's and is kept byte for byte.

Plain-text descriptions get visible marker lines. HTML descriptions (Outlook bodies, and
Google descriptions edited in its web UI) get the same lines inside a <div>, with HTML comments
around it; the block goes right after <body> when there is one, else first, so customers see
it before any join details.

The visible marker lines are in the note's language. The block is found whatever language
it was written in, so a note rewritten in another language replaces the old one.
"""

from __future__ import annotations

import re

TEXT_START = "──── Meeting format ────"
TEXT_END = "──── end of the meeting-format note ────"
# The marker lines in each language the note is written in (assistant.language.SUPPORTED).
TEXT_MARKERS = {
    "en": (TEXT_START, TEXT_END),
    "de": ("──── Terminformat ────", "──── Ende des Hinweises zum Terminformat ────"),
    "fr": ("──── Format de la réunion ────",
           "──── fin de la note sur le format de la réunion ────"),
    "es": ("──── Formato de la reunión ────",
           "──── fin de la nota sobre el formato de la reunión ────"),
}
HTML_START = "<!-- meeting-format-assistant:start -->"
HTML_END = "<!-- meeting-format-assistant:end -->"

_HTML_FRAME = 'style="border-left:3px solid #4a7bd0;padding:4px 10px;margin:0 0 12px 0"'
_HTML_MARKER = 'style="margin:0;color:#888;font-size:smaller"'
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_WRAPPING = r"(?:div|p|span|b|strong|font)"
_OPENING_TAG_BEFORE = re.compile(rf"<{_WRAPPING}\b[^<>]*>\s*$", re.IGNORECASE)
_CLOSING_TAG = re.compile(rf"\s*</{_WRAPPING}\s*>", re.IGNORECASE)


def wrap_text(body: str, newline: str = "\n", language: str = "en") -> str:
    """A complete plain-text block around a rendered body, its marker lines in language."""
    lines = body.strip("\r\n").splitlines()
    start, end = TEXT_MARKERS[language]
    return newline.join([start, *lines, end])


def wrap_html(body: str, language: str = "en") -> str:
    """A complete HTML block around a rendered (already escaped) body.

    The visible marker lines are there too, so that the block is still found if a provider
    drops HTML comments when it stores the body.
    """
    start, end = TEXT_MARKERS[language]
    return (
        f"{HTML_START}<div {_HTML_FRAME}><p {_HTML_MARKER}>{start}</p>{body.strip()}"
        f"<p {_HTML_MARKER}>{end}</p></div>{HTML_END}"
    )


def newline_of(description: str) -> str:
    """The description's own line ending, so the block does not mix styles (Outlook uses CRLF)."""
    return "\r\n" if "\r\n" in description else "\n"


def find_block(description: str, is_html: bool = False) -> tuple[int, int] | None:
    """The [start, end) span of the assistant's block, or None.

    HTML comment markers win; without them the visible marker lines are used, and in HTML
    the span grows over the tags that wrap them, so nothing of the old block is left behind.
    """
    span = _find_between(description, HTML_START, HTML_END)
    if span is not None:
        return span
    spans = [found for start, end in TEXT_MARKERS.values()
             if (found := _find_between(description, start, end)) is not None]
    span = max(spans) if spans else None  # the last block, in whichever language
    if span is not None and is_html:
        span = _widen_over_wrapping_tags(description, *span)
    return span


def put_block(description: str, block: str, is_html: bool) -> str:
    """The description with block in place of the old one, or inserted when there is none."""
    span = find_block(description, is_html)
    if span is not None:
        start, end = span
        return description[:start] + block + description[end:]
    if is_html:
        body = _BODY_TAG.search(description)
        at = body.end() if body else 0
        return description[:at] + block + description[at:]
    if not description:
        return block
    separator = newline_of(description) * 2
    return block + separator + description


def remove_block(description: str, is_html: bool = False) -> str:
    """The description as it was before the assistant wrote into it."""
    span = find_block(description, is_html)
    if span is None:
        return description
    start, end = span
    rest = description[end:]
    if start == 0 and not is_html:
        # Drop the blank line put_block added between the block and the organiser's text.
        for separator in ("\r\n\r\n", "\n\n"):
            if rest.startswith(separator):
                rest = rest[len(separator) :]
                break
    return description[:start] + rest


def _find_between(description: str, start_marker: str, end_marker: str) -> tuple[int, int] | None:
    """The last start_marker that has an end_marker after it, through that end_marker."""
    start = description.rfind(start_marker)
    while start != -1:
        end = description.find(end_marker, start + len(start_marker))
        if end != -1:
            return start, end + len(end_marker)
        start = description.rfind(start_marker, 0, start)
    return None


def _widen_over_wrapping_tags(description: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) over pairs of tags that open right before it and close right after."""
    while True:
        opening = _OPENING_TAG_BEFORE.search(description, 0, start)
        closing = _CLOSING_TAG.match(description, end)
        if opening is None or closing is None:
            return start, end
        start, end = opening.start(), closing.end()
