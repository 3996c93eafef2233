"""Signing in to Google: a bearer token per watched user, refreshed before it runs out.

Two ways, as Google documents them:
- a service account with domain-wide delegation (one key acts for every user of a Workspace
  domain; the admin's way): https://developers.google.com/identity/protocols/oauth2/service-account
- an installed app with a stored refresh token (one user signs in once; google-auth-oauthlib's
  InstalledAppFlow): https://developers.google.com/identity/protocols/oauth2/native-app

The scope is calendar.events: the narrowest one that can list, read and patch events and watch
them (https://developers.google.com/calendar/api/auth). It does not cover settings.get, which
wants calendar.settings.readonly (or a broader calendar scope:
https://developers.google.com/workspace/calendar/api/v3/reference/settings/get#auth), so the
owner's language setting is read with a token of its own asking for that scope alone
(`with_scopes`): with domain-wide delegation, a token request naming a scope the admin did not
delegate is refused whole (401 unauthorized_client), so adding it to SCOPES would stop every
calendar of a domain whose admin granted calendar.events only. Secrets live in files outside the
repository, written owner-only; nothing here logs a token. `explain` turns a failed sign-in or
check into what an admin does about it in the Admin console or the Cloud console.
"""

from __future__ import annotations

import copy
import json
import threading
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import google.auth.transport.requests
import requests
from google.auth.credentials import Credentials
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as UserCredentials
from requests.adapters import HTTPAdapter

