"""`assistant auth google|microsoft` as a new admin runs them against the sandbox's emulators.

Every check goes through the real client libraries (google-api-python-client, google-auth,
google-auth-oauthlib, msal) to the emulators; a person's part (Google's consent page, the
device-code page) is played over HTTP, as a browser would.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import tomllib
import webbrowser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from click.testing import CliRunner

from assistant.cli import cli
from assistant.config import load_config
from assistant.connect import git_work_tree_of, secrets_folder
from assistant.errors import ConfigError
from integrations.sandbox.environment import GRAPH_SECRET_ENV, SandboxEnvironment, to_toml

ALICE, BOB = "alice@example.com", "bob@example.com"  # Alice on Google, Bob on Outlook
SERVICE_ACCOUNT = "assistant@meeting-format-sandbox.iam.gserviceaccount.com"


@pytest.fixture()
def sandbox(tmp_path, monkeypatch):
    environment = SandboxEnvironment(tmp_path / "sandbox", google_users=[ALICE],
                                     microsoft_users=[BOB]).start()
    for name, value in environment.environ.items():
        monkeypatch.setenv(name, value)
    environment.graph.identity.device_poll_seconds = 1  # msal waits this long between polls
    yield environment
    environment.stop()


@pytest.fixture()
def secrets(tmp_path, monkeypatch) -> Path:
    """The secrets folder, through the environment variable an admin would set."""
    folder = tmp_path / "home" / "secrets"
    monkeypatch.setenv("ASSISTANT_SECRETS_DIR", str(folder))
    return folder


def write_config(sandbox, tmp_path, *, google=None, microsoft=None, drop=()) -> Path:
    """The sandbox's config with some keys replaced or dropped, as assistant.toml."""
    data = sandbox.config(f"sqlite:///{tmp_path / 'assistant.sqlite3'}")
    for section, key in drop:
        data[section].pop(key)
    data["google"] |= google or {}
    data["microsoft"] |= microsoft or {}
    path = tmp_path / "assistant.toml"
    path.write_text(to_toml(data))
    return path


def auth(*args: str):
    return CliRunner().invoke(cli, ["auth", *args], catch_exceptions=False)


def printed_config(output: str) -> dict:
    """The config lines the command printed, read as TOML."""
    return tomllib.loads(output.split(":\n\n", 1)[1])


def with_printed_lines(config_path: Path, output: str, *remove: str) -> Path:
    """The config file edited as the command said: its lines set, the named keys removed."""
    data = tomllib.loads(config_path.read_text())
    for section, values in printed_config(output).items():
        for key in remove:
            data[section].pop(key, None)
        data[section] |= values
    config_path.write_text(to_toml(data))
    return config_path


def owner_only(path: Path) -> bool:
    return (stat.S_IMODE(path.stat().st_mode) == 0o600
            and stat.S_IMODE(path.parent.stat().st_mode) == 0o700)


def run_once(config_path: Path) -> None:
    """`assistant run --once` on the config: the sign-in it names must work for a real cycle."""
    result = CliRunner().invoke(cli, ["run", "--once", "--config", str(config_path)])
    assert result.exit_code == 0, result.output


# -- Google: a service-account key with domain-wide delegation ---------------------------------


def test_a_delegated_key_is_checked_copied_owner_only_and_its_config_lines_work(
        sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path)
    key = sandbox.folder / "google-service-account.json"
    result = auth("google", "--config", str(config), "--service-account", str(key),
                  "--check-user", ALICE)
    assert result.exit_code == 0, result.output
    stored = secrets / f"google-{SERVICE_ACCOUNT}.json"
    assert owner_only(stored) and stored.read_bytes() == key.read_bytes()
    assert f"acted for {ALICE} (domain-wide delegation)" in result.output
    assert f"Set these in the [google] section of {config}:" in result.output
    assert printed_config(result.output) == {"google": {"service_account_key_file": str(stored)}}
    assert sandbox.google.calls["GET /calendar/v3/calendars/{cal}/events"] == 1  # one call
    key.unlink()  # as the command suggests: the copy is the one in use now
    run_once(with_printed_lines(config, result.output))
    assert load_config(config).google.service_account_key_file == stored


def test_the_key_a_config_already_names_is_checked_without_naming_it_again(
        sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path)
    result = auth("google", "--config", str(config), "--check-user", ALICE)
    assert result.exit_code == 0, result.output
    assert f"acted for {ALICE} (domain-wide delegation)" in result.output


