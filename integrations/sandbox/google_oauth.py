"""Google's OAuth 2.0 token endpoint, as far as the assistant's two sign-ins use it.

- Service account with domain-wide delegation: POST /token with
  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and an RS256-signed assertion whose
  claims are iss (the service account), sub (the user to act for), scope, aud (the token URI),
  iat and exp (at most an hour later). Without delegation for the user's domain, or for every
  scope the assertion names (the Admin console's delegation lists the client's scopes), Google
  answers 401 unauthorized_client; the token carries the scopes asked for.
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest,
  https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority
- Installed app (https://developers.google.com/identity/protocols/oauth2/native-app):
  GET /o/oauth2/auth takes Google's parameters (client_id, a loopback redirect_uri,
  response_type=code, scope, state, code_challenge and code_challenge_method for PKCE,
  login_hint, access_type, prompt) and shows a small sign-in and consent page: the person types
  (or keeps the login_hint) the account to sign in as, may untick a scope (granular consent,
  https://developers.google.com/identity/protocols/oauth2/resources/granular-permissions) and
  presses Allow or Cancel; the browser goes back to redirect_uri with ?code=&scope=&state= or
  ?error=access_denied&state=. A test may set `consenting_user` to skip the page. POST /token
  exchanges the code (grant_type=authorization_code, the same redirect_uri, the PKCE
  code_verifier) for an access token, and a refresh token only with access_type=offline; later
  refreshes use grant_type=refresh_token; a revoked token answers 400 invalid_grant.
Access tokens last an hour (expires_in 3599) and may be revoked early, to exercise 401 handling.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from google.auth import jwt
from google.auth.exceptions import GoogleAuthError

from integrations.sandbox.server import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # "aud: always" this, per the guide
ACCESS_TOKEN_SECONDS = 3599
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # what installed apps may redirect to
# The consent screen's words for the scopes it knows (Google's own wording).
SCOPE_WORDS = {
    "https://www.googleapis.com/auth/calendar.events": "View and edit events on all your calendars",
    "https://www.googleapis.com/auth/calendar": "See, edit, share, and permanently delete all the "
                                                "calendars you can access using Google Calendar",
    "https://www.googleapis.com/auth/calendar.readonly": "See and download any calendar you can "
                                                         "access using your Google Calendar",
    "https://www.googleapis.com/auth/calendar.settings.readonly": "View your Calendar settings",
}
# What a Workspace admin delegates to the assistant's service account when following its README.
DELEGATED_BY_DEFAULT = ("https://www.googleapis.com/auth/calendar.events",
                        "https://www.googleapis.com/auth/calendar.settings.readonly")


@dataclass
class Grant:
    user: str
    scopes: frozenset[str]
    expires: float


@dataclass
class _Code:
    """An authorization code, and what the token request must match to redeem it."""

    grant: Grant
    client_id: str
    redirect_uri: str
    challenge: str
    challenge_method: str
    offline: bool


@dataclass
class OAuthServer:
    """Accounts and tokens; the calendar emulator asks it who a bearer token belongs to."""

    token_url: str = ""
    service_accounts: dict[str, str] = field(default_factory=dict)  # email -> public key PEM
    delegated_domains: dict[str, set[str]] = field(default_factory=dict)  # sa email -> domains
    delegated_scopes: dict[str, frozenset[str]] = field(default_factory=dict)  # sa -> scopes
    clients: dict[str, str] = field(default_factory=dict)  # client id -> secret
    consenting_user: str = ""  # set: consent is granted at once for this user, with no page
    token_requests: int = 0
    _refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, Grant] = field(default_factory=dict)
    _suspended: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- set-up, as an admin would in the Google consoles --------------------------------------

    def add_service_account(self, email: str, public_key_pem: str, *domains: str,
                            scopes: Iterable[str] = DELEGATED_BY_DEFAULT) -> None:
        """A service account, delegated for domains with scopes (Admin console > Security >
        API controls > Domain-wide delegation: one client id, its list of scopes)."""
        self.service_accounts[email] = public_key_pem
        self.delegated_domains[email] = set(domains)
        self.delegated_scopes[email] = frozenset(scopes)

    def add_client(self, client_id: str, secret: str) -> None:
        self.clients[client_id] = secret

    def issue_refresh_token(self, user: str, scopes: frozenset[str]) -> str:
        token = "1//" + secrets.token_urlsafe(40)
        self._refresh_tokens[token] = Grant(user, scopes, float("inf"))
        return token

    def revoke_access_tokens(self, user: str | None = None) -> None:
        """Make current access tokens fail (401) as if they expired early."""
        with self._lock:
            for token, grant in list(self._access.items()):
                if user in (None, grant.user):
                    del self._access[token]

    def suspend_user(self, user: str) -> None:
        """An admin suspends the user: their tokens stop working and no new one is granted
        (400 invalid_grant, as Google answers a subject it will not sign in), until restored."""
        with self._lock:
            self._suspended.add(user)
        self.revoke_access_tokens(user)

    def restore_user(self, user: str) -> None:
        with self._lock:
            self._suspended.discard(user)

    def revoke_refresh_tokens(self, user: str) -> None:
        with self._lock:
            for token, grant in list(self._refresh_tokens.items()):
                if grant.user == user:
                    del self._refresh_tokens[token]

    # -- what the calendar emulator asks -------------------------------------------------------

    def user_of(self, authorization: str | None) -> Grant | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            grant = self._access.get(authorization.removeprefix("Bearer "))
        if grant is None or grant.expires < time.time():
            return None
        return grant

    # -- HTTP ----------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        with self._lock:
            self.token_requests += 1
        form = {key: values[-1] for key, values in parse_qs(request.body.decode()).items()}
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form.get("assertion", ""))
        if grant_type in ("refresh_token", "authorization_code"):
            form |= _client_credentials(request.header("Authorization"))
            if not self._client_authenticated(form):
                return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
            if grant_type == "refresh_token":
                return self._refresh_grant(form)
            return self._code_grant(form)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def authorize(self, request: Request, users: Iterable[str] = ()) -> Response:
        """GET: the sign-in and consent page (or, with `consenting_user`, consent at once)."""
        problem = self._authorization_problem(request)
        if problem is not None:
            return problem
        if self.consenting_user:
            return self._redirect_with_code(request, self.consenting_user, _requested(request))
        return _consent_page(request, request.param("login_hint") or "", sorted(users))

    def decide(self, request: Request, users: Iterable[str] = ()) -> Response:
        """POST from the consent page: Allow (as the account typed in) or Cancel."""
        problem = self._authorization_problem(request)
        if problem is not None:
            return problem
        form = parse_qs(request.body.decode())
        if form.get("decision", [""])[-1] != "allow":
            return _redirect(request, {"error": "access_denied"})
        user = form.get("user", [""])[-1].strip()
        known = {known.lower(): known for known in users}
        if user.lower() not in known:
            return _consent_page(request, user, sorted(known.values()),
                                 error="Couldn't find your Google Account.")
        granted = _requested(request) & frozenset(form.get("scope", []))
        return self._redirect_with_code(request, known[user.lower()], granted)

    def _authorization_problem(self, request: Request) -> Response | None:
        """Google's error page for a request it would not show a consent screen for."""
        redirect = request.param("redirect_uri") or ""
        parts = urlsplit(redirect)
        if request.param("client_id") not in self.clients:
            return _error_page(401, "invalid_client", "The OAuth client was not found.")
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            return _error_page(400, "redirect_uri_mismatch", "An installed app must redirect to "
                               f"a loopback address (http://127.0.0.1:port), not {redirect!r}.")
        if request.param("response_type") != "code":
            return _error_page(400, "unsupported_response_type", "response_type must be code.")
        if not _requested(request):
            return _error_page(400, "invalid_request", "Missing required parameter: scope")
        if request.param("code_challenge_method") not in (None, "S256", "plain"):
            return _error_page(400, "invalid_request", "Invalid code_challenge_method.")
        return None

    def _redirect_with_code(self, request: Request, user: str, scopes: frozenset[str]) -> Response:
        code = "4/" + secrets.token_urlsafe(30)
        self._codes[code] = _Code(
            Grant(user, scopes, time.time() + 600), request.param("client_id") or "",
            request.param("redirect_uri") or "", request.param("code_challenge") or "",
            request.param("code_challenge_method") or "plain",
            request.param("access_type") == "offline")
        return _redirect(request, {"code": code, "scope": " ".join(sorted(scopes))})

    def _jwt_grant(self, assertion: str) -> Response:
        try:
            unverified = jwt.decode(assertion, verify=False)
            key = self.service_accounts.get(unverified.get("iss", ""))
            if key is None:
                return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
            audiences = [GOOGLE_TOKEN_AUDIENCE, self.token_url]
            claims = jwt.decode(assertion, certs=key, audience=audiences)
        except (GoogleAuthError, ValueError):
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        if claims["exp"] - claims["iat"] > 3600:
            return _oauth_error(400, "invalid_grant",
                                "Invalid JWT: Token must be a short-lived token (60 minutes).")
        user = claims.get("sub") or claims["iss"]
        domain = user.rpartition("@")[2]
        if user in self._suspended:
            return _oauth_error(400, "invalid_grant", "Invalid email or User ID")
        scopes = frozenset(claims.get("scope", "").split())
        delegated = (domain in self.delegated_domains.get(claims["iss"], set())
                     and scopes <= self.delegated_scopes.get(claims["iss"], frozenset()))
        if claims.get("sub") and not delegated:
            return _oauth_error(
                401, "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        return self._access_response(Grant(user, scopes, 0))

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        expected = self.clients.get(form.get("client_id", ""))
        return expected is not None and secrets.compare_digest(
            expected, form.get("client_secret", ""))

    def _refresh_grant(self, form: dict[str, str]) -> Response:
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.user in self._suspended:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self._access_response(grant)

    def _code_grant(self, form: dict[str, str]) -> Response:
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.grant.expires < time.time():
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        if code.client_id != form.get("client_id") or code.redirect_uri != form.get(
                "redirect_uri"):
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge and not _verifier_matches(form.get("code_verifier", ""), code):
            return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        if not code.offline:
            return self._access_response(code.grant)
        refresh = self.issue_refresh_token(code.grant.user, code.grant.scopes)
        return self._access_response(code.grant, refresh_token=refresh)

    def _access_response(self, grant: Grant, **extra: str) -> Response:
        token = "ya29." + secrets.token_urlsafe(40)
        with self._lock:
            expires = time.time() + ACCESS_TOKEN_SECONDS
            self._access[token] = Grant(grant.user, grant.scopes, expires)
        body: dict[str, Any] = {"access_token": token, "expires_in": ACCESS_TOKEN_SECONDS,
                                "token_type": "Bearer", **extra}
        if grant.scopes:
            body["scope"] = " ".join(sorted(grant.scopes))
        return json_response(200, body, {"Cache-Control": "no-store"})


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _client_credentials(authorization: str | None) -> dict[str, str]:
    """client_id and client_secret from HTTP Basic authentication (client_secret_basic), if used."""
    if not authorization or not authorization.startswith("Basic "):
        return {}
    try:
        decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    except (ValueError, UnicodeDecodeError):
        return {}
    client_id, _, secret = decoded.partition(":")
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(secret)}


