"""The Microsoft identity platform, as far as msal uses it for the assistant's two sign-ins.

Endpoints, after https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols:
- GET /{tenant}/v2.0/.well-known/openid-configuration: the metadata msal reads first;
- GET /common/discovery/instance: the instance metadata msal asks for before it trusts a cache;
- POST /{tenant}/oauth2/v2.0/token with grant_type client_credentials (a client secret, or a
  client_assertion JWT signed with the app's certificate; scope must be {resource}/.default)
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
  device_code (authorization_pending until the user approves) and refresh_token
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code;
- POST /{tenant}/oauth2/v2.0/devicecode.
Errors are OAuth bodies with AADSTS codes, e.g. AADSTS90002 for a tenant that does not exist
(a tenant exists here once an app is registered in it), AADSTS7000215 for a wrong secret and
AADSTS65001 when an admin has not consented to the app's permissions.

Each token carries the Graph permissions it was issued with, as Entra writes them into it (the
`roles` claim of an app-only token: the application permissions an admin granted the app; the
`scp` claim of a user's: the delegated permissions the device code was asked for), so a change
of permissions reaches a client with its next token
(https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference).

The device-code flow's one departure from
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code: the person
cannot sign in at https://microsoft.com/devicelogin, so `verification_uri` (and the message)
name this server's own page, GET/POST /devicelogin, where one enters the code and the address
of a mailbox of the sandbox, then signs in or cancels (which the polling client then sees as
authorization_declined). Tests may also call approve_device.
msal insists on an https authority, so clients reach this server through a session that
rewrites https://login.microsoftonline.com to it (see LoginRedirect).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
import requests

from integrations.sandbox.server import Request, Response, json_response

PUBLIC_LOGIN = "https://login.microsoftonline.com"
PUBLIC_DEVICE_LOGIN = "https://microsoft.com/devicelogin"
ACCESS_TOKEN_SECONDS = 3599
GRAPH_RESOURCE = "https://graph.microsoft.com/"
# The application permissions a sandbox app is granted unless a test says otherwise: what the
# README asks an admin for (MailboxSettings.Read is optional there; here it is granted).
APP_PERMISSIONS_BY_DEFAULT = frozenset({"Calendars.ReadWrite", "MailboxSettings.Read"})
DEVICE_CODE_SECONDS = 900
# Names that stand for "whichever tenant the user is in", valid without any app registered.
MULTI_TENANT = ("common", "organizations", "consumers")


@dataclass
class AppRegistration:
    client_id: str
    tenant: str
    secret: str = ""
    certificate_pem: str = ""  # public certificate for client assertions
    consented: bool = True  # an admin granted the application permissions
    # The application permissions granted (Entra admin center > API permissions).
    permissions: set[str] = field(default_factory=lambda: set(APP_PERMISSIONS_BY_DEFAULT))


@dataclass
class Grant:
    tenant: str
    client_id: str
    user: str = ""  # '' for an app-only token, which may act on any mailbox of its tenant
    expires: float = 0.0
    permissions: frozenset[str] = frozenset()  # Graph permissions: roles, or delegated scp


@dataclass
class IdentityServer:
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    pending_devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    device_poll_seconds: int = 5  # the interval a device-code client is told to poll at
    token_requests: int = 0
    _refresh: dict[str, Grant] = field(default_factory=dict)
    _access: dict[str, Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- set-up, as an admin would in the Entra admin center -----------------------------------

    def register_app(self, tenant: str, *, secret: str = "", certificate_pem: str = "",
                     consented: bool = True,
                     permissions: Iterable[str] = APP_PERMISSIONS_BY_DEFAULT) -> AppRegistration:
        app = AppRegistration(str(uuid.uuid4()), tenant, secret, certificate_pem, consented,
                              set(permissions))
        self.apps[app.client_id] = app
        return app

    def remove_permission(self, client_id: str, permission: str) -> None:
        """An admin removes one of the app's application permissions (e.g.
        "MailboxSettings.Read"). Tokens already issued keep it until they expire, as in Entra;
        here they are revoked at once, the harsher case, as withdraw_consent does."""
        self.apps[client_id].permissions.discard(permission)
        self.revoke_access_tokens()

    def add_permission(self, client_id: str, permission: str) -> None:
        """An admin grants the app another application permission, with admin consent."""
        self.apps[client_id].permissions.add(permission)

    def approve_device(self, user_code: str, user: str) -> bool:
        """The user enters the code on the sign-in page and consents; False for a wrong code."""
        pending = self._pending(user_code)
        if pending is not None:
            pending["user"] = user
        return pending is not None

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in MULTI_TENANT or any(
            app.tenant.lower() == tenant.lower() for app in self.apps.values())

    def _pending(self, user_code: str) -> dict[str, Any] | None:
        wanted = user_code.strip().upper().replace("-", "")
        return next((pending for pending in self.pending_devices.values()
                     if pending["user_code"] == wanted and pending["expires"] > time.time()),
                    None)

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def withdraw_consent(self, client_id: str) -> None:
        """An admin removes the app's admin consent (Entra admin center, Enterprise
        applications, Permissions): a new token is refused with AADSTS65001. Entra lets an
        issued token live out its hour; here it stops at once, the harsher case."""
        self.apps[client_id].consented = False
        self.revoke_access_tokens()

    def grant_consent(self, client_id: str) -> None:
        """The admin grants consent again: the app's next token request succeeds."""
        self.apps[client_id].consented = True

    def grant_for(self, authorization: str | None) -> Grant | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            grant = self._access.get(authorization.removeprefix("Bearer "))
        return grant if grant and grant.expires > time.time() else None

    # -- HTTP ----------------------------------------------------------------------------------

    def openid_configuration(self, tenant: str) -> Response:
        if not self.knows_tenant(tenant):
            return _no_tenant(tenant)
        base = f"{PUBLIC_LOGIN}/{tenant}"
        return json_response(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{PUBLIC_LOGIN}/{tenant}/v2.0",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "EU",
        })

    def instance_discovery(self) -> Response:
        return json_response(200, {
            "tenant_discovery_endpoint":
                f"{PUBLIC_LOGIN}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": "login.microsoftonline.com",
                          "preferred_cache": "login.windows.net",
                          "aliases": ["login.microsoftonline.com", "login.windows.net",
                                      "login.microsoft.com", "sts.windows.net"]}],
        })

    def device_code(self, tenant: str, request: Request) -> Response:
        if not self.knows_tenant(tenant):
            return _no_tenant(tenant)
        form = _form(request)
        if form.get("client_id") not in self.apps:
            return _error(400, "unauthorized_client", "AADSTS700016: Application with "
                          f"identifier '{form.get('client_id')}' was not found in the directory "
                          f"'{tenant}'.")
        code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        self.pending_devices[code] = {"user_code": user_code, "user": "", "tenant": tenant,
                                      "permissions": _graph_permissions(form.get("scope", "")),
                                      "client_id": form["client_id"], "declined": False,
                                      "expires": time.time() + DEVICE_CODE_SECONDS}
        host = request.header("Host")
        url = f"http://{host}/devicelogin" if host else PUBLIC_DEVICE_LOGIN
        return json_response(200, {
            "device_code": code, "user_code": user_code, "verification_uri": url,
            "expires_in": DEVICE_CODE_SECONDS, "interval": self.device_poll_seconds,
            "message": f"To sign in, use a web browser to open the page {url} and enter the "
                       f"code {user_code} to authenticate. (In this sandbox, that page stands "
                       f"in for {PUBLIC_DEVICE_LOGIN}.)",
        })

    def device_login_page(self, request: Request) -> Response:
        """GET /devicelogin: enter the code shown on the device, and who signs in."""
        return _device_page(request.param("code") or "", request.param("user") or "")

    def device_login(self, request: Request, mailboxes: Iterable[str]) -> Response:
        """POST /devicelogin: sign in as a mailbox of the sandbox (or cancel) for that code."""
        form = _form(request)
        user_code, user = form.get("code", ""), form.get("user", "").strip()
        pending = self._pending(user_code)
        if pending is None:
            return _device_page(user_code, user, "That code didn't work. Check the code and try "
                                "again.", status=400)
        if form.get("decision") == "cancel":
            pending["declined"] = True
            return _page("Sign-in cancelled", "<p>You cancelled the sign-in. You may now close "
                         "this window.</p>")
        known = {mailbox.lower(): mailbox for mailbox in mailboxes}
        if user.lower() not in known:
            return _device_page(user_code, user, "AADSTS50034: This username may be incorrect: "
                                f"there is no account {user!r} in the sandbox's tenant.",
                                status=400)
        pending["user"] = known[user.lower()]
        return _page("Signed in", f"<p>You have signed in as {html.escape(pending['user'])} "
                     "on your device. You may now close this window.</p>")

    def token(self, tenant: str, request: Request) -> Response:
        with self._lock:
            self.token_requests += 1
        if not self.knows_tenant(tenant):
            return _no_tenant(tenant)
        form = _form(request)
        grant_type = form.get("grant_type", "")
        if grant_type == "client_credentials":
            return self._client_credentials(tenant, form)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_grant(form)
        if grant_type == "refresh_token":
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None:
                return _error(400, "invalid_grant", "AADSTS70000: The provided value for the "
                              "'refresh_token' is not valid; the user must sign in again.")
            return self._user_tokens(grant)
        return _error(400, "unsupported_grant_type", f"AADSTS70003: {grant_type!r} unsupported.")

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> Response:
        app = self.apps.get(form.get("client_id", ""))
        if app is None or app.tenant != tenant:
            return _error(400, "unauthorized_client",
                          f"AADSTS700016: Application with identifier '{form.get('client_id')}' "
                          f"was not found in the directory '{tenant}'.")
        if not self._authenticated(app, form):
            return _error(401, "invalid_client",
                          "AADSTS7000215: Invalid client secret provided.")
        if not form.get("scope", "").endswith("/.default"):
            return _error(400, "invalid_scope", "AADSTS1002012: The provided value for scope "
                          f"{form.get('scope')} is not valid. Client credential flows must have "
                          "a scope value with /.default suffixed to the resource identifier.")
        if not app.consented:
            return _error(400, "invalid_grant", "AADSTS65001: The user or administrator has not "
                          "consented to use the application.")
        token = self._issue(Grant(tenant, app.client_id,
                                  permissions=frozenset(app.permissions)))
        return json_response(200, {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS,
                                   "ext_expires_in": ACCESS_TOKEN_SECONDS, "access_token": token})

    def _authenticated(self, app: AppRegistration, form: dict[str, str]) -> bool:
        if app.secret and secrets.compare_digest(form.get("client_secret", ""), app.secret):
            return True
        assertion = form.get("client_assertion")
        if not (app.certificate_pem and assertion):
            return False
        try:
            claims = jwt.decode(assertion, _public_key(app.certificate_pem), algorithms=["RS256",
                                "PS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == claims.get("sub") == app.client_id)

    def _device_grant(self, form: dict[str, str]) -> Response:
        pending = self.pending_devices.get(form.get("device_code", ""))
        if pending is None or pending["expires"] < time.time():
            return _error(400, "expired_token", "AADSTS70019: Verification code expired.")
        if pending["declined"]:
            del self.pending_devices[form["device_code"]]
            return _error(400, "authorization_declined", "AADSTS70000: The user declined the "
                          "sign-in request.")
        if not pending["user"]:
            return _error(400, "authorization_pending",
                          "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.")
        del self.pending_devices[form["device_code"]]
        return self._user_tokens(Grant(pending["tenant"], pending["client_id"], pending["user"],
                                       permissions=pending["permissions"]))

    def _user_tokens(self, grant: Grant) -> Response:
        refresh = "0.A" + secrets.token_urlsafe(48)
        self._refresh[refresh] = grant
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, grant.user))
        tenant_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, grant.tenant))
        claims = {"aud": grant.client_id, "iss": f"{PUBLIC_LOGIN}/{tenant_id}/v2.0",
                  "iat": int(time.time()), "exp": int(time.time()) + 3600, "oid": oid,
                  "preferred_username": grant.user, "sub": oid, "tid": tenant_id, "ver": "2.0"}
        client_info = _b64(json.dumps({"uid": oid, "utid": tenant_id}))
        return json_response(200, {
            "token_type": "Bearer", "scope": "https://graph.microsoft.com/Calendars.ReadWrite "
            "https://graph.microsoft.com/User.Read", "expires_in": ACCESS_TOKEN_SECONDS,
            "ext_expires_in": ACCESS_TOKEN_SECONDS, "access_token": self._issue(grant),
            "refresh_token": refresh, "id_token": _unsigned_jwt(claims),
            "client_info": client_info,
        })

    def _issue(self, grant: Grant) -> str:
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(48)
        with self._lock:
            self._access[token] = Grant(grant.tenant, grant.client_id, grant.user,
                                        time.time() + ACCESS_TOKEN_SECONDS, grant.permissions)
        return token


