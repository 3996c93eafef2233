"""Signing in to Google: a bearer token per watched user, refreshed before it runs out.

Two ways, as Google documents them:
- a service account with domain-wide delegation (one key acts for every user of a Workspace
  domain; the admin's way): https://developers.google.com/identity/protocols/oauth2/service-account
- an installed app with a stored refresh token (one user signs in once; google-auth-oauthlib's
  InstalledAppFlow): https://developers.google.com/identity/protocols/oauth2/native-app

The scope is calendar.events: the narrowest one that can list, read and patch events and watch
them (https://developers.google.com/calendar/api/auth). Secrets live in files outside the
repository, written owner-only; nothing here logs a token.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol

import google.auth.transport.requests
import requests
from google.auth.credentials import Credentials
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as UserCredentials

from assistant.errors import AuthFailed, ConfigError, ProviderUnavailable

SCOPES = ("https://www.googleapis.com/auth/calendar.events",)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class SignIn(Protocol):
    def credentials_for(self, user: str) -> Credentials:
        """Credentials acting for user; raises AuthFailed if this sign-in cannot."""
        ...


class ServiceAccountSignIn:
    """One service-account key, acting for each user through domain-wide delegation."""

    def __init__(self, key_file: Path) -> None:
        try:
            info = json.loads(Path(key_file).read_text(encoding="utf-8"))
            self._base = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(str(key_file), [f"not a service-account key file: {err}"]) from err

    def credentials_for(self, user: str) -> Credentials:
        return self._base.with_subject(user)


class InstalledAppSignIn:
    """One user's stored refresh token (written by authorize_installed_app)."""

    def __init__(self, token_file: Path) -> None:
        try:
            info = json.loads(Path(token_file).read_text(encoding="utf-8"))
            # Built here rather than by from_authorized_user_file, which always sends refreshes
            # to Google's own token URI: the file's token_uri is what the user signed in with.
            self._credentials = UserCredentials(
                token=info.get("token"),
                refresh_token=info["refresh_token"],
                token_uri=info.get("token_uri") or GOOGLE_TOKEN_URI,
                client_id=info["client_id"],
                client_secret=info["client_secret"],
                scopes=SCOPES,
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(str(token_file), [f"not a stored Google sign-in: {err!r}"]) from err
        self.user = str(info.get("assistant_user", ""))

    def credentials_for(self, user: str) -> Credentials:
        if self.user and user.lower() != self.user.lower():
            raise AuthFailed(f"this sign-in is for {self.user} only", calendar=user)
        return self._credentials


def authorize_installed_app(
    client_secrets_file: Path, token_file: Path, user: str, *, open_browser: bool = True
) -> Credentials:
    """Run Google's consent flow for one user and store the refresh token owner-only."""
    from google_auth_oauthlib.flow import InstalledAppFlow  # only the sign-in command needs it

    flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets_file), scopes=SCOPES)
    credentials = flow.run_local_server(port=0, open_browser=open_browser)
    stored = json.loads(credentials.to_json()) | {"assistant_user": user}
    write_secret(token_file, json.dumps(stored, indent=1))
    return credentials


def write_secret(path: Path, text: str) -> None:
    """Write text readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


class TokenSource:
    """Authorization headers per user, refreshed when expired, thread-safe."""

    def __init__(self, sign_in: SignIn) -> None:
        self._sign_in = sign_in
        self._credentials: dict[str, Credentials] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._session = requests.Session()
        self._transport = google.auth.transport.requests.Request(self._session)

    def close(self) -> None:
        self._session.close()

    def authorization(self, user: str) -> str:
        """'Bearer …' for user, refreshing first if the token is missing or about to expire."""
        with self._lock_for(user):
            credentials = self._for(user)
            if not credentials.valid:
                self._refresh(user, credentials)
            return f"Bearer {credentials.token}"

    def refresh(self, user: str, rejected: str) -> None:
        """Get a new token after the provider refused `rejected` (unless already replaced)."""
        with self._lock_for(user):
            credentials = self._for(user)
            if f"Bearer {credentials.token}" == rejected:
                self._refresh(user, credentials)

    def _refresh(self, user: str, credentials: Credentials) -> None:
        try:
            credentials.refresh(self._transport)
        except RefreshError as err:
            if err.retryable:  # the token endpoint was throttled or down, nothing refused us
                raise ProviderUnavailable(f"Google's token endpoint failed: {err}",
                                          calendar=user) from err
            raise AuthFailed(f"Google refused to sign in as {user}: {_reason(err)}",
                             calendar=user) from err
        except TransportError as err:
            raise ProviderUnavailable(f"could not reach Google's token endpoint: {err}",
                                      calendar=user) from err

    def _for(self, user: str) -> Credentials:
        if user not in self._credentials:
            self._credentials[user] = self._sign_in.credentials_for(user)
        return self._credentials[user]

    def _lock_for(self, user: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(user, threading.Lock())


def _reason(err: RefreshError) -> str:
    """Google's error words, with a hint for the mistakes admins actually make."""
    text = str(err.args[0]) if err.args else str(err)
    if "unauthorized_client" in text:
        return (text + " (is domain-wide delegation granted to this service account for the "
                "calendar.events scope, in the Admin console under Security > API controls?)")
    if "invalid_grant" in text:
        return text + (" (the key was deleted or the sign-in revoked: create a new key, "
                       "or sign in again)")
    return text
