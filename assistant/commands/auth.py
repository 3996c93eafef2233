"""`assistant auth google|microsoft`: connect an account, check it with one harmless call, keep it.

Options and words only; signing in, the checks, their explanations and where secrets are kept
are in assistant.connect (imported when a command runs: it brings the provider libraries).
Prompts (a URL to open, a code to enter) go to stderr, the result to stdout (as JSON with
--json), so a script can read the one while a person follows the other.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import click
from pydantic import ValidationError

from assistant.commands.common import config_option, config_path_or_default, json_option, print_json
from assistant.config import Config, Microsoft, load_config
from assistant.errors import AssistantError, InputError
from assistant.validation import describe_validation_error

if TYPE_CHECKING:
    from assistant.connect import Connected

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


def secrets_dir_option(function: Any) -> Any:
    return click.option(
        "--secrets-dir", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
        help="Where secrets are kept, owner-only (default: $ASSISTANT_SECRETS_DIR, else "
             "$XDG_CONFIG_HOME/meeting-format-assistant, else "
             "~/.config/meeting-format-assistant); never inside a git working tree.")(function)


@click.group()
def auth() -> None:
    """Connect a Google or Microsoft 365 account, check it works, and keep its secret safe.

    Each command signs in, makes one read-only call as the user you name, stores what the
    service needs (0600, in a 0700 folder outside any git repository) and prints the config
    lines that use it. A failure says what to fix, and where.
    """


@auth.command()
@click.option("--service-account", "key_file", type=_FILE, metavar="KEY.json",
              help="A service-account key with domain-wide delegation (every user of a "
                   "Workspace domain).")
@click.option("--client-secrets", "client_file", type=_FILE, metavar="CLIENT.json",
              help="A 'Desktop app' OAuth client, for one user's own sign-in in a browser.")
@click.option("--check-user", "--user", "user", metavar="ADDRESS",
              help="Whose calendar to check (the one who signs in, with --client-secrets). "
                   "Default with a key: the first of [google] calendars.")
@click.option("--no-browser", is_flag=True,
              help="Print the sign-in page's address instead of opening a browser.")
@click.option("--api-endpoint", metavar="URL",
              help="The Calendar API's root (default: google.api_endpoint, else Google's).")
@config_option
@secrets_dir_option
@json_option
def google(key_file: Path | None, client_file: Path | None, user: str | None, no_browser: bool,
           api_endpoint: str | None, config_path: Path | None, secrets_dir: Path | None,
           as_json: bool) -> None:
    """Connect Google Calendar with a service-account key or one user's sign-in.

    \b
      assistant auth google --service-account KEY.json --check-user alice@example.com
      assistant auth google --client-secrets CLIENT.json --user alice@example.com
    """
    path, config = _optional_config(config_path)
    if key_file is None and client_file is None and config is not None:
        key_file = config.google.service_account_key_file  # check the key the config uses
    if (key_file is None) == (client_file is None):
        raise click.UsageError("give --service-account KEY.json or --client-secrets CLIENT.json"
                               " (or a config whose google.service_account_key_file to check)")
    method = "service_account" if key_file else "installed_app"
    calendars = config.google.calendars if config and key_file else []
    user = _address(user or (calendars[0] if calendars else None),
                    "--check-user" if key_file else "--user")
    endpoint = api_endpoint or (config.google.api_endpoint if config else None)
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # The client warns of a refused check in its own words; ours explain it below.
        logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)
    from assistant import connect

    folder = connect.secrets_folder(secrets_dir)
    if key_file is not None:
        _run("google", method, user, lambda: connect.connect_google_service_account(
            key_file, user, api_endpoint=endpoint, secrets_dir=folder), path, config, as_json)
    elif client_file is not None:
        _run("google", method, user, lambda: connect.connect_google_installed_app(
            client_file, user, api_endpoint=endpoint, secrets_dir=folder,
            open_browser=not no_browser,
            show=lambda url, opening: _show_consent(url, opening, user)), path, config, as_json)


@auth.command()
@click.option("--tenant", metavar="TENANT", help="Tenant id or domain (default: the config's).")
@click.option("--client-id", metavar="ID",
              help="The app registration's application (client) id (default: the config's).")
@click.option("--secret-env", metavar="VAR",
              help="App-only: the environment variable holding the client secret (never "
                   "stored or shown).")
@click.option("--certificate", type=_FILE, metavar="PEM",
              help="App-only: a PEM with the app certificate's private key and certificate "
                   "(copied owner-only).")
@click.option("--device-code", is_flag=True, help="One user signs in with a device code.")
@click.option("--check-user", "user", metavar="ADDRESS",
              help="The mailbox to check (app-only default: the first of [microsoft] "
                   "calendars); with --device-code, who must sign in.")
@click.option("--authority", metavar="URL", help="Sign-in authority (default: the config's, "
                                                 "else https://login.microsoftonline.com).")
@click.option("--graph-endpoint", metavar="URL",
              help="Graph's root (default: the config's, else https://graph.microsoft.com/v1.0).")
@config_option
@secrets_dir_option
@json_option
def microsoft(tenant: str | None, client_id: str | None, secret_env: str | None,
              certificate: Path | None, device_code: bool, user: str | None,
              authority: str | None, graph_endpoint: str | None, config_path: Path | None,
              secrets_dir: Path | None, as_json: bool) -> None:
    """Connect Microsoft 365 with an app registration (app-only) or one user's device code.

    \b
      assistant auth microsoft --tenant T --client-id ID --secret-env VAR --check-user ADDRESS
      assistant auth microsoft --tenant T --client-id ID --certificate PEM --check-user ADDRESS
      assistant auth microsoft --tenant T --client-id ID --device-code

    With --config, every option not given is read from its [microsoft] section.
    """
    path, config = _optional_config(config_path)
    configured = config.microsoft if config else Microsoft()
    chosen = [name for name, given in (("--secret-env", secret_env), ("--certificate",
              certificate), ("--device-code", device_code)) if given]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one sign-in, not {' and '.join(chosen)}")
    if not chosen:
        secret_env, certificate = configured.client_secret_env, configured.certificate_file
        device_code = configured.token_cache_file is not None
        if not (secret_env or certificate or device_code):
            raise click.UsageError("choose --secret-env VAR, --certificate PEM or --device-code")
    app = _microsoft_app(tenant or configured.tenant, client_id or configured.client_id,
                         authority or configured.authority,
                         graph_endpoint or configured.graph_endpoint)
    from assistant import connect

    folder = connect.secrets_folder(secrets_dir)
    if device_code:
        checked = _address(user, "--check-user") if user else None
        _run("microsoft", "device_code", checked or "", lambda: (
            connect.connect_microsoft_device_code(app, secrets_dir=folder, check_user=checked,
                                                  show=_show_device_code)), path, config, as_json)
        return
    calendars = configured.calendars
    mailbox = _address(user or (calendars[0] if calendars else None), "--check-user")
    method = "certificate" if certificate else "client_secret"
    _run("microsoft", method, mailbox, lambda: connect.connect_microsoft_app(
        app, mailbox, secrets_dir=folder, secret_env=None if certificate else secret_env,
        certificate=certificate), path, config, as_json)


def _run(provider: str, method: str, user: str, action: Callable[[], Connected],
         path: Path | None, config: Config | None, as_json: bool) -> None:
    try:
        connected = action()
    except AssistantError as err:
        if not as_json:
            raise
        print_json({"ok": False, "provider": provider, "method": method, "checked_user": user,
                    "problem": getattr(err, "problem", "input"), "error": str(err)})
        sys.exit(1)
    status = connected.compared_with(config)
    if as_json:
        print_json({"ok": True, "provider": provider, "method": connected.method,
                    "checked_user": connected.checked_user, "checked": connected.checked,
                    "stored": str(connected.stored) if connected.stored else None,
                    "config": {provider: connected.settings},
                    "config_file": str(path) if path else None,
                    "config_already_set": status.already, "config_change": status.change,
                    "config_remove": status.remove,
                    "notes": list(connected.notes)})
        return
    click.echo(f"Connected. Checked: {connected.checked}.")
    if connected.stored is not None:
        click.echo(f"Stored: {connected.stored} (readable by you only).")
    for note in connected.notes:
        click.echo(note)
    if status.already:
        click.echo(f"{path} already reads like this; nothing to change.")
        return
    where = f"the [{provider}] section of {path}" if path else "your config file"
    remove = f" and remove {' and '.join(status.remove)}" if status.remove else ""
    if status.change:
        click.echo(f"\nSet these in {where}{remove}:\n")
        click.echo(connected.config_lines(status.change), nl=False)
    else:
        click.echo(f"\nIn {where}, remove {' and '.join(status.remove)}.")


def _optional_config(path: Path | None) -> tuple[Path | None, Config | None]:
    """The config named (or $ASSISTANT_CONFIG, or ./assistant.toml), or none at all."""
    try:
        found = config_path_or_default(path)
    except InputError:
        return None, None
    return found, load_config(found, signing_in=True)


def _microsoft_app(tenant: str, client_id: str, authority: str, graph_endpoint: str) -> Microsoft:
    if not tenant or not client_id:
        missing = "--tenant" if not tenant else "--client-id"
        raise click.UsageError(f"{missing} is needed (or [microsoft] in the config)")
    try:
        return Microsoft.model_validate({"tenant": tenant, "client_id": client_id,
                                         "authority": authority,
                                         "graph_endpoint": graph_endpoint})
    except ValidationError as err:
        raise InputError("; ".join(describe_validation_error(err, Microsoft))) from err


def _address(value: str | None, option: str) -> str:
    if not value:
        raise click.UsageError(f"{option} ADDRESS is needed: whose calendar to check")
    value = value.strip()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
        raise click.UsageError(f"{option}: {value!r} is not an email address")
    return value


def _show_consent(url: str, opening: bool, user: str) -> None:
    redirect = parse_qs(urlsplit(url).query).get("redirect_uri", [""])[0]
    port = urlsplit(redirect).port
    if opening:
        click.echo(f"Opening a browser: sign in as {user} and allow access. If nothing opens, "
                   f"visit\n  {url}", err=True)
    else:
        click.echo(f"Open this page in a browser on this machine, sign in as {user} and allow "
                   f"access:\n  {url}", err=True)
    if port:
        click.echo(f"(From another machine, forward the port first: ssh -L {port}:localhost:"
                   f"{port} this-host.)", err=True)
    click.echo("Waiting for the browser to come back...", err=True)


def _show_device_code(message: str) -> None:
    click.echo(message, err=True)
    click.echo("Waiting for the sign-in...", err=True)
