"""Google's batch format as integrations.google_batch writes and reads it.

The adapter's contract tests send real batches to the emulator; these hold the format to
what Google documents (https://developers.google.com/calendar/api/guides/batch) where the
emulator is one reading of it: answers shaped like the guide's, with LF line ends, an
unquoted boundary, Content-IDs without brackets or none at all, and broken answers.
"""

from __future__ import annotations

import email.parser
import email.policy

import httplib2
import pytest
from googleapiclient.discovery import build

from integrations import google_batch
from integrations.google_batch import MalformedBatch

EVENTS = build("calendar", "v3", http=httplib2.Http(), static_discovery=True,
               cache_discovery=False,
               client_options={"api_endpoint": "https://www.googleapis.com/calendar/v3/"}
               ).events()


class OneAnswer:
    """An httplib2.Http that answers every request with the same response, and keeps it."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.response = httplib2.Response({"status": str(status), "content-type": content_type})
        self.body = body
        self.sent: list[dict[str, object]] = []

    def request(self, uri, method, body, headers):  # type: ignore[no-untyped-def]
        self.sent.append({"uri": uri, "method": method, "body": body, "headers": headers})
        return self.response, self.body


def listing(token: str):  # type: ignore[no-untyped-def]
    request = EVENTS.list(calendarId="primary", syncToken=token, maxResults=250)
    request.headers["authorization"] = f"Bearer for-{token}"
    return request


def test_a_batch_is_a_multipart_body_of_http_requests_that_the_email_package_reads_back():
    http = OneAnswer(200, "multipart/mixed; boundary=x", b"--x--\r\n")
    patch = EVENTS.patch(calendarId="primary", eventId="ev1", body={"summary": "Größe"})
    patch.headers["If-Match"] = '"etag-1"'
    google_batch.send(http, "https://www.googleapis.com/batch/calendar/v3",
                      [listing("a"), patch])
    [sent] = http.sent
    assert sent["method"] == "POST"
    envelope = email.parser.Parser(policy=email.policy.compat32).parsestr(
        f"Content-Type: {sent['headers']['content-type']}\r\n\r\n{sent['body']}")
    first, second = envelope.get_payload()
    assert first["Content-Type"] == "application/http" and first["Content-ID"]
    request_line, _, rest = first.get_payload().partition("\r\n")
    assert request_line == ("GET /calendar/v3/calendars/primary/events"
                            "?syncToken=a&maxResults=250&alt=json HTTP/1.1")
    assert "authorization: Bearer for-a" in rest
    text = second.get_payload()
    assert text.startswith("PATCH /calendar/v3/calendars/primary/events/ev1?alt=json HTTP/1.1")
    assert 'If-Match: "etag-1"' in text
    body = '{"summary": "Gr\\u00f6\\u00dfe"}'
    assert text.endswith(f"\r\n\r\n{body}") and f"Content-Length: {len(body)}" in text


BOUNDARY = "batch_pK7JBAk73-E=_AA5eFwv4m2Q="  # unquoted, as in the guide, though it has "="
GUIDE_SHAPED = (
    "preamble the reader must skip\n"
    f"--{BOUNDARY}\n"
    "Content-Type: application/http\n"
    "Content-ID: response-{first}\n"
    "\n"
    "HTTP/1.1 200 OK\n"
    "Content-Type: application/json; charset=UTF-8\n"
    'ETag: "etag/pony"\n'
    "\n"
    '{{"kind": "calendar#events", "items": [], "nextSyncToken": "next-a"}}\n'
    f"--{BOUNDARY}\n"
    "Content-Type: application/http\n"
    "Content-ID: <response-{second}>\n"
    "\n"
    "HTTP/1.1 410 Gone\n"
    "Content-Type: application/json; charset=UTF-8\n"
    "\n"
    '{{"error": {{"code": 410, "message": "Sync token is no longer valid.",\n'
    '  "errors": [{{"reason": "fullSyncRequired"}}]}}}}\n'
    f"--{BOUNDARY}--\n"
    "epilogue the reader must skip\n"
)


class Replying(OneAnswer):
    """Answers a batch of two with template, its {first} and {second} the requests' ids."""

    def __init__(self, template: str) -> None:
        super().__init__(200, f"multipart/mixed; boundary={BOUNDARY}", b"")
        self.template = template

    def request(self, uri, method, body, headers):  # type: ignore[no-untyped-def]
        first, second = [line.split("<", 1)[1].rstrip(">") for line in body.split("\r\n")
                         if line.startswith("Content-ID:")]
        self.body = self.template.format(first=first, second=second).encode()
        return super().request(uri, method, body, headers)


def answered(template: str) -> list[google_batch.Answer | None]:
    """What send() makes of template as the answer to a batch of two listings."""
    response, _, answers = google_batch.send(Replying(template), "https://b",
                                             [listing("a"), listing("b")])
    assert response.status == 200
    return answers


def test_an_answer_shaped_as_in_googles_guide_is_read_part_by_part():
    ok, gone = answered(GUIDE_SHAPED)
    assert ok is not None and gone is not None
    assert ok.response.status == 200 and ok.response["etag"] == '"etag/pony"'
    assert EVENTS.list(calendarId="primary").postproc(ok.response, ok.content)[
        "nextSyncToken"] == "next-a"
    assert gone.response.status == 410 and gone.response.reason == "Gone"
    assert b"fullSyncRequired" in gone.content


def test_parts_that_name_no_request_are_matched_by_their_place_and_a_missing_one_is_none():
    without_ids = GUIDE_SHAPED.replace("Content-ID: response-{first}\n", "").replace(
        "Content-ID: <response-{second}>\n", "")
    ok, gone = answered(without_ids)
    assert ok is not None and ok.response.status == 200
    assert gone is not None and gone.response.status == 410
    parts = GUIDE_SHAPED.split(f"--{BOUNDARY}\n")
    only_one = f"--{BOUNDARY}\n".join(parts[:2]) + f"--{BOUNDARY}--\n"
    assert [answer is not None for answer in answered(only_one)] == [True, False]


@pytest.mark.parametrize("content_type, body", [
    ("application/json", '{"error": "not a batch"}'),
    ("multipart/mixed", "--x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}\r\n--x--\r\n"),  # no boundary
    ("multipart/mixed; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\n"
                                    "HTTP/1.1 200 OK\r\n\r\n{}"),  # cut off before its end
    ("multipart/mixed; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\n"
                                    "<html>proxy error</html>\r\n--x--\r\n"),  # no status
])
def test_an_answer_that_is_not_a_readable_batch_is_malformed(content_type, body):
    with pytest.raises(MalformedBatch):
        google_batch.send(OneAnswer(200, content_type, body.encode()), "https://b",
                          [listing("a")])


def test_an_error_for_the_whole_batch_comes_back_as_it_came():
    http = OneAnswer(503, "application/json", b'{"error": {"code": 503}}')
    response, content, answers = google_batch.send(http, "https://b", [listing("a")])
    assert (response.status, content, answers) == (503, b'{"error": {"code": 503}}', [])