def test_a_config_listing_calendars_before_any_sign_in_can_be_signed_in(
        sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path, drop=[("google", "service_account_key_file")])
    with pytest.raises(ConfigError, match="Google has no sign-in"):
        load_config(config)  # what `run` says, pointing at `assistant auth google`
    key = sandbox.folder / "google-service-account.json"
    result = auth("google", "--config", str(config), "--service-account", str(key),
                  "--check-user", ALICE)
    assert result.exit_code == 0, result.output
    run_once(with_printed_lines(config, result.output))


def test_a_key_delegated_for_another_domain_is_explained_and_nothing_is_stored(
        sandbox, tmp_path, secrets):
    key = tmp_path / "other-key.json"
    info = sandbox.google.service_account_key("other@project.iam.gserviceaccount.com",
                                              "other.example")
    key.write_text(json.dumps(info))
    result = auth("google", "--api-endpoint", sandbox.google.url, "--service-account",
                  str(key), "--check-user", ALICE)
    assert result.exit_code == 1
    assert "domain-wide delegation is not granted for example.com" in result.output
    assert f"client ID {info['client_id']}, OAuth scope " \
           "https://www.googleapis.com/auth/calendar.events" in result.output
    assert "Manage Domain Wide Delegation" in result.output
    assert list(secrets.iterdir()) == []


def test_an_unknown_user_is_explained_as_json(sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path)
    result = auth("google", "--config", str(config), "--json", "--service-account",
                  str(sandbox.folder / "google-service-account.json"), "--check-user",
                  "nobody@example.com")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["problem"] == "calendar_not_found"
    assert "Google has no calendar for nobody@example.com" in answer["error"]
    assert answer["provider"] == "google" and answer["method"] == "service_account"


def test_a_revoked_key_and_a_wrong_file_are_explained(sandbox, tmp_path, secrets):
    key = json.loads((sandbox.folder / "google-service-account.json").read_text())
    sandbox.google.oauth.service_accounts.pop(key["client_email"])  # the key was deleted
    result = auth("google", "--api-endpoint", sandbox.google.url, "--service-account",
                  str(sandbox.folder / "google-service-account.json"), "--check-user", ALICE)
    assert result.exit_code == 1 and "add a new JSON key" in result.output
    client = sandbox.google_oauth_client_file()
    result = auth("google", "--service-account", str(client), "--check-user", ALICE)
    assert result.exit_code == 1 and "is an OAuth client file" in result.output


def test_secrets_are_never_kept_inside_a_git_working_tree(sandbox, tmp_path):
    repository = tmp_path / "checkout"
    (repository / ".git").mkdir(parents=True)
    result = auth("google", "--api-endpoint", sandbox.google.url, "--secrets-dir",
                  str(repository / "secrets"), "--service-account",
                  str(sandbox.folder / "google-service-account.json"), "--check-user", ALICE)
    assert result.exit_code == 1
    assert f"it is inside the git working tree {repository}" in result.output
    assert not (repository / "secrets").exists()
    assert sandbox.google.oauth.token_requests == 0  # refused before signing in at all


