"""Signing in to Microsoft Graph with msal: app-only for many mailboxes, or one user's device code.

- App-only (client credentials), the admin's way: ConfidentialClientApplication with a client
  secret or a certificate; scope `{graph resource}/.default`, i.e. the application permissions an
  admin granted (Calendars.ReadWrite):
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- One user, the device-code flow: PublicClientApplication, delegated Calendars.ReadWrite; msal's
  token cache is kept in a file only its owner can read:
  https://learn.microsoft.com/en-us/entra/msal/python/advanced/msal-python-token-cache-serialization
msal caches tokens and refreshes them itself; after a 401 we drop the cached access token once
and ask again. Tokens and secrets are never logged. `explain` turns a failed sign-in or check
into what an admin does about it in the Entra admin center (the AADSTS codes:
https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from assistant.errors import (
    AuthFailed,
    ConfigError,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from assistant.secret_files import read_owner_only, write_owner_only

T = TypeVar("T")
DELEGATED_SCOPES = ["Calendars.ReadWrite"]
# Graph's resource per cloud, for the app-only scope; anything else (an emulator) is global.
_GRAPH_RESOURCES = ("graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
                    "microsoftgraph.chinacloudapi.cn")
_HINTS = {
    "AADSTS7000215": "the client secret is wrong or expired: create a new one for the app",
    "AADSTS700016": "no app with this client id in the tenant: check tenant and client_id",
    "AADSTS65001": "an admin has not consented to the app's Graph permissions",
    "AADSTS90002": "the tenant does not exist: check the tenant setting",
    "AADSTS1002012": "the scope is wrong for app-only sign-in",
    "AADSTS7000222": "the client secret has expired: create a new one for the app",
    "AADSTS7000218": "the app does not allow public client flows (needed for a device code)",
    "invalid_grant": "the stored sign-in expired or was revoked: run `assistant auth microsoft`",
}
_AADSTS = re.compile(r"AADSTS\d+: [^\\\r\n\"]*")


class GraphSignIn(Protocol):
    def authorization(self) -> str:
        """'Bearer …' for Graph; raises AuthFailed or ProviderUnavailable."""
        ...

    def refresh(self, rejected: str) -> None:
        """Graph refused `rejected`: get another token next time (unless already replaced)."""
        ...


def graph_scope(graph_endpoint: str) -> str:
    host = urlsplit(graph_endpoint).hostname or ""
    resource = host if host in _GRAPH_RESOURCES else "graph.microsoft.com"
    return f"https://{resource}/.default"


class AppSignIn:
    """App-only tokens (client credentials); one token covers every mailbox of the tenant.

    msal's application reads the authority's metadata over the network when it is made, so it
    is made on first use, where a failure is an error to retry rather than a crash at start.
    """

    def __init__(self, make_app: Callable[[], msal.ConfidentialClientApplication],
                 scope: str) -> None:
        self._make_app = make_app
        self._app: msal.ConfidentialClientApplication | None = None
        self._scopes = [scope]
        self._lock = threading.Lock()

    def authorization(self) -> str:
        with self._lock:
            app = self._app or self._made()
            return _bearer(_acquire(lambda: app.acquire_token_for_client(self._scopes)))

    def refresh(self, rejected: str) -> None:
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for token in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if f"Bearer {token.get('secret')}" == rejected:
                    cache.remove_at(token)

    def _made(self) -> msal.ConfidentialClientApplication:
        self._app = make_app(self._make_app)
        return self._app


class DeviceCodeSignIn:
    """One user's delegated tokens from a cache file written by the device-code sign-in."""

    def __init__(self, make_app: Callable[[], msal.PublicClientApplication],
                 cache_file: Path) -> None:
        self._make_app = make_app
        self._app: msal.PublicClientApplication | None = None
        self._cache_file = cache_file
        self._rejected = ""  # the last token Graph refused: the next one must be fresh
        self._lock = threading.Lock()

    def authorization(self) -> str:
        with self._lock:
            app = self._app or self._made()
            accounts = _call(app.get_accounts)
            if not accounts:
                raise AuthFailed("no Microsoft sign-in is stored: run `assistant auth microsoft`")
            result = _acquire(lambda: app.acquire_token_silent_with_error(
                DELEGATED_SCOPES, account=accounts[0]))
            if self._rejected and _bearer(result) == self._rejected:
                result = _acquire(lambda: app.acquire_token_silent_with_error(
                    DELEGATED_SCOPES, account=accounts[0], force_refresh=True))
            self._rejected = ""
            save_cache(app.token_cache, self._cache_file)
            return _bearer(result)

    def refresh(self, rejected: str) -> None:
        with self._lock:
            self._rejected = rejected

    def _made(self) -> msal.PublicClientApplication:
        self._app = make_app(self._make_app)
        return self._app


