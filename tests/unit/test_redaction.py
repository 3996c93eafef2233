"""What logs and pages show of addresses and of the provider URLs that errors quote."""

import io
import logging

from assistant.redaction import SecretsFilter, keep_out_of_logs, redacted, without_tokens


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


def test_the_log_filter_takes_secrets_and_cursors_out_of_messages_and_tracebacks():
    secret = "s3cret-value-of-the-imap-password"
    keep_out_of_logs(secret)
    keep_out_of_logs("short")  # too short to tell from a word: left alone
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretsFilter())
    logger = logging.getLogger("test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("login with %s to GET /events?syncToken=%s, in short", secret, "CP4x")
        try:
            raise ConnectionError(f"GET /delta?$deltatoken=abc&password={secret}")
        except ConnectionError:
            logger.exception("it failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert secret not in written and "CP4x" not in written and "abc" not in written
    assert "login with *** to GET /events?syncToken=…, in short" in written
    assert "$deltatoken=…&password=***" in written  # the traceback, cleaned too
