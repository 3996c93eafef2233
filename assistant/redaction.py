"""What logs and pages show of addresses and provider URLs: enough to tell them apart, not
enough to harvest addresses or replay a cursor; and the log filter that keeps secrets out."""

from __future__ import annotations

import logging
import re
import threading

# Sync cursors and page tokens inside URLs that an HTTP library's error message repeats. A
# token is base64 or URL-escaped: punctuation that ends a URL in prose ends it too.
_TOKEN_PARAMETER = re.compile(
    r"([?&](?:%24|\$)?(?:deltatoken|skiptoken|syncToken|pageToken|nextPageToken)=)"
    r"[^&\s'\",;)>]+",
    re.IGNORECASE)


def redacted(address: str) -> str:
    """'alice@example.com' -> 'a***@example.com'; anything without an '@' -> '***'."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def without_tokens(text: str) -> str:
    """text with the values of sync and page tokens in any URL it quotes replaced by '…'."""
    return _TOKEN_PARAMETER.sub(r"\1…", text)


# Secret values this process has read (see keep_out_of_logs). A shorter one would mask
# ordinary words all over the logs; a mail password that short is no secret to protect anyway.
_SHORTEST_SECRET = 8
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def keep_out_of_logs(secret: str) -> None:
    """From now on, log lines show '***' wherever this value would appear."""
    if len(secret) >= _SHORTEST_SECRET:
        with _secrets_lock:
            _secrets.add(secret)


class SecretsFilter(logging.Filter):
    """On a handler: every record it writes loses sync and page tokens and known secrets.

    The assistant's own messages never hold a secret; this is for what libraries log, such as
    google-api-python-client's "URL being requested" at INFO or urllib3's request lines at
    DEBUG, which carry sync tokens, and for error texts that quote a whole request.
    """

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _cleaned(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # The formatter prints exc_text when it is set: the traceback, cleaned the same way.
            record.exc_text = _cleaned(self._tracebacks.formatException(record.exc_info))
        return True


def _cleaned(text: str) -> str:
    text = without_tokens(text)
    with _secrets_lock:
        known = list(_secrets)
    for secret in known:
        text = text.replace(secret, "***")
    return text