def app_sign_in(tenant: str, client_id: str, *, authority: str, graph_endpoint: str,
                secret: str | None = None, certificate_file: Path | None = None,
                http_client: requests.Session | None = None) -> AppSignIn:
    credential: str | dict[str, str]
    if certificate_file is not None:
        credential = certificate_credential(certificate_file)
    elif secret:
        credential = secret
    else:
        raise ConfigError("microsoft", ["app-only sign-in needs a client secret or a certificate"])
    return AppSignIn(lambda: msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=f"{authority.rstrip('/')}/{tenant}",
        http_client=http_client,
    ), graph_scope(graph_endpoint))


def load_token_cache(cache_file: Path) -> msal.SerializableTokenCache:
    """msal's cache as the file holds it (empty when there is no file yet)."""
    cache = msal.SerializableTokenCache()
    if cache_file.exists():
        try:
            cache.deserialize(read_owner_only(cache_file, "microsoft.token_cache_file")
                              .decode("utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError("microsoft.token_cache_file", [
                f"{cache_file} is not an msal token cache ({err}): run "
                "`assistant auth microsoft --device-code`"]) from err
    return cache


def device_code_app(tenant: str, client_id: str, cache: msal.SerializableTokenCache, *,
                    authority: str,
                    http_client: requests.Session | None = None) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        client_id, authority=f"{authority.rstrip('/')}/{tenant}", token_cache=cache,
        http_client=http_client,
    )


def sign_in_with_device_code(app: msal.PublicClientApplication, cache_file: Path,
                             show: Callable[[str], None]) -> str:
    """Run the device-code flow: show what to do, wait, keep the cache; the signed-in user."""
    user, _ = run_device_code(app, show)
    save_cache(app.token_cache, cache_file)
    return user


def run_device_code(app: msal.PublicClientApplication,
                    show: Callable[[str], None]) -> tuple[str, FixedSignIn]:
    """The device-code flow, the token kept only in app's cache: who signed in, and a sign-in
    with that token (for one check before anything is stored)."""
    flow = _call(lambda: app.initiate_device_flow(scopes=DELEGATED_SCOPES))
    if "user_code" not in flow:
        raise AuthFailed(f"Microsoft refused to start a sign-in: {_describe(flow)}")
    show(flow["message"])
    result = _call(lambda: app.acquire_token_by_device_flow(flow))
    if "access_token" not in result:
        raise AuthFailed(f"the sign-in did not complete: {_describe(result)}")
    user = str(result.get("id_token_claims", {}).get("preferred_username", ""))
    return user, FixedSignIn(_bearer(result))


class FixedSignIn:
    """One token already in hand, for a single check call; never refreshed."""

    def __init__(self, authorization: str) -> None:
        self._authorization = authorization

    def authorization(self) -> str:
        return self._authorization

    def refresh(self, rejected: str) -> None:
        return None


def save_cache(cache: msal.SerializableTokenCache, cache_file: Path) -> None:
    """Write msal's cache owner-only, and only when it changed."""
    if not cache.has_state_changed:
        return
    write_owner_only(cache_file, cache.serialize())


def make_app(make: Callable[[], T]) -> T:
    """msal's application, made now; its metadata fetch failing is a sign-in problem."""
    try:
        return _call(make)
    except ValueError as err:  # msal's words for a malformed or unknown authority
        # An unknown tenant's answer (AADSTS90002) is in the error msal replaced with its own.
        found = _AADSTS.search(str(err.__context__ or ""))
        words = str(err)
        if found:
            words = _describe({"error": "invalid_tenant", "error_description": found.group()})
        raise AuthFailed(f"Microsoft's sign-in refused the authority: {words}") from err


def _call(action: Callable[[], T]) -> T:
    try:
        return action()
    except requests.RequestException as err:
        raise ProviderUnavailable(f"could not reach Microsoft's sign-in: {err!r}") from err


