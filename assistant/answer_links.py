"""One-click answers: a signed, expiring link per option of a question email.

Each link names the conversation, the row (0 for the whole decision), the choice and an expiry,
plus a random nonce so that every link is distinct and can be used once (the service records
used nonces); an HMAC-SHA256 with the token secret keeps anyone from making or altering one.
The link opens a small confirmation page served by the product's web app, which applies the
answer only when the organiser confirms, so a mail scanner that follows links changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from assistant.models import Format, Side
from assistant.reply_tokens import MIN_SECRET_BYTES, BadToken

_BODY = struct.Struct(">QBBI8s")  # conversation, row (0: decision), choice, expiry minutes, nonce
_MAC_BYTES = 16
_CHOICES: dict[int, Side | Format] = {1: Side.A, 2: Side.B, 3: Format.IN_PERSON,
                                      4: Format.VIRTUAL}
_CODES = {choice: code for code, choice in _CHOICES.items()}
DECISION_ROW = 0


@dataclass(frozen=True)
class LinkClaims:
    conversation_id: int
    row: int  # 1-12, or DECISION_ROW for "in person" / "virtual"
    choice: Side | Format
    expires: datetime
    nonce: str  # hex; the service refuses a nonce it has seen


class AnswerLinks:
    def __init__(self, secret: bytes, public_url: str) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the link secret needs at least {MIN_SECRET_BYTES} bytes")
        # A key of its own, derived, so a link can never pass for a reply token or back.
        self._key = hmac.new(secret, b"one-click answer links", hashlib.sha256).digest()
        self._base = public_url.rstrip("/") + "/answer/"

    def link(self, conversation_id: int, row: int, choice: Side | Format, expires: datetime) -> str:
        if (row == DECISION_ROW) != isinstance(choice, Format):
            raise ValueError("a row takes A or B; the decision row takes a format")
        body = _BODY.pack(conversation_id, row, _CODES[choice], int(expires.timestamp() // 60),
                          secrets.token_bytes(8))
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return self._base + base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def verify(self, token: str, now: datetime) -> LinkClaims:
        """The claims of a genuine, unexpired link token (the part after /answer/)."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as err:
            raise BadToken("not an answer link") from err
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(raw) != _BODY.size + _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise BadToken("the link's signature does not match")
        conversation_id, row, code, minutes, nonce = _BODY.unpack(body)
        expires = datetime.fromtimestamp(minutes * 60, UTC)
        if expires <= now:
            raise BadToken("the link has expired")
        if code not in _CHOICES:
            raise BadToken("the link names no choice")
        return LinkClaims(conversation_id, row, _CHOICES[code], expires, nonce.hex())
