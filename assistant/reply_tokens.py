"""The signed token that ties a reply to the question it answers.

A token names a conversation (the question about one meeting) and when it stops being valid,
and carries an HMAC-SHA256 over both, keyed with a secret from the environment, so nobody can
forge one or move it to another meeting. It is written in lower-case base32 because it travels
in an email address (assistant+TOKEN@domain), where case may not survive, and in the subject.
Reuse is the caller's to refuse: a token for a meeting already decided finds no open question.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from assistant.config import Mail, secret_from_env
from assistant.errors import ConfigError, InputError

_BODY = struct.Struct(">QI")  # conversation id, expiry in minutes since the epoch
_MAC_BYTES = 12  # 96 bits: far beyond guessing, short enough for an address
MIN_SECRET_BYTES = 32


class BadToken(InputError):
    """A token that is malformed, forged, or expired; the reply is ignored."""


@dataclass(frozen=True)
class TokenClaims:
    conversation_id: int
    expires: datetime


class ReplyTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue(self, conversation_id: int, expires: datetime) -> str:
        body = _BODY.pack(conversation_id, int(expires.timestamp() // 60))
        return _encode(body + self._mac(body))

    def verify(self, token: str, now: datetime) -> TokenClaims:
        """The claims of a genuine, unexpired token; BadToken otherwise."""
        try:
            raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
        except (ValueError, TypeError) as err:
            raise BadToken("not a token") from err
        if _encode(raw) != token.lower():
            raise BadToken("not a token")  # the same bytes spelt another way
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        if len(raw) != _BODY.size + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise BadToken("the token's signature does not match")
        conversation_id, minutes = _BODY.unpack(body)
        expires = datetime.fromtimestamp(minutes * 60, UTC)
        if expires <= now:
            raise BadToken("the token has expired")
        return TokenClaims(conversation_id, expires)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]


def token_secret(mail: Mail) -> bytes:
    """The token secret from the environment variable [mail] token_secret_env names."""
    secret = secret_from_env(mail.token_secret_env, "mail.token_secret_env").encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError("mail.token_secret_env", [
            f"{mail.token_secret_env} holds {len(secret)} bytes; use at least "
            f"{MIN_SECRET_BYTES} random ones, e.g. python3 -c \"import secrets; "
            "print(secrets.token_urlsafe(48))\""])
    return secret


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()