class LoginRedirect(requests.Session):
    """A requests session that sends msal's calls for login.microsoftonline.com to a local URL."""

    def __init__(self, local_base: str) -> None:
        super().__init__()
        self.local_base = local_base.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        return super().request(method, text.replace(PUBLIC_LOGIN, self.local_base, 1),
                               *args, **kwargs)


def _graph_permissions(scope: str) -> frozenset[str]:
    """The Graph permissions a delegated scope parameter names ("Calendars.ReadWrite" or
    "https://graph.microsoft.com/Calendars.ReadWrite"); OpenID scopes are not Graph's."""
    named = (part.removeprefix(GRAPH_RESOURCE) for part in scope.split())
    return frozenset(name for name in named
                     if name and name not in ("openid", "profile", "offline_access", "email"))


def _form(request: Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.body.decode()).items()}


def _error(status: int, error: str, description: str) -> Response:
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return json_response(status, {
        "error": error, "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\n"
        f"Correlation ID: {uuid.uuid4()}\r\nTimestamp: {now}",
        "error_codes": [int(description[6:description.index(":")])] if description.startswith(
            "AADSTS") else [], "timestamp": now, "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    })


def _no_tenant(tenant: str) -> Response:
    return _error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found. Check to "
                  "make sure you have the correct tenant ID and are signing into the correct "
                  "cloud.")


def _device_page(user_code: str, user: str, error: str = "", status: int = 200) -> Response:
    warning = f'<p role="alert"><strong>{html.escape(error)}</strong></p>' if error else ""
    return _page("Enter code", f"""{warning}<p>Enter the code displayed on your device, and the
address of the sandbox mailbox to sign in as.</p>
<form method="post" action="/devicelogin">
<p><label>Code <input name="code" value="{html.escape(user_code)}" required
autocomplete="off"></label></p>
<p><label>Email <input type="email" name="user" value="{html.escape(user)}" required></label></p>
<p><button name="decision" value="allow">Sign in</button>
<button name="decision" value="cancel" formnovalidate>Cancel</button></p>
</form>""", status)


def _page(title: str, body: str, status: int = 200) -> Response:
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title} - '
            f"Microsoft sign-in (sandbox)</title></head><body>\n<h1>{title}</h1>\n{body}\n"
            "</body></html>\n")
    return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8",
                                            "Cache-Control": "no-store"})


def _public_key(certificate_pem: str) -> Any:
    from cryptography.x509 import load_pem_x509_certificate

    return load_pem_x509_certificate(certificate_pem.encode()).public_key()


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "none"}))
    return f"{header}.{_b64(json.dumps(claims))}."


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
