"""The assistant's one marked block inside an event description: insert, replace, remove.

The markers are fixed here, not in the templates, so that editing a template can never make
the assistant lose track of its own block and write a second one. Everything outside the
block is the organiser's and is kept byte for byte.

Plain-text descriptions get visible marker lines. HTML descriptions (Outlook bodies, and
Google descriptions edited in its web UI) get HTML comments around a <div>; the block goes
right after <body> when there is one, else first, so customers see it before any join details.
"""

from __future__ import annotations

import re

TEXT_START = "──── Meeting format ────"
TEXT_END = "──── end of the meeting-format note ────"
HTML_START = "<!-- meeting-format-assistant:start -->"
HTML_END = "<!-- meeting-format-assistant:end -->"

_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def wrap_text(body: str, newline: str = "\n") -> str:
    """A complete plain-text block around a rendered body."""
    lines = body.strip("\r\n").splitlines()
    return newline.join([TEXT_START, *lines, TEXT_END])


def wrap_html(body: str) -> str:
    """A complete HTML block around a rendered (already escaped) body."""
    return f"{HTML_START}{body.strip()}{HTML_END}"


def newline_of(description: str) -> str:
    """The description's own line ending, so the block does not mix styles (Outlook uses CRLF)."""
    return "\r\n" if "\r\n" in description else "\n"


def find_block(description: str) -> tuple[int, int] | None:
    """The [start, end) span of the assistant's block, or None. HTML markers win over text."""
    for start_marker, end_marker in ((HTML_START, HTML_END), (TEXT_START, TEXT_END)):
        start = description.rfind(start_marker)
        while start != -1:
            end = description.find(end_marker, start + len(start_marker))
            if end != -1:
                return start, end + len(end_marker)
            start = description.rfind(start_marker, 0, start)
    return None


def put_block(description: str, block: str, is_html: bool) -> str:
    """The description with block in place of the old one, or inserted when there is none."""
    span = find_block(description)
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


def remove_block(description: str) -> str:
    """The description as it was before the assistant wrote into it."""
    span = find_block(description)
    if span is None:
        return description
    start, end = span
    rest = description[end:]
    if start == 0 and not description.startswith(HTML_START):
        # Drop the blank line put_block added between the block and the organiser's text.
        for separator in ("\r\n\r\n", "\n\n"):
            if rest.startswith(separator):
                rest = rest[len(separator) :]
                break
    return description[:start] + rest
