"""Connecting an account (`assistant auth`): sign in, check with one harmless call, keep it.

Each connect_* signs in the way the admin chose, then makes one read-only call as the user
(Google: events.list with maxResults=1 on their primary calendar; Graph: a one-minute
calendarView delta of their calendar, the call the service starts every sync with), so success
means the service will work. Only then is anything stored: in a secrets folder outside any git
working tree, the folder 0700 and each file 0600. A failure is a SignInCheckFailed naming the
problem and what to do, in the provider's console words. Nothing here prints or logs a secret
or a token; a client secret stays in its environment variable.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msal

from assistant.config import Config, Microsoft
from assistant.errors import AssistantError, ConfigError, InputError, ProviderError
from assistant.retry import RetryPolicy
from assistant.secret_files import write_owner_only
from assistant.wiring import LOOPBACK, local_login
from integrations import google_auth, microsoft_auth
from integrations.google_api import Call, GoogleApi
from integrations.graph_api import GraphApi, GraphRequest
from integrations.microsoft_auth import GraphSignIn

APP_FOLDER = "meeting-format-assistant"
SECRETS_ENV = "ASSISTANT_SECRETS_DIR"
QUICK = RetryPolicy(attempts=3, max_seconds=4.0)  # an admin is waiting: fail in seconds
_SIGN_INS = {"google": ("service_account_key_file", "token_file"),
             "microsoft": ("client_secret_env", "certificate_file", "token_cache_file")}


class SignInCheckFailed(AssistantError):
    """The sign-in or its check failed; `problem` names it for scripts, the message explains."""

    def __init__(self, provider: str, method: str, user: str, problem: str,
                 explanation: str) -> None:
        self.provider, self.method, self.user, self.problem = provider, method, user, problem
        super().__init__(explanation)


@dataclass(frozen=True)
class Connected:
    """A checked sign-in: what was checked, what was stored, and the config that uses it."""

    provider: str  # "google" or "microsoft", also the config section
    method: str  # service_account, installed_app, client_secret, certificate, device_code
    checked_user: str
    checked: str  # the check, in words
    stored: Path | None
    settings: dict[str, Any]  # the config keys of the section, as they should read
    notes: tuple[str, ...] = ()

    def config_lines(self, keys: list[str] | None = None) -> str:
        """The section as TOML lines for the config file (only `keys`, when given)."""
        lines = [f"[{self.provider}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in self.settings.items()
                  if keys is None or key in keys]
        return "\n".join(lines) + "\n"

    def compared_with(self, config: Config | None) -> ConfigStatus:
        """The keys the config must change to read like this, and the sign-in keys it must lose."""
        if config is None:
            return ConfigStatus(change=list(self.settings))
        section = getattr(config, self.provider)
        change = [key for key, value in self.settings.items()
                  if not _same(getattr(section, key), value)]
        remove = [key for key in _SIGN_INS[self.provider]
                  if key not in self.settings and getattr(section, key) is not None]
        return ConfigStatus(change, remove)


@dataclass(frozen=True)
class ConfigStatus:
    change: list[str]
    remove: list[str] = field(default_factory=list)

    @property
    def already(self) -> bool:
        return not (self.change or self.remove)


# -- the secrets folder ------------------------------------------------------------------------


def secrets_folder(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--secrets-dir, else $ASSISTANT_SECRETS_DIR, else $XDG_CONFIG_HOME (or ~/.config)/..."""
    if explicit is not None:
        return explicit.expanduser()
    if environ.get(SECRETS_ENV):
        return Path(environ[SECRETS_ENV]).expanduser()
    base = environ.get("XDG_CONFIG_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".config") / APP_FOLDER


def prepare_secrets_folder(folder: Path) -> Path:
    """The folder made (or tightened to) 0700; InputError if it is in a git working tree or
    belongs to someone else."""
    folder = folder.expanduser().resolve()
    repository = git_work_tree_of(folder)
    if repository is not None:
        raise InputError(f"will not keep secrets in {folder}: it is inside the git working tree "
                         f"{repository}, where a commit could publish them; choose a folder "
                         f"outside it with --secrets-dir or ${SECRETS_ENV}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = folder.stat()
    if status.st_uid != os.getuid():
        raise InputError(f"will not keep secrets in {folder}: it belongs to another user")
    if stat.S_IMODE(status.st_mode) != 0o700:
        folder.chmod(0o700)
    return folder


def git_work_tree_of(path: Path) -> Path | None:
    """The git working tree path is in (itself or a parent holds .git), or None."""
    path = path.expanduser().absolute()
    return next((p for p in (path, *path.parents) if (p / ".git").exists()), None)


# -- Google ------------------------------------------------------------------------------------


def connect_google_service_account(key_file: Path, user: str, *, api_endpoint: str | None,
                                   secrets_dir: Path) -> Connected:
    """Check the key acts for user (domain-wide delegation), then keep a copy of it."""
    key = google_auth.read_service_account_key(key_file)
    _sandbox_needs_endpoint(key_file, key["token_uri"], api_endpoint)
    folder = prepare_secrets_folder(secrets_dir)
    sign_in = google_auth.ServiceAccountSignIn(key)  # the download: copied owner-only below
    _list_primary(sign_in, user, api_endpoint, "service_account", key)
    stored = folder / _file_name(f"google-{key['client_email']}.json")
    notes: tuple[str, ...] = ()
    if key_file.resolve() != stored:
        write_owner_only(stored, key_file.read_bytes())
        notes = (f"The copy is the one to use; delete {key_file}"
                 + (", which is inside a git working tree." if git_work_tree_of(
                     key_file.resolve()) else ", or keep it somewhere safe."),)
    return Connected(
        "google", "service_account", user,
        f"the service account {key['client_email']} acted for {user} (domain-wide delegation) "
        f"and listed their primary calendar (events.list, one event at most)", stored,
        {"service_account_key_file": str(stored)} | _endpoint("api_endpoint", api_endpoint),
        notes)


def connect_google_installed_app(
    client_secrets: Path, user: str, *, api_endpoint: str | None, secrets_dir: Path,
    open_browser: bool = True, show: Callable[[str, bool], None] = lambda url, opening: None,
) -> Connected:
    """Google's consent flow for user, the check, then the refresh token kept owner-only."""
    client = google_auth.read_client_secrets(client_secrets)
    _sandbox_needs_endpoint(client_secrets, client["installed"]["token_uri"], api_endpoint)
    folder = prepare_secrets_folder(secrets_dir)
    try:
        credentials = google_auth.sign_in_installed_app(
            client_secrets, user, open_browser=open_browser, show=show)
    except ProviderError as err:
        raise _google_failed(err, "installed_app", user, {}) from err
    listing = _list_primary(google_auth.HeldSignIn(credentials, user), user, api_endpoint,
                            "installed_app", {})
    owner = str(listing.get("summary", ""))
    if "@" in owner and owner.lower() != user.lower():
        raise SignInCheckFailed("google", "installed_app", user, "wrong_user",
                                f"The browser signed in as {owner}, not {user}: run this "
                                f"again and choose {user} on Google's page.")
    stored = folder / _file_name(f"google-token-{user}.json")
    google_auth.store_installed_app_token(credentials, stored, user)
    return Connected(
        "google", "installed_app", user,
        f"{user} signed in and allowed calendar events; their primary calendar was listed "
        f"(events.list, one event at most)", stored,
        {"token_file": str(stored), "calendars": [user]}
        | _endpoint("api_endpoint", api_endpoint))


def _list_primary(sign_in: google_auth.SignIn, user: str, api_endpoint: str | None,
                  method: str, key: dict[str, Any]) -> Any:
    api = GoogleApi(google_auth.TokenSource(sign_in), root_url=api_endpoint, retry=QUICK)
    try:
        return api.execute(Call(user, lambda collections: collections.events.list(
            calendarId="primary", maxResults=1)))
    except ProviderError as err:
        raise _google_failed(err, method, user, key) from err
    finally:
        api.close()


def _sandbox_needs_endpoint(path: Path, token_uri: str, api_endpoint: str | None) -> None:
    """A file from the local sandbox signs in there; its calendars are there too."""
    if api_endpoint is None and urlsplit(token_uri).hostname in LOOPBACK:
        raise InputError(f"{path} signs in at the local sandbox ({token_uri}), but the Calendar "
                         "API would be Google's: give --config with the sandbox's config (its "
                         "google.api_endpoint) or --api-endpoint")


def _google_failed(err: ProviderError, method: str, user: str,
                   key: dict[str, Any]) -> SignInCheckFailed:
    problem, words = google_auth.explain(err, method=method, user=user, key=key)
    return SignInCheckFailed("google", method, user, problem, words)


# -- Microsoft ---------------------------------------------------------------------------------


def connect_microsoft_app(app: Microsoft, user: str, *, secrets_dir: Path,
                          secret_env: str | None = None,
                          certificate: Path | None = None) -> Connected:
    """App-only sign-in with a secret (left in its variable) or a certificate (copied)."""
    method = "certificate" if certificate is not None else "client_secret"
    secret = None
    if secret_env is not None:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise InputError(f"${secret_env} is not set: put the client secret's Value (Entra "
                             "admin center > App registrations > the app > Certificates & "
                             f"secrets) in it, e.g. `read -rs {secret_env}; export {secret_env}`")
    if certificate is not None:
        try:
            microsoft_auth.certificate_credential(certificate)  # a readable key and certificate
        except ConfigError as err:
            raise InputError(f"{certificate}: {'; '.join(err.problems)}") from err
    folder = prepare_secrets_folder(secrets_dir) if certificate is not None else None
    settings, login = local_login(app)
    try:
        sign_in = microsoft_auth.app_sign_in(
            app.tenant, app.client_id, authority=settings.authority,
            graph_endpoint=app.graph_endpoint, secret=secret, certificate_file=certificate,
            http_client=login)
        _read_calendar(sign_in, f"/users/{quote(user)}", user, app, method, secret_env or "")
    finally:
        if login is not None:
            login.close()
    keys: dict[str, Any] = {"tenant": app.tenant, "client_id": app.client_id}
    stored = None
    if certificate is not None and folder is not None:
        stored = folder / _file_name(f"microsoft-{app.client_id}.pem")
        if certificate.resolve() != stored:
            write_owner_only(stored, certificate.read_bytes())
        keys["certificate_file"] = str(stored)
    else:
        keys["client_secret_env"] = secret_env
    notes = () if certificate is not None else (
        f"The secret is not stored: the service reads it from ${secret_env}, so set that in "
        "its environment too.",)
    return Connected("microsoft", method, user,
                     f"the app {app.client_id} signed in to tenant {app.tenant} (app-only) and "
                     f"read {user}'s calendar (calendarView delta, one minute)", stored,
                     keys | _endpoints(app), notes)


def connect_microsoft_device_code(app: Microsoft, *, secrets_dir: Path,
                                  show: Callable[[str], None],
                                  check_user: str | None = None) -> Connected:
    """One user's device-code sign-in, the check on /me, then msal's cache kept owner-only."""
    folder = prepare_secrets_folder(secrets_dir)
    settings, login = local_login(app)
    cache = msal.SerializableTokenCache()
    user = check_user or ""
    try:
        try:
            public = microsoft_auth.make_app(lambda: microsoft_auth.device_code_app(
                app.tenant, app.client_id, cache, authority=settings.authority,
                http_client=login))
            user, signed_in = microsoft_auth.run_device_code(public, show)
        except ProviderError as err:
            raise _microsoft_failed(err, "device_code", user, app) from err
        if check_user and user.lower() != check_user.lower():
            raise SignInCheckFailed("microsoft", "device_code", check_user, "wrong_user",
                                    f"The code was used to sign in as {user}, not {check_user}:"
                                    f" run this again and sign in as {check_user}.")
        _read_calendar(signed_in, "/me", user, app, "device_code")
    finally:
        if login is not None:
            login.close()
    stored = folder / _file_name(f"microsoft-token-cache-{user}.json")
    write_owner_only(stored, cache.serialize().encode())
    return Connected("microsoft", "device_code", user,
                     f"{user} signed in with a device code to tenant {app.tenant} and their "
                     f"calendar was read (/me/calendarView delta, one minute)", stored,
                     {"tenant": app.tenant, "client_id": app.client_id,
                      "token_cache_file": str(stored), "calendars": [user]} | _endpoints(app))


def _read_calendar(sign_in: GraphSignIn, path: str, user: str, app: Microsoft, method: str,
                   secret_env: str = "") -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    window = urlencode({"startDateTime": _iso(now), "endDateTime": _iso(now + timedelta(
        minutes=1))})
    api = GraphApi(sign_in, graph_endpoint=app.graph_endpoint, retry=QUICK)
    try:
        api.call(GraphRequest("GET", f"{path}/calendarView/delta?{window}", user,
                              headers={"Prefer": "odata.maxpagesize=1"}))
    except ProviderError as err:
        raise _microsoft_failed(err, method, user, app, secret_env) from err
    finally:
        api.close()


def _microsoft_failed(err: ProviderError, method: str, user: str, app: Microsoft,
                      secret_env: str = "") -> SignInCheckFailed:
    problem, words = microsoft_auth.explain(err, method=method, tenant=app.tenant,
                                            client_id=app.client_id, user=user,
                                            secret_env=secret_env)
    return SignInCheckFailed("microsoft", method, user, problem, words)


# -- small things ------------------------------------------------------------------------------


def _endpoints(app: Microsoft) -> dict[str, str]:
    defaults = Microsoft()
    return (_endpoint("authority", app.authority, defaults.authority)
            | _endpoint("graph_endpoint", app.graph_endpoint, defaults.graph_endpoint))


def _endpoint(key: str, value: str | None, default: str | None = None) -> dict[str, str]:
    return {key: value} if value and value != default else {}


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return sorted(str(v).lower() for v in current or []) == sorted(v.lower() for v in wanted)
    return current is not None and str(current) == str(wanted)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", name)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are TOML's
