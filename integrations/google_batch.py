"""Google's batch format, written and read here: many API calls in one HTTP round trip.

A batch is one POST of a multipart/mixed body whose parts are HTTP requests; the answer is a
multipart/mixed body whose parts are HTTP responses, each naming the request it answers in its
Content-ID as "response-" followed by the request's
(https://developers.google.com/calendar/api/guides/batch, RFC 2046 section 5.1).

google-api-python-client's BatchHttpRequest writes and reads this with the email package's
Generator and FeedParser, which took a third of a worker's CPU polling 5,000 calendars; it
also resends every part answered 401 with the same stale token before its caller can refresh
it. The format is plain text, so it is written and split here. The requests are still built
by the library from its discovery document, sent by httplib2, and each answer is still read by
the request's own response model (postproc) or becomes the library's HttpError.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

import httplib2
from googleapiclient.http import HttpRequest

_BLANK_LINE = re.compile(r"\r?\n\r?\n")
_LEAVE_OUT = {"content-type", "content-length", "host"}  # written from the request itself


class MalformedBatch(Exception):
    """The answer to a batch was not the multipart/mixed body the format promises."""


@dataclass(frozen=True)
class Answer:
    """One part's HTTP response, as httplib2 would have returned it for a lone request."""

    response: httplib2.Response
    content: bytes


def send(http: httplib2.Http, uri: str, requests: Sequence[HttpRequest]
         ) -> tuple[httplib2.Response, bytes, list[Answer | None]]:
    """POST requests as one batch; the outer response and body, and each request's answer.

    An answer is None when the batch's reply has no part for its request. The outer
    response is returned as it came when its status is not 200 (it is then one error for
    the whole batch); MalformedBatch when a 200 carries no readable multipart body.
    """
    boundary = f"batch_{uuid.uuid4().hex}"
    base = uuid.uuid4().hex
    content_ids = [f"{base}+{i}" for i in range(len(requests))]
    body = _request_body(boundary, content_ids, requests)
    response, content = http.request(
        uri, method="POST", body=body,
        headers={"content-type": f'multipart/mixed; boundary="{boundary}"'})
    if response.status != 200:
        return response, content, []
    parts = read_parts(response.get("content-type", ""), content)
    return response, content, _matched(content_ids, parts)


def _request_body(boundary: str, content_ids: Sequence[str],
                  requests: Sequence[HttpRequest]) -> str:
    parts = [f"--{boundary}\r\nContent-Type: application/http\r\n"
             f"Content-Transfer-Encoding: binary\r\nContent-ID: <{content_id}>\r\n\r\n"
             f"{request_text(request)}\r\n"
             for content_id, request in zip(content_ids, requests, strict=True)]
    return "".join(parts) + f"--{boundary}--\r\n"


def request_text(request: HttpRequest) -> str:
    """One request as an HTTP/1.1 message: request line, headers, blank line, body."""
    url = urllib.parse.urlsplit(request.uri)
    target = url.path + (f"?{url.query}" if url.query else "")
    body = request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    lines = [f"{request.method} {target} HTTP/1.1",
             f"Content-Type: {request.headers.get('content-type', 'application/json')}",
             *(f"{name}: {value}" for name, value in request.headers.items()
               if name.lower() not in _LEAVE_OUT),
             f"Host: {url.netloc}"]
    if body:
        lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def read_parts(content_type: str, content: bytes) -> list[tuple[str, Answer]]:
    """Each part of a batch's answer, with the Content-ID of the request it answers ("" when
    the part names none)."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/mixed" or not isinstance(boundary, str):
        raise MalformedBatch(f"the answer to a batch was {content_type or 'untyped'}")
    answers = []
    for part in _parts(content.decode("utf-8", errors="replace"), boundary):
        part_headers, message = _head_and_rest(part)
        content_id = part_headers.get("content-id", "").strip().strip("<>")
        answers.append((content_id.removeprefix("response-"), _answer(message)))
    return answers


def _matched(content_ids: Sequence[str], parts: list[tuple[str, Answer]]) -> list[Answer | None]:
    """Each request's answer: the part naming its Content-ID, or else the part in its place,
    if that names none (Google answers in the order asked, and a Content-ID is optional)."""
    by_id = {content_id: answer for content_id, answer in parts if content_id}
    return [by_id[content_id] if content_id in by_id
            else parts[i][1] if i < len(parts) and not parts[i][0] else None
            for i, content_id in enumerate(content_ids)]


def _parts(body: str, boundary: str) -> list[str]:
    """The parts between a multipart body's delimiter lines (its preamble and epilogue left
    out); the line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1)."""
    delimiter = re.compile(r"(?:\A|\r?\n)--" + re.escape(boundary) + r"(--)?[ \t]*(?:\r?\n|\Z)")
    parts: list[str] = []
    start: int | None = None
    for found in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start:found.start()])
        if found.group(1):  # the close delimiter
            return parts
        start = found.end()
    raise MalformedBatch("the answer to a batch ended before its closing boundary")


def _head_and_rest(text: str) -> tuple[dict[str, str], str]:
    """A message's header fields (names in lower case, folded lines joined) and its body."""
    blank = _BLANK_LINE.search(text)
    head, rest = (text[:blank.start()], text[blank.end():]) if blank else (text, "")
    fields: dict[str, str] = {}
    name = ""
    for line in head.splitlines():
        if line[:1] in (" ", "\t") and name:  # a folded continuation of the field above
            fields[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if colon:
            fields[name] = value.strip()
    return fields, rest


def _answer(message: str) -> Answer:
    """An HTTP response message ("HTTP/1.1 200 OK", headers, body) as httplib2's pair."""
    status_line, _, rest = message.lstrip("\r\n").partition("\n")
    _, status, reason = (status_line.strip().split(" ", 2) + ["", ""])[:3]
    if not status.isdigit():
        raise MalformedBatch(f"a part of a batch's answer has no status: {status_line[:80]!r}")
    headers, body = _head_and_rest(rest)
    response = httplib2.Response({**headers, "status": status})
    response.reason = reason
    return Answer(response, body.encode())
