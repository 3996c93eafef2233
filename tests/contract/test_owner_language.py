"""CalendarPort.language through the real client libraries against both emulators.

The owner's language setting: Google's settings.get(setting="locale") read as each calendar's
owner, Graph's mailboxSettings/language; "not permitted" and "not found" are None, logged once;
throttling and outages raise the transient error, as every other call does.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from contextlib import closing

import pytest

from assistant.config import Config
from assistant.dry_run import DryRunCalendar
from assistant.errors import NotFound, ProviderUnavailable, RateLimited
from assistant.secret_files import write_owner_only
from integrations.google_api import Call, GoogleApi
from integrations.google_auth import SCOPES, SETTINGS_SCOPES, ServiceAccountSignIn, TokenSource
from integrations.google_calendar import GoogleCalendar, google_calendar_from_config
from integrations.graph_api import GraphRequest
from integrations.microsoft_auth import device_code_app, load_token_cache, sign_in_with_device_code
from integrations.microsoft_graph import microsoft_calendar_from_config
from integrations.sandbox.microsoft_identity import LoginRedirect
from integrations.sandbox.server import Faults
from tests.contract.conftest import (
    ALICE,
    BOB,
    NO_WAIT,
    SERVICE_ACCOUNT,
    google_adapter,
    graph_config,
    synced,
)
from tests.factories import NOW

SETTINGS_GET = "GET /calendar/v3/users/me/settings/{setting}"
MAILBOX_SETTINGS = "GET /v1.0/{…}/mailboxSettings/{prop}"


def _one_info_line(caplog) -> str:
    [record] = [r for r in caplog.records if "language setting" in r.getMessage()]
    assert record.levelno == logging.INFO
    return record.getMessage()


# -- Google --------------------------------------------------------------------------------------


def test_google_reads_each_owners_locale_as_that_owner(google, google_calendar):
    google.set_locale(ALICE, "de")
    google.set_locale(BOB, "en_GB")
    assert google_calendar.language(ALICE) == "de"
    assert google_calendar.language(BOB) == "en-GB"  # Google's '_' as BCP 47's '-'
    google.add_user("carol@example.com")
    assert google_calendar.language("carol@example.com") == "en"  # Google's default
    assert google.calls[SETTINGS_GET] == 3


def test_google_settings_come_in_the_references_shape(google, google_calendar):
    google.set_locale(ALICE, "es_419")
    def get(setting: str):
        return google_calendar.api.execute_settings(
            Call(ALICE, lambda api: api.settings.get(setting=setting)))

    locale = get("locale")
    assert locale["kind"] == "calendar#setting" and locale["id"] == "locale"
    assert locale["value"] == "es_419" and locale["etag"].startswith('"')
    assert get("timezone")["value"] == "Europe/Berlin"  # the calendar's own zone
    assert get("format24HourTime")["value"] == "false"
    with pytest.raises(NotFound):
        get("favouriteColour")


def test_google_without_the_delegated_settings_scope_is_none_and_the_rest_works(
    google, tmp_path, caplog
):
    key = tmp_path / "events-only.json"
    write_owner_only(key, json.dumps(google.service_account_key(
        SERVICE_ACCOUNT, "example.com", scopes=SCOPES)))  # the admin delegated calendar.events
    google.set_locale(ALICE, "de")
    caplog.set_level(logging.INFO, logger="integrations.google_calendar")
    with closing(google_adapter(google, key)) as adapter:
        assert adapter.language(ALICE) is None
        assert adapter.language(ALICE) is None
        assert ALICE in synced(adapter, {ALICE: None})
    assert google.calls[SETTINGS_GET] == 0  # refused at the token endpoint: 401 unauthorized_client
    line = _one_info_line(caplog)
    assert SETTINGS_SCOPES[0] in line and ALICE not in line and "a***@example.com" in line


def test_google_answers_403_to_a_token_without_a_settings_scope_and_that_is_none(
    google, google_key, closing_later
):
    google.set_locale(ALICE, "de")
    sign_in = ServiceAccountSignIn.from_key_file(google_key)
    # Settings read with the events token: what the adapter would get without a token of its own.
    api = GoogleApi(TokenSource(sign_in), settings_tokens=TokenSource(sign_in),
                    root_url=google.url, retry=NO_WAIT)
    adapter = closing_later(GoogleCalendar(api, now=lambda: NOW))
    assert adapter.language(ALICE) is None
    assert google.refused[403] == 1 and google.calls[SETTINGS_GET] == 1


def test_google_a_user_who_is_gone_has_no_language(google, google_calendar, caplog):
    caplog.set_level(logging.INFO, logger="integrations.google_calendar")
    google.remove_user(ALICE)
    assert google_calendar.language(ALICE) is None
    assert google.refused[404] == 1
    assert "NotFound" in _one_info_line(caplog)


@pytest.mark.parametrize(("status", "error"), [("503", ProviderUnavailable), ("500",
                         ProviderUnavailable), ("429", RateLimited)])
def test_google_throttling_and_outages_raise_after_the_usual_retries(google, google_calendar,
                                                                     status, error):
    google_calendar.language(ALICE)  # signed in while Google still answers
    google.faults = Faults(rate=1.0, kinds=(status,))
    with pytest.raises(error):
        google_calendar.language(ALICE)
    assert google.injected[status] == NO_WAIT.attempts
    google.faults = Faults()
    assert google_calendar.language(ALICE) == "en"


def test_google_from_config_reads_the_language_with_a_service_account(google, google_key,
                                                                      closing_later):
    google.set_locale(BOB, "fr")
    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE, BOB], "service_account_key_file": str(google_key),
                   "api_endpoint": google.url},
    })
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    assert (adapter.language(ALICE), adapter.language(BOB)) == ("en", "fr")
    assert DryRunCalendar(adapter).language(BOB) == "fr"


def _token_file(google, tmp_path, *, granted, user=ALICE):
    """A stored single-user sign-in whose consent granted `granted`, for `user` ('' unsaid)."""
    client = google.installed_app_client(consenting_user=ALICE)["installed"]
    path = tmp_path / "google-token.json"
    stored = {"client_id": client["client_id"], "client_secret": client["client_secret"],
              "refresh_token": google.oauth.issue_refresh_token(ALICE, frozenset(granted)),
              "token_uri": client["token_uri"], "scopes": list(SCOPES),
              "granted_scopes": sorted(granted)}
    if user:
        stored["assistant_user"] = user
    write_owner_only(path, json.dumps(stored))
    return Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "token_file": str(path), "api_endpoint": google.url},
    })


def test_google_one_users_sign_in_reads_only_their_own_language(google, tmp_path, closing_later):
    google.set_locale(ALICE, "de")
    google.set_locale(BOB, "fr")
    config = _token_file(google, tmp_path, granted=SCOPES + SETTINGS_SCOPES)
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    assert adapter.language(ALICE) == "de"
    assert adapter.language(BOB) is None  # never Alice's setting for Bob's calendar
    assert google.calls[SETTINGS_GET] == 1


@pytest.mark.parametrize(("granted", "user"), [(SCOPES, ALICE), (SCOPES + SETTINGS_SCOPES, "")],
                         ids=["consent-without-the-settings-scope", "sign-in-names-nobody"])
def test_google_one_users_sign_in_that_cannot_read_it_asks_nothing(google, tmp_path,
                                                                   closing_later, granted, user):
    google.set_locale(ALICE, "de")
    config = _token_file(google, tmp_path, granted=granted, user=user)
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    assert adapter.language(ALICE) is None
    assert google.calls[SETTINGS_GET] == 0


def _get(url: str, authorization: str = "") -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if
                                     authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_google_settings_are_only_ever_the_token_users_own(google, google_calendar):
    signed = google_calendar.api.settings_tokens.authorization(ALICE)
    base = f"{google.url}calendar/v3/users"
    assert _get(f"{base}/me/settings/locale", signed)[0] == 200
    # The reference has only users/me: a user's address in the path is no resource.
    status, body = _get(f"{base}/{BOB}/settings/locale", signed)
    assert status == 404 and body["error"]["errors"][0]["reason"] == "notFound"
    status, body = _get(f"{base}/me/settings/locale")
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"


# -- Microsoft Graph -----------------------------------------------------------------------------


def test_graph_reads_each_mailboxs_locale(graph, outlook):
    graph.set_locale(ALICE, "de-DE")
    assert outlook.language(ALICE) == "de-DE"
    assert outlook.language(BOB) == "en-US"  # the sandbox's default
    assert graph.calls[MAILBOX_SETTINGS] == 2


def test_graph_mailbox_settings_come_in_the_references_shape(graph, outlook):
    graph.set_locale(ALICE, "fr-CH")
    def get(path: str):
        return outlook.api.call(GraphRequest("GET", f"/users/{ALICE}/mailboxSettings{path}",
                                             ALICE))

    language = get("/language")
    assert language["locale"] == "fr-CH" and language["displayName"] == "French (Switzerland)"
    assert language["@odata.context"].endswith(f"users('{ALICE}')/mailboxSettings/language")
    assert get("/timeZone")["value"] == "UTC"
    selected = get("?$select=language")
    assert set(selected) == {"@odata.context", "language"}
    assert {"language", "timeZone", "workingHours", "automaticRepliesSetting"} <= set(get(""))


def test_graph_without_mailbox_settings_read_is_none_and_the_rest_works(
    graph, graph_app, outlook_factory, caplog
):
    graph_app.permissions.discard("MailboxSettings.Read")  # the admin granted calendars only
    graph.set_locale(ALICE, "de-DE")
    caplog.set_level(logging.INFO, logger="integrations.microsoft_graph")
    adapter = outlook_factory()
    assert adapter.language(ALICE) is None
    assert adapter.language(ALICE) is None
    assert ALICE in synced(adapter, {ALICE: None})
    assert graph.refused[403] == 2
    line = _one_info_line(caplog)
    assert "MailboxSettings.Read" in line and ALICE not in line


def test_graph_a_permission_removed_later_reaches_the_adapter_with_its_next_token(
    graph, graph_app, outlook
):
    graph.set_locale(ALICE, "es-ES")
    assert outlook.language(ALICE) == "es-ES"
    graph.identity.remove_permission(graph_app.client_id, "MailboxSettings.Read")
    assert outlook.language(ALICE) is None
    graph.identity.add_permission(graph_app.client_id, "MailboxSettings.Read")
    graph.identity.revoke_access_tokens()
    assert outlook.language(ALICE) == "es-ES"


def test_graph_a_user_who_is_gone_has_no_language(graph, outlook):
    graph.remove_user(ALICE)
    assert outlook.language(ALICE) is None
    assert graph.refused[404] == 1


@pytest.mark.parametrize(("status", "error"), [("503", ProviderUnavailable), ("500",
                         ProviderUnavailable), ("429", RateLimited)])
def test_graph_throttling_and_outages_raise_after_the_usual_retries(graph, outlook, status, error):
    outlook.language(ALICE)  # signed in while Graph still answers
    graph.faults = Faults(rate=1.0, kinds=(status,))
    with pytest.raises(error):
        outlook.language(ALICE)
    assert graph.injected[status] == NO_WAIT.attempts
    graph.faults = Faults()
    assert outlook.language(ALICE) == "en-US"


def test_graph_one_users_sign_in_without_the_delegated_permission_is_none(graph, tmp_path,
                                                                          closing_later):
    public_app = graph.identity.register_app("example.com")
    cache_file = tmp_path / "msal-cache.json"
    login = closing_later(LoginRedirect(graph.url))
    app = device_code_app("example.com", public_app.client_id, load_token_cache(cache_file),
                          authority="https://login.microsoftonline.com", http_client=login)
    sign_in_with_device_code(app, cache_file, lambda message: graph.identity.approve_device(
        message.split("enter the code ")[1].split()[0], ALICE))
    config = graph_config(graph, public_app, client_secret_env=None,
                          token_cache_file=str(cache_file), calendars=[ALICE])
    adapter = closing_later(microsoft_calendar_from_config(config, retry=NO_WAIT,
                                                           login_http=login))
    graph.set_locale(ALICE, "de-DE")
    assert adapter.language(ALICE) is None  # Calendars.ReadWrite only: 403 ErrorAccessDenied
    assert adapter.language(BOB) is None  # and another mailbox is not this user's to read
    assert graph.refused[403] == 2
