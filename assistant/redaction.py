"""Addresses as logs show them: enough to tell them apart, not enough to harvest them."""

from __future__ import annotations


def redacted(address: str) -> str:
    """'alice@example.com' -> 'a***@example.com'; anything without an '@' -> '***'."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
