"""What logs and pages show of addresses and of the provider URLs that errors quote."""

from assistant.redaction import redacted, without_tokens


def test_an_address_shows_its_first_letter_and_domain():
    assert redacted("alice@example.com") == "a***@example.com"
    assert redacted("not an address") == "***"


def test_sync_errors_keep_no_cursor_from_the_urls_they_quote():
    error = ("Max retries exceeded with url: /v1.0/users/b/calendarView/delta?"
             "$deltatoken=abc123&$top=5 and /calendar/v3/calendars/a/events?syncToken=CP4x%3D"
             "&pageToken=zz9")
    assert without_tokens(error) == (
        "Max retries exceeded with url: /v1.0/users/b/calendarView/delta?$deltatoken=…&$top=5"
        " and /calendar/v3/calendars/a/events?syncToken=…&pageToken=…")