def test_the_secrets_folder_defaults_to_the_users_config_folder(tmp_path):
    assert secrets_folder(None, {"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "meeting-format-assistant")
    assert secrets_folder(None, {"ASSISTANT_SECRETS_DIR": "/srv/s", "XDG_CONFIG_HOME": "/x"}) == (
        Path("/srv/s"))
    assert secrets_folder(None, {}) == Path.home() / ".config" / "meeting-format-assistant"
    assert git_work_tree_of(Path(__file__)) is not None  # this checkout


# -- Google: one user's own sign-in (installed app) --------------------------------------------


class Browser:
    """Stands in for the admin's browser on the emulator's Google sign-in and consent page."""

    def __init__(self, user: str, decision: str = "allow") -> None:
        self.user, self.decision = user, decision
        self.done = threading.Event()

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        threading.Thread(target=self.consent, args=(url,), daemon=True).start()
        return True

    def consent(self, url: str) -> None:
        page = requests.get(url, timeout=5)
        action = html.unescape(re.search(r'action="([^"]+)"', page.text)[1])
        scopes = re.findall(r'name="scope" value="([^"]+)"', page.text)
        # Allow (or Cancel) sends the browser back to the app's loopback address.
        requests.post(urljoin(url, action), timeout=5, data={
            "user": self.user, "scope": scopes, "decision": self.decision})
        self.done.set()


def test_one_user_signs_in_in_a_browser_and_the_token_is_kept_owner_only(
        sandbox, tmp_path, secrets, monkeypatch):
    client = sandbox.google_oauth_client_file()
    monkeypatch.setattr(webbrowser, "get", lambda name=None: Browser(ALICE))
    config = write_config(sandbox, tmp_path)
    result = auth("google", "--config", str(config), "--client-secrets", str(client),
                  "--user", ALICE)
    assert result.exit_code == 0, result.output
    assert "Opening a browser: sign in as alice@example.com" in result.stderr
    stored = secrets / f"google-token-{ALICE}.json"
    assert owner_only(stored) and "refresh_token" in json.loads(stored.read_text())
    assert "and remove service_account_key_file" in result.output
    assert printed_config(result.output) == {"google": {"token_file": str(stored)}}
    assert json.loads(stored.read_text())["refresh_token"] not in result.output
    run_once(with_printed_lines(config, result.output, "service_account_key_file"))


def test_a_cancelled_consent_and_another_account_are_explained(
        sandbox, tmp_path, secrets, monkeypatch):
    client = sandbox.google_oauth_client_file()
    args = ["google", "--api-endpoint", sandbox.google.url, "--client-secrets", str(client),
            "--user", ALICE]
    monkeypatch.setattr(webbrowser, "get", lambda name=None: Browser(ALICE, "deny"))
    result = auth(*args)
    assert result.exit_code == 1 and "The consent screen was cancelled" in result.output
    sandbox.google.add_user("carol@example.com")
    monkeypatch.setattr(webbrowser, "get", lambda name=None: Browser("carol@example.com"))
    result = auth(*args)
    assert result.exit_code == 1
    assert "signed in as carol@example.com, not alice@example.com" in result.output
    assert list(secrets.iterdir()) == []


def test_without_a_browser_the_page_to_open_is_printed(sandbox, tmp_path, secrets):
    client = sandbox.google_oauth_client_file()
    admin = subprocess.Popen(
        [sys.executable, "-m", "assistant", "auth", "google", "--json", "--no-browser",
         "--api-endpoint", sandbox.google.url, "--client-secrets", str(client), "--user", ALICE],
        env={**os.environ, "ASSISTANT_SECRETS_DIR": str(secrets)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        url = next(line.strip() for line in admin.stderr if "/o/oauth2/auth?" in line)
        Browser(ALICE).consent(url)
        out, _ = admin.communicate(timeout=30)
    finally:
        admin.kill()
    answer = json.loads(out)
    assert answer["ok"] and answer["method"] == "installed_app"
    assert answer["config"] == {"google": {"token_file": answer["stored"], "calendars": [ALICE],
                                           "api_endpoint": sandbox.google.url}}
    assert owner_only(Path(answer["stored"]))


# -- Microsoft: app-only, with a client secret or a certificate --------------------------------


def test_an_app_with_a_secret_is_checked_and_the_secret_stays_in_its_variable(
        sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path)
    result = auth("microsoft", "--config", str(config), "--check-user", BOB)
    assert result.exit_code == 0, result.output
    assert f"read {BOB}'s calendar" in result.output
    assert f"{config} already reads like this; nothing to change." in result.output
    assert not secrets.exists() or list(secrets.iterdir()) == []
    result = auth("microsoft", "--config", str(config), "--json")  # the first calendar, Bob's
    answer = json.loads(result.stdout)
    assert answer["ok"] and answer["checked_user"] == BOB and answer["stored"] is None
    assert answer["config"]["microsoft"]["client_secret_env"] == GRAPH_SECRET_ENV
    assert sandbox.graph_app.secret not in result.output + result.stderr


def test_an_app_with_a_certificate_is_checked_and_the_pem_copied_owner_only(
        sandbox, tmp_path, secrets):
    app, pem = sandbox.microsoft_certificate_app()
    config = write_config(sandbox, tmp_path)
    result = auth("microsoft", "--config", str(config), "--client-id", app.client_id,
                  "--certificate", str(pem), "--check-user", BOB)
    assert result.exit_code == 0, result.output
    stored = secrets / f"microsoft-{app.client_id}.pem"
    assert owner_only(stored) and stored.read_bytes() == pem.read_bytes()
    assert "and remove client_secret_env" in result.output
    assert printed_config(result.output) == {"microsoft": {
        "client_id": app.client_id, "certificate_file": str(stored)}}
    run_once(with_printed_lines(config, result.output, "client_secret_env"))


def unconsented(sandbox, monkeypatch) -> list[str]:
    sandbox.graph_app.consented = False
    return []


def wrong_secret(sandbox, monkeypatch) -> list[str]:
    monkeypatch.setenv(GRAPH_SECRET_ENV, "not-the-secret")
    return []


@pytest.mark.parametrize(("change", "problem", "words"), [
    (lambda sandbox, _: ["--tenant", "contoso.example"], "wrong_tenant",
     "There is no tenant 'contoso.example'"),
    (lambda sandbox, _: ["--client-id", "0000"], "app_not_in_tenant",
     "Tenant example.com has no app with client ID 0000"),
    (unconsented, "consent_missing", "Grant admin consent for example.com"),
    (wrong_secret, "bad_secret", f"The client secret in ${GRAPH_SECRET_ENV} is not the app's"),
    (lambda sandbox, _: ["--check-user", "nobody@example.com"], "mailbox_not_found",
     "Tenant example.com has no mailbox nobody@example.com"),
])
def test_each_app_only_failure_is_explained(sandbox, tmp_path, secrets, monkeypatch, change,
                                            problem, words):
    config = write_config(sandbox, tmp_path)
    args = change(sandbox, monkeypatch)
    result = auth("microsoft", "--config", str(config), *args)
    assert result.exit_code == 1 and words in result.output, result.output
    answer = json.loads(auth("microsoft", "--config", str(config), "--json", *args).stdout)
    assert answer["ok"] is False and answer["problem"] == problem


def test_a_missing_secret_variable_says_where_the_secret_comes_from(sandbox, tmp_path,
                                                                    monkeypatch):
    monkeypatch.delenv(GRAPH_SECRET_ENV)
    result = auth("microsoft", "--config", str(write_config(sandbox, tmp_path)))
    assert result.exit_code == 1
    assert f"${GRAPH_SECRET_ENV} is not set" in result.output and "Certificates & secrets" in (
        result.output)


# -- Microsoft: one user's device code ---------------------------------------------------------


def on_the_device_code_page(sandbox, **form: str) -> threading.Thread:
    """A person enters the next code shown on the emulator's sign-in page, as a browser does."""
    identity = sandbox.graph.identity

    def enter() -> None:
        deadline = time.monotonic() + 10
        while not identity.pending_devices and time.monotonic() < deadline:
            time.sleep(0.01)
        [pending] = identity.pending_devices.values()
        page = f"{sandbox.graph.url}devicelogin"
        assert pending["user_code"] in requests.get(
            page, params={"code": pending["user_code"]}, timeout=5).text
        requests.post(page, data={"code": pending["user_code"], **form}, timeout=5)

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    return thread


def test_a_person_signs_in_on_the_device_code_page_and_the_cache_is_kept_owner_only(
        sandbox, tmp_path, secrets):
    config = write_config(sandbox, tmp_path)
    on_the_device_code_page(sandbox, user=BOB, decision="allow")
    result = auth("microsoft", "--config", str(config), "--device-code")
    assert result.exit_code == 0, result.output
    page, code = re.search(r"open the page (\S+) and enter the code (\w+)", result.stderr).groups()
    assert page == f"{sandbox.graph.url}devicelogin" and code
    stored = secrets / f"microsoft-token-cache-{BOB}.json"
    assert owner_only(stored) and "RefreshToken" in stored.read_text()
    assert "and remove client_secret_env" in result.stdout
    assert printed_config(result.stdout) == {"microsoft": {"token_cache_file": str(stored)}}
    run_once(with_printed_lines(config, result.stdout, "client_secret_env"))


def approve_when_asked(sandbox, user: str) -> threading.Thread:
    """Someone enters the next device code shown, signing in as user."""
    def approve() -> None:
        deadline = time.monotonic() + 10
        while not sandbox.graph.identity.pending_devices and time.monotonic() < deadline:
            time.sleep(0.01)
        for pending in list(sandbox.graph.identity.pending_devices.values()):
            sandbox.graph.identity.approve_device(pending["user_code"], user)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def test_a_device_code_used_by_someone_else_is_refused(sandbox, tmp_path, secrets):
    sandbox.graph.add_user(ALICE)
    approve_when_asked(sandbox, ALICE)
    result = auth("microsoft", "--config", str(write_config(sandbox, tmp_path)),
                  "--device-code", "--check-user", BOB)
    assert result.exit_code == 1
    assert "used to sign in as alice@example.com, not bob@example.com" in result.output
    assert list(secrets.iterdir()) == []


def test_a_cancelled_device_sign_in_is_explained(sandbox, tmp_path, secrets):
    on_the_device_code_page(sandbox, decision="cancel")
    result = auth("microsoft", "--config", str(write_config(sandbox, tmp_path)),
                  "--device-code", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["problem"] == "declined"
