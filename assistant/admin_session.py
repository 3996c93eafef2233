"""The admin page's door: the password, a signed session cookie, CSRF tokens, slowed guessing.

- **Closed unless configured.** The page opens only when the environment variable that
  `service.admin_password_env` names holds a password of at least 12 characters (and the mail
  token secret is set); otherwise every /admin URL says how to open it, and nothing else.
- **Login.** The password is compared in constant time (as SHA-256 digests, so not even its
  length shows). Each client gets 5 attempts per 15 minutes (a success clears them), counted
  before the password is checked, so a burst of parallel guesses gains nothing; a wrong one
  is also answered only after half a second.
- **Session.** A cookie signed with itsdangerous (HMAC-SHA256) holding a random session id, the
  CSRF token and the login time; HttpOnly, SameSite=Strict, Path=/admin, Secure when the
  public URL is https, and valid for 12 hours from login however busy the admin is. Its key is
  an HMAC of the mail token secret (never guessable) with a label of its own and the
  password's digest, so changing the password logs every session out; logging out revokes the
  session id at once (in this worker: another worker would accept a copied cookie until it
  expires, as there is no session table).
- **CSRF.** Every POST goes through `posted_form`; see `AdminSession.csrf_ok` for why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from assistant.config import Config, secret_from_env
from assistant.errors import ConfigError
from assistant.reply_tokens import token_secret

log = logging.getLogger(__name__)

COOKIE = "assistant_admin"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
MIN_PASSWORD_CHARS = 12
ATTEMPTS, ATTEMPT_WINDOW_SECONDS = 5, 15 * 60
FAILURE_DELAY_SECONDS = 0.5
MAX_FORM_BYTES = 8192
_KEY_LABEL = b"assistant admin page session cookie v1\x00"
_MAX_CLIENTS_TRACKED = 10_000


@dataclass(frozen=True)
class Closed:
    """The admin page is closed, and why (shown on every /admin URL: it names no secret)."""

    why: str


@dataclass(frozen=True)
class AdminSession:
    """One browser's session: logged in or not yet (the login form needs a token too)."""

    sid: str
    csrf: str
    since: float  # when it began (epoch seconds); it ends SESSION_SECONDS later
    admin: bool = False
    flash: str = ""  # a message for the next page shown, then dropped

    def csrf_ok(self, submitted: object) -> bool:
        """True if a form carried this session's CSRF token (a synchronizer token).

        Every form on the admin page, the login form included, carries a random token that
        lives in the signed session cookie, and every POST must bring it back; another site
        can make a browser post to us but cannot read our pages or the HttpOnly cookie, so it
        cannot know the token. SameSite=Strict cookies and the Sec-Fetch-Site check in
        `posted_form` are further walls, not the only one.

        Written here rather than taken from a library: starlette-csrf reads the token only
        from a request header, which a plain HTML form cannot send; asgi-csrf reads form
        posts, but as middleware buffering every body of the app, with a double-submit cookie
        of its own at path / that is not tied to the login session, and it would be one more
        dependency for ten lines of code that itsdangerous and hmac.compare_digest cover.
        """
        if not isinstance(submitted, str) or not submitted:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf.encode())