def _requested(request: Request) -> frozenset[str]:
    return frozenset((request.param("scope") or "").split())


def _verifier_matches(verifier: str, code: _Code) -> bool:
    if code.challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return secrets.compare_digest(verifier, code.challenge)


def _redirect(request: Request, values: dict[str, str]) -> Response:
    """Back to the app's loopback address with the answer in the query, state included."""
    parts = urlsplit(request.param("redirect_uri") or "")
    query = urlencode({"state": request.param("state") or "", **values})
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return Response(302, b"", {"Location": location})


def _consent_page(request: Request, user: str, users: list[str], error: str = "") -> Response:
    """Sign in as an account of the sandbox, and allow the app what it asked for."""
    query = html.escape(urlencode({k: v[-1] for k, v in request.query.items()}))
    scopes = "".join(
        f'<p><label><input type="checkbox" name="scope" value="{html.escape(scope)}" checked> '
        f"{html.escape(SCOPE_WORDS.get(scope, scope))}</label></p>"
        for scope in sorted(_requested(request)))
    accounts = ", ".join(html.escape(known) for known in users) or "none yet"
    warning = f'<p role="alert"><strong>{html.escape(error)}</strong></p>' if error else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts (sandbox)</title>
</head><body>
<h1>Sign in</h1>
<p>to continue to the app <code>{html.escape(request.param("client_id") or "")}</code>.
This is the local Google sandbox: its accounts are {accounts}.</p>
{warning}<form method="post" action="/o/oauth2/auth?{query}">
<p><label>Email <input type="email" name="user" value="{html.escape(user)}" required></label></p>
<p>The app wants to:</p>
{scopes}<p><button name="decision" value="allow">Allow</button>
<button name="decision" value="deny" formnovalidate>Cancel</button></p>
</form></body></html>
"""
    return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8",
                                         "Cache-Control": "no-store"})


def _error_page(status: int, error: str, description: str) -> Response:
    """What Google shows in the browser instead of a consent screen: 'Error 400: ...'."""
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title>"
            f"</head><body><h1>Error {status}: {html.escape(error)}</h1>"
            f"<p>{html.escape(description)}</p></body></html>\n")
    return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
