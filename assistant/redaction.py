"""What logs and pages show of addresses and provider URLs: enough to tell them apart, not
enough to harvest addresses or replay a cursor."""

from __future__ import annotations

import re

# Sync cursors and page tokens inside URLs that an HTTP library's error message repeats.
_TOKEN_PARAMETER = re.compile(
    r"([?&](?:%24|\$)?(?:deltatoken|skiptoken|syncToken|pageToken|nextPageToken)=)[^&\s'\"]+",
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