class LoginThrottle:
    """At most `attempts` login attempts per client per window; a success clears its count."""

    def __init__(self, attempts: int = ATTEMPTS, window: float = ATTEMPT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._tries: dict[str, deque[float]] = {}

    def attempt(self, client: str) -> float:
        """0 if client may try now (the try is counted), else the seconds until it may."""
        now = self.clock()
        tries = self._tries.setdefault(client, deque())
        while tries and tries[0] <= now - self.window:
            tries.popleft()
        if len(tries) >= self.attempts:
            return max(1.0, tries[0] + self.window - now)
        tries.append(now)
        if len(self._tries) > _MAX_CLIENTS_TRACKED:
            self._forget_quiet(now)
        return 0.0

    def succeeded(self, client: str) -> None:
        self._tries.pop(client, None)

    def _forget_quiet(self, now: float) -> None:
        for client, tries in list(self._tries.items()):
            if not tries or tries[-1] <= now - self.window:
                del self._tries[client]


class AdminGate:
    """Checks the password, reads and writes the session cookie, and revokes sessions."""

    def __init__(self, password: str, secret: bytes, *, secure: bool,
                 clock: Callable[[], float] = time.time,
                 throttle: LoginThrottle | None = None,
                 failure_delay: float = FAILURE_DELAY_SECONDS) -> None:
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"the admin password needs at least {MIN_PASSWORD_CHARS} characters")
        self._password = _digest(password)
        key = hmac.new(secret, _KEY_LABEL + self._password, hashlib.sha256).digest()
        self._cookies = URLSafeSerializer(key, salt="assistant.admin.session",
                                          signer_kwargs={"key_derivation": "hmac",
                                                         "digest_method": hashlib.sha256})
        self.secure, self.clock = secure, clock
        self.throttle = throttle or LoginThrottle()
        self.failure_delay = failure_delay
        self._revoked: dict[str, float] = {}  # session id -> when it would have expired

    def password_matches(self, given: object) -> bool:
        if not isinstance(given, str):
            return False
        return hmac.compare_digest(_digest(given), self._password)

    # -- sessions ------------------------------------------------------------------------------

    def read(self, request: Request) -> AdminSession:
        """The request's session if its cookie is genuine, live and not revoked; else a new one.

        A new one is not logged in: it only carries the token the login form needs.
        """
        found = self._decode(request.cookies.get(COOKIE, ""))
        if found is None or found.sid in self._revoked or \
                not 0 <= self.clock() - found.since < SESSION_SECONDS:
            return self.new_session()
        return found

    def new_session(self, *, admin: bool = False, flash: str = "") -> AdminSession:
        """A fresh session with a new id and token (never the old ones: no session fixation)."""
        return AdminSession(sid=secrets.token_urlsafe(18), csrf=secrets.token_urlsafe(32),
                            since=self.clock(), admin=admin, flash=flash)

    def with_flash(self, session: AdminSession, flash: str) -> AdminSession:
        return replace(session, flash=flash[:600])

    def write(self, response: Response, session: AdminSession) -> None:
        """Put session in response's cookie, for the rest of its 12 hours."""
        left = max(1, math.ceil(session.since + SESSION_SECONDS - self.clock()))
        value = self._cookies.dumps({"sid": session.sid, "csrf": session.csrf,
                                     "since": session.since, "admin": session.admin,
                                     "flash": session.flash})
        response.set_cookie(COOKIE, value, max_age=left, path=COOKIE_PATH, secure=self.secure,
                            httponly=True, samesite="strict")

    def revoke(self, session: AdminSession) -> None:
        """Log session out: its cookie is refused from now on, even if it was copied."""
        now = self.clock()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session.sid] = session.since + SESSION_SECONDS

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True,
                               samesite="strict")

    def _decode(self, value: str) -> AdminSession | None:
        if not value:
            return None
        try:
            data: Any = self._cookies.loads(value)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        sid, csrf, since = data.get("sid"), data.get("csrf"), data.get("since")
        admin, flash = data.get("admin"), data.get("flash", "")
        if not (isinstance(sid, str) and isinstance(csrf, str) and sid and csrf
                and isinstance(since, int | float) and isinstance(admin, bool)
                and isinstance(flash, str)):
            return None
        return AdminSession(sid=sid, csrf=csrf, since=float(since), admin=admin, flash=flash)


@dataclass(frozen=True)
class Refusal:
    """A POST turned away before its handler ran: the HTTP status and why, in words."""

    status: int
    why: str


async def posted_form(request: Request, session: AdminSession) -> dict[str, str] | Refusal:
    """The posted form if it is same-site, small and carries session's CSRF token.

    Anything but an urlencoded form has no token, so it is refused like a form without one.
    Forms are read here (at most MAX_FORM_BYTES) rather than by request.form(), which holds a
    body of any size in memory, on the one URL open to anyone (/login).
    """
    if request.headers.get("sec-fetch-site") == "cross-site":  # browsers say so; never ours
        return Refusal(403, "Forms from other sites are not accepted.")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    form = await _read_form(request) if kind == "application/x-www-form-urlencoded" else {}
    if form is None:
        return Refusal(413, "That form is too large or unreadable.")
    if not session.csrf_ok(form.get("csrf")):
        log.warning("admin form refused: missing or wrong CSRF token")
        return Refusal(403, "This form has expired or did not come from this page. Go back, "
                       "reload the page and try again.")
    return form


async def _read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded body of at most MAX_FORM_BYTES, its first value per name; else None."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        body.append(chunk)
    try:
        pairs = parse_qsl(b"".join(body).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def open_gate(config: Config) -> AdminGate | Closed:
    """The gate for config's admin page, or Closed with what to do to open it."""
    variable = config.service.admin_password_env
    password = secret_from_env(variable, "service.admin_password_env", needed=False)
    if not password:
        return Closed(f"The admin page is off. To turn it on, set the environment variable "
                      f"{variable} (named by service.admin_password_env) to a password of at "
                      f"least {MIN_PASSWORD_CHARS} characters and restart the assistant.")
    if len(password) < MIN_PASSWORD_CHARS:
        return Closed(f"The admin page is off: the password in {variable} is shorter than "
                      f"{MIN_PASSWORD_CHARS} characters. Set a longer one and restart.")
    if config.mail is None:
        return Closed("The admin page is off: it signs its sessions with the mail token "
                      "secret, and the config has no [mail] section.")
    try:
        secret = token_secret(config.mail)
    except ConfigError as err:
        return Closed(f"The admin page is off: {'; '.join(err.problems)}.")
    public = config.service.public_url or ""
    return AdminGate(password, secret, secure=public.startswith("https://"))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