def _acquire(call: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    result = _call(call)
    if not result or "access_token" not in result:
        raise AuthFailed(f"Microsoft refused the sign-in: {_describe(result or {})}")
    return result


def _bearer(result: dict[str, Any]) -> str:
    return f"Bearer {result['access_token']}"


def _describe(result: dict[str, Any]) -> str:
    """Microsoft's own words (first line) and, for errors admins make, what to do about it."""
    error = str(result.get("error", "no token"))
    description = str(result.get("error_description", "")).splitlines()
    words = f"{error}: {description[0]}" if description else error
    hint = next((h for code, h in _HINTS.items() if code in words), "")
    return f"{words} ({hint})" if hint else words


def certificate_credential(path: Path) -> dict[str, str]:
    """msal's certificate credential from a PEM holding the private key and the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        pem = read_owner_only(path, "microsoft.certificate_file")
        certificate = x509.load_pem_x509_certificate(pem)
        serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError) as err:
        raise ConfigError("microsoft.certificate_file", [
            f"{path} needs a PEM private key and certificate: {err}"]) from err
    # The certificate's SHA-1 thumbprint is how the token endpoint knows the key (x5t).
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return {"private_key": pem.decode(), "thumbprint": thumbprint,
            "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode()}



def explain(err: Exception, *, method: str, tenant: str, client_id: str, user: str,
            secret_env: str = "") -> tuple[str, str]:
    """(a short problem name, what happened and what to do) for a failed sign-in or check.

    method is "client_secret", "certificate" or "device_code"; user the mailbox checked.
    """
    text = str(err)
    app_page = (f"Entra admin center (entra.microsoft.com) > App registrations > the app "
                f"{client_id}")
    permission = ("the delegated permission Calendars.ReadWrite" if method == "device_code"
                  else "the application permission Calendars.ReadWrite")
    consent = (f"In {app_page} > API permissions, add Microsoft Graph > {permission}, then "
               f"press 'Grant admin consent for {tenant}' (a Privileged Role Administrator, "
               "Cloud Application Administrator or Application Administrator can).")
    said = f"\n(Microsoft said: {text})"
    if "AADSTS90002" in text:
        return "wrong_tenant", (
            f"There is no tenant {tenant!r}. Use your tenant's ID (Entra admin center > "
            "Overview > Tenant ID) or one of its verified domains, and the authority of the "
            f"cloud it lives in.{said}")
    if "AADSTS700016" in text:
        return "app_not_in_tenant", (
            f"Tenant {tenant} has no app with client ID {client_id}. Copy the Application "
            f"(client) ID from {app_page} > Overview, and check the app is registered in (or, "
            f"for a multi-tenant app, consented in) tenant {tenant}.{said}")
    if "AADSTS7000222" in text:
        return "secret_expired", (
            f"The client secret in ${secret_env} has expired. In {app_page} > Certificates & "
            f"secrets, create a new client secret and put its Value in ${secret_env}.{said}")
    if "AADSTS7000215" in text or "AADSTS700027" in text:
        if method == "certificate":
            return "bad_certificate", (
                f"The app did not accept the certificate. Upload its public part (the "
                f"certificate, never the key) in {app_page} > Certificates & secrets > "
                f"Certificates, and use the PEM holding that certificate's private key.{said}")
        return "bad_secret", (
            f"The client secret in ${secret_env} is not the app's. In {app_page} > "
            "Certificates & secrets, create a new client secret and put its Value (not its "
            f"Secret ID) in ${secret_env}.{said}")
    if "AADSTS65001" in text:
        return "consent_missing", (
            f"No admin has consented to the app's permissions. {consent}{said}")
    if "AADSTS7000218" in text:
        return "public_client_flows_off", (
            f"The app does not allow a device-code sign-in: in {app_page} > Authentication > "
            f"Advanced settings, set 'Allow public client flows' to Yes.{said}")
    if "authorization_declined" in text:
        return "declined", f"The sign-in was cancelled on the sign-in page.{said}"
    if "expired_token" in text or "AADSTS70019" in text:
        return "code_expired", f"Nobody entered the code in time: run the command again.{said}"
    if isinstance(err, PermissionDenied):
        return "consent_missing", (
            f"Graph refused to read {user}'s calendar: the app lacks {permission} or its "
            f"consent. {consent} If Exchange Online limits the app to some mailboxes (RBAC for "
            f"Applications or an application access policy), include {user}.{said}")
    if isinstance(err, NotFound):
        return "mailbox_not_found", (
            f"Tenant {tenant} has no mailbox {user}: check the address (the user's primary "
            f"email address) and that the user has an Exchange Online licence.{said}")
    if isinstance(err, TransientProviderError):
        return "unreachable", (
            "Could not reach Microsoft's sign-in or Graph; check the network (for the "
            f"sandbox: is `assistant demo --serve` still running?).{said}")
    if isinstance(err, ProviderError):
        return "refused", f"Microsoft refused the sign-in or the check.{said}"
    return "failed", text