from assistant.environ import environ_set
from assistant.errors import (
    AuthFailed,
    ConfigError,
    InputError,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from assistant.secret_files import read_owner_only, write_owner_only

SCOPES = ("https://www.googleapis.com/auth/calendar.events",)
# Optional: only the owner's language setting (settings.get) is read with it.
SETTINGS_SCOPES = ("https://www.googleapis.com/auth/calendar.settings.readonly",)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CONSENT_TIMEOUT_SECONDS = 300
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
MINT_AT_ONCE = 16  # token requests in flight at once; each is a signed JWT and one round trip


class SignIn(Protocol):
    def credentials_for(self, user: str) -> Credentials:
        """Credentials acting for user; raises AuthFailed if this sign-in cannot."""
        ...

    def with_scopes(self, scopes: Sequence[str]) -> SignIn | None:
        """This sign-in asking for other scopes, its credentials_for(user) acting as exactly
        that user; None when it cannot ask for them, or cannot be sure whose account a token
        would be for (a call to users/me would then read somebody else's settings)."""
        ...


class ServiceAccountSignIn:
    """One service-account key, acting for each user through domain-wide delegation."""

    def __init__(self, key: dict[str, Any]) -> None:
        self._base = service_account.Credentials.from_service_account_info(key, scopes=SCOPES)

    @classmethod
    def from_key_file(cls, key_file: Path) -> ServiceAccountSignIn:
        """The sign-in a config names: its key file must be readable by its owner only."""
        try:
            return cls(json.loads(read_owner_only(Path(key_file),
                                                  "google.service_account_key_file")))
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError("google.service_account_key_file", [
                f"{key_file} is not a service-account key file: {err}"]) from err

    def credentials_for(self, user: str) -> Credentials:
        return self._base.with_subject(user)

    def with_scopes(self, scopes: Sequence[str]) -> ServiceAccountSignIn:
        """The same key asking for scopes; each token acts as its subject, the user named."""
        other = copy.copy(self)
        other._base = self._base.with_scopes(list(scopes))
        return other


class InstalledAppSignIn:
    """One user's stored refresh token (written by authorize_installed_app)."""

    def __init__(self, token_file: Path) -> None:
        try:
            info = json.loads(read_owner_only(Path(token_file), "google.token_file"))
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
            granted = info.get("granted_scopes") or info.get("scopes") or SCOPES
            granted = granted.split() if isinstance(granted, str) else granted
            self._granted = frozenset(str(scope) for scope in granted)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError("google.token_file", [
                f"{token_file} is not a stored Google sign-in ({err!r}): run "
                "`assistant auth google`"]) from err
        self.user = str(info.get("assistant_user", ""))

    def credentials_for(self, user: str) -> Credentials:
        if self.user and user.lower() != self.user.lower():
            raise AuthFailed(f"this sign-in is for {self.user} only", calendar=user)
        return self._credentials

    def with_scopes(self, scopes: Sequence[str]) -> InstalledAppSignIn | None:
        """The same refresh token asking for scopes (a refresh may ask for fewer scopes than
        were granted, never others: RFC 6749 section 6); None when the consent did not grant
        them, or the file does not say whose sign-in it is."""
        if not self.user or not set(scopes) <= self._granted:
            return None
        other = copy.copy(self)
        base = self._credentials
        other._credentials = UserCredentials(
            token=None, refresh_token=base.refresh_token, token_uri=base.token_uri,
            client_id=base.client_id, client_secret=base.client_secret, scopes=list(scopes))
        return other


class HeldSignIn:
    """Credentials already in hand for one user (fresh from the consent flow)."""

    def __init__(self, credentials: Credentials, user: str) -> None:
        self._credentials, self.user = credentials, user

    def credentials_for(self, user: str) -> Credentials:
        if user.lower() != self.user.lower():
            raise AuthFailed(f"this sign-in is for {self.user} only", calendar=user)
        return self._credentials

    def with_scopes(self, scopes: Sequence[str]) -> None:
        """Held only to check the consent just given: it asks for nothing else."""
        return None


def read_service_account_key(path: Path) -> dict[str, Any]:
    """The key file's JSON, if it is a service-account key; InputError saying what it is if not."""
    info = _json_file(path, "a service-account key")
    if "installed" in info or "web" in info:
        raise InputError(f"{path} is an OAuth client file, not a service-account key: use it "
                         "with --client-secrets")
    missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
    if info.get("type") != "service_account" or missing:
        raise InputError(f"{path} is not a service-account key (type {info.get('type')!r}"
                         + (f", no {', '.join(missing)}" if missing else "") + "): download one "
                         "in the Cloud console, IAM & Admin > Service accounts > the account > "
                         "Keys > Add key > JSON")
    try:
        service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as err:
        raise InputError(f"{path}: the key's private_key cannot be read ({err}); download a "
                         "new key") from err
    return info


def read_client_secrets(path: Path) -> dict[str, Any]:
    """An installed app's client-secrets JSON; InputError saying what is wrong if it is not."""
    info = _json_file(path, "an OAuth client file")
    if "web" in info:
        raise InputError(f"{path} is a 'Web application' client, which cannot sign in from "
                         "this machine: in the Cloud console, APIs & Services > Credentials > "
                         "Create credentials > OAuth client ID, choose 'Desktop app'")
    client = info.get("installed")
    needed = ("client_id", "client_secret", "auth_uri", "token_uri")
    if not isinstance(client, dict) or any(not client.get(name) for name in needed):
        kind = "a service-account key" if info.get("type") == "service_account" else "not one"
        raise InputError(f"{path} is not an OAuth client file ({kind}): download the JSON of "
                         "a 'Desktop app' client from the Cloud console, APIs & Services > "
                         "Credentials")
    return info


def sign_in_installed_app(
    client_secrets_file: Path, user: str, *, open_browser: bool = True,
    show: Callable[[str, bool], None] = lambda url, opening: None,
    timeout_seconds: int = CONSENT_TIMEOUT_SECONDS,
) -> UserCredentials:
    """Google's consent flow for one user, nothing stored yet.

    show(url, opening_browser) is told the consent page's address before the flow waits for
    the browser to come back to this machine's loopback address.
    """
    # Only the sign-in command needs these.
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    client = read_client_secrets(client_secrets_file)
    opening = open_browser and _has_browser()

    class ShownFlow(InstalledAppFlow):
        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            show(url, opening)
            return url, state

    flow = ShownFlow.from_client_config(client, scopes=list(SCOPES))
    with _oauthlib_allowing(client["installed"]["token_uri"]):
        try:
            credentials = flow.run_local_server(
                host="localhost", port=0, open_browser=opening,
                authorization_prompt_message=None, timeout_seconds=timeout_seconds,
                # Google's parameters: who is expected, and a refresh token every time.
                login_hint=user, prompt="consent", access_type="offline")
        except WSGITimeoutError as err:
            raise AuthFailed(f"nobody finished signing in within {timeout_seconds // 60} "
                             "minutes", calendar=user) from err
        except OAuth2Error as err:
            raise AuthFailed(f"Google refused the sign-in: {err.error}: {err.description}",
                             calendar=user) from err
        except requests.RequestException as err:
            raise ProviderUnavailable(f"could not reach Google's token endpoint: {err}",
                                      calendar=user) from err
    granted = credentials.granted_scopes
    if granted is not None and not set(SCOPES) <= set(granted):
        raise AuthFailed(f"Google answered 403 insufficientPermissions: the consent granted "
                         f"{' '.join(granted) or 'nothing'}", calendar=user)
    if not credentials.refresh_token:
        raise AuthFailed("Google sent no refresh token, so the sign-in would not last",
                         calendar=user)
    return credentials


def store_installed_app_token(credentials: Credentials, token_file: Path, user: str) -> None:
    stored = json.loads(credentials.to_json()) | {"assistant_user": user}
    granted = getattr(credentials, "granted_scopes", None)
    if granted is not None:  # what the person left ticked on the consent screen
        stored["granted_scopes"] = sorted(granted)
    write_owner_only(token_file, json.dumps(stored, indent=1))


def authorize_installed_app(
    client_secrets_file: Path, token_file: Path, user: str, *, open_browser: bool = True
) -> Credentials:
    """Run Google's consent flow for one user and store the refresh token owner-only."""
    credentials = sign_in_installed_app(client_secrets_file, user, open_browser=open_browser)
    store_installed_app_token(credentials, token_file, user)
    return credentials


class TokenSource:
    """Authorization headers per user, refreshed when expired, thread-safe."""

    def __init__(self, sign_in: SignIn) -> None:
        self._sign_in = sign_in
        self._credentials: dict[str, Credentials] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._session = requests.Session()
        connections = HTTPAdapter(pool_maxsize=MINT_AT_ONCE)
        self._session.mount("https://", connections)
        self._session.mount("http://", connections)
        self._transport = google.auth.transport.requests.Request(self._session)
        self._minting = ThreadPoolExecutor(MINT_AT_ONCE, thread_name_prefix="google-token")

    def close(self) -> None:
        self._minting.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    def authorizations(self, users: Sequence[str]) -> list[str | ProviderError]:
        """authorization() for each user, the missing tokens minted concurrently.

        With domain-wide delegation every user has a token of their own, one round trip to
        the token endpoint each: minted one after another, a first sync of 5,000 calendars
        would wait minutes for them alone.
        """
        def one(user: str) -> str | ProviderError:
            try:
                return self.authorization(user)
            except ProviderError as err:
                return err

        missing = [user for user in users if not self._holds_valid(user)]
        minted = dict(zip(missing, self._minting.map(one, missing), strict=True)
                      ) if len(missing) > 1 else {}
        return [minted[user] if user in minted else one(user) for user in users]

    def _holds_valid(self, user: str) -> bool:
        credentials = self._credentials.get(user)
        return credentials is not None and credentials.valid

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


def explain(err: Exception, *, method: str, user: str,
            key: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(a short problem name, what happened and what to do) for a failed sign-in or check.

    method is "service_account" (key: the key file's JSON) or "installed_app".
    """
    # Google's own words: a refused token request's, not the hint TokenSource added to them.
    cause = err.__cause__
    text = str(cause.args[0]) if isinstance(cause, RefreshError) and cause.args else str(err)
    key = key or {}
    account, client_id = key.get("client_email", "the service account"), key.get("client_id", "")
    project = key.get("project_id", "")
    domain = user.rpartition("@")[2]
    delegation = ("In the Google Admin console of " + domain + " (admin.google.com), Security > "
                  "Access and data control > API controls > Manage Domain Wide Delegation > "
                  f"Add new: client ID {client_id or '(the key file client_id)'}, OAuth scope "
                  f"{SCOPES[0]}, Authorize. It can take some minutes to apply.")
    said = f"\n(Google said: {text})"
    if "unauthorized_client" in text:
        return "delegation_not_granted", (
            f"Google will not let {account} act for {user}: domain-wide delegation is not "
            f"granted for {domain}, or not for the calendar.events scope. {delegation}{said}")
    if "Invalid email or User ID" in text:
        return "unknown_user", f"{domain} has no user {user}: check the address.{said}"
    if "reasonable timeframe" in text or "short-lived" in text:
        return "clock", f"Google rejected the key's timestamp: check this machine's clock.{said}"
    if "invalid_grant" in text and method == "service_account":
        return "key_invalid", (
            f"Google does not accept this key any more (deleted, disabled, or the file was "
            f"changed). In the Cloud console, IAM & Admin > Service accounts > {account} > "
            f"Keys, add a new JSON key and run this again with it.{said}")
    if "invalid_grant" in text:
        return "sign_in_revoked", f"The sign-in was revoked or expired: run this again.{said}"
    if "invalid_client" in text or "deleted_client" in text:
        return "client_invalid", (
            "Google does not know this OAuth client (deleted, or its secret reset): download "
            "the client's JSON again from the Cloud console, APIs & Services > Credentials."
            f"{said}")
    if "access_denied" in text:
        return "denied", f"The consent screen was cancelled (access_denied).{said}"
    if "within" in text and "minutes" in text:
        return "timed_out", f"The browser never came back: run this again.{said}"
    if "accessNotConfigured" in text or "SERVICE_DISABLED" in text or "has not been used" in text:
        return "api_disabled", (
            f"The Google Calendar API is not enabled in the key's Cloud project {project}: "
            "Cloud console, APIs & Services > Library > Google Calendar API > Enable (then wait "
            f"a few minutes).{said}")
    if "insufficientPermissions" in text or "SCOPE_INSUFFICIENT" in text:
        if method == "service_account":
            return "scope_missing", (
                f"The delegation does not include {SCOPES[0]}. {delegation}{said}")
        return "scope_missing", (
            "The consent did not include calendar events: run this again and keep 'View and "
            f"edit events on all your calendars' ticked; the app's OAuth consent screen must "
            f"list the scope {SCOPES[0]} (Cloud console, Google Auth platform > Data "
            f"access).{said}")
    if isinstance(err, NotFound):
        return "calendar_not_found", (
            f"Google has no calendar for {user}: is it a user of the Workspace domain (not a "
            "group or an alias), with Google Calendar turned on for their organisational "
            f"unit?{said}")
    if isinstance(err, PermissionDenied):
        return "permission_denied", f"Google refused to list {user}'s calendar.{said}"
    if isinstance(err, TransientProviderError):
        return "unreachable", (
            "Could not reach Google; check the network (for the sandbox: is `assistant demo "
            f"--serve` still running?).{said}")
    if isinstance(err, ProviderError):
        return "refused", f"Google refused the sign-in or the check.{said}"
    return "failed", text


def _json_file(path: Path, kind: str) -> dict[str, Any]:
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not JSON, so not {kind}") from err
    if not isinstance(info, dict):
        raise InputError(f"{path} is not {kind}")
    return info


def _has_browser() -> bool:
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


@contextmanager
def _oauthlib_allowing(token_uri: str) -> Iterator[None]:
    """oauthlib insists on https; the sandbox's token endpoint on this machine is plain http.
    It also raises on a consent that granted fewer scopes, which is checked here instead."""
    names = ["OAUTHLIB_RELAX_TOKEN_SCOPE"]
    parts = urlsplit(token_uri)
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        names.append("OAUTHLIB_INSECURE_TRANSPORT")
    with environ_set(dict.fromkeys(names, "1")):
        yield
