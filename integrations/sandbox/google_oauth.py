"""Google's OAuth 2.0 token endpoint, as far as the assistant's two sign-ins use it.

- Service account with domain-wide delegation: POST /token with
  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and an RS256-signed assertion whose
  claims are iss (the service account), sub (the user to act for), scope, aud (the token URI),
  iat and exp (at most an hour later). Without delegation for the user's domain Google answers
  401 unauthorized_client.
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest
- Installed app: GET /o/oauth2/auth (consent, here granted at once for the configured user)
  redirects back with a code; POST /token exchanges it (grant_type=authorization_code) and later
  refreshes (grant_type=refresh_token); a revoked token answers 400 invalid_grant.
  https://developers.google.com/identity/protocols/oauth2/native-app
Access tokens last an hour (expires_in 3599) and may be revoked early, to exercise 401 handling.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from google.auth import jwt
from google.auth.exceptions import GoogleAuthError

from integrations.sandbox.server import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # "aud: always" this, per the guide
ACCESS_TOKEN_SECONDS = 3599


@dataclass
class Grant:
    user: str
    scopes: frozenset[str]
    expires: float


@dataclass
class OAuthServer:
    """Accounts and tokens; the calendar emulator asks it who a bearer token belongs to."""

    token_url: str = ""
    service_accounts: dict[str, str] = field(default_factory=dict)  # email -> public key PEM
    delegated_domains: dict[str, set[str]] = field(default_factory=dict)  # sa email -> domains
    clients: dict[str, str] = field(default_factory=dict)  # client id -> secret
    consenting_user: str = ""  # who "signs in" at the consent screen
    token_requests: int = 0
    _refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    _codes: dict[str, Grant] = field(default_factory=dict)
    _access: dict[str, Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- set-up, as an admin would in the Google consoles --------------------------------------

    def add_service_account(self, email: str, public_key_pem: str, *domains: str) -> None:
        self.service_accounts[email] = public_key_pem
        self.delegated_domains[email] = set(domains)

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
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        if grant_type == "authorization_code":
            return self._code_grant(form)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def authorize(self, request: Request) -> Response:
        """The consent screen: grant at once and send the browser back with a code."""
        redirect = request.param("redirect_uri") or ""
        if request.param("client_id") not in self.clients or not redirect:
            return _oauth_error(400, "invalid_request", "Missing or unknown client_id.")
        code = "4/" + secrets.token_urlsafe(30)
        scopes = frozenset((request.param("scope") or "").split())
        self._codes[code] = Grant(self.consenting_user, scopes, time.time() + 600)
        query = urlencode({"state": request.param("state") or "", "code": code,
                           "scope": " ".join(sorted(scopes))})
        parts = urlsplit(redirect)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        return Response(302, b"", {"Location": location})

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
        if claims.get("sub") and domain not in self.delegated_domains.get(claims["iss"], set()):
            return _oauth_error(
                401, "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        return self._access_response(Grant(user, frozenset(claims.get("scope", "").split()), 0))

    def _refresh_grant(self, form: dict[str, str]) -> Response:
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self._access_response(grant)

    def _code_grant(self, form: dict[str, str]) -> Response:
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        refresh = self.issue_refresh_token(grant.user, grant.scopes)
        return self._access_response(grant, refresh_token=refresh)

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
