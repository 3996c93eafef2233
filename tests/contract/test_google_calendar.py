"""The Google adapter through the real google-api-python-client against the Calendar emulator."""

from __future__ import annotations

import json
import stat
import threading
import urllib.request
import webbrowser
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from assistant import block
from assistant.calendar_sync import SyncWindow
from assistant.config import Config
from assistant.errors import AuthFailed, ConfigError, Conflict, NotFound, ProviderRejected
from assistant.models import EventRemoved, Format, Meeting, Provider
from assistant.ports import CalendarChanges, Channel, SyncFailed, WriteResult
from assistant.secret_files import write_owner_only
from integrations import google_calendar as google_module
from integrations.google_api import Call
from integrations.google_auth import authorize_installed_app
from integrations.google_calendar import calendar_to_sync, google_calendar_from_config
from integrations.sandbox.server import HANG, TRUNCATED, Faults, Response
from tests.contract.conftest import (
    ALICE,
    BOB,
    NO_WAIT,
    SERVICE_ACCOUNT,
    assert_hung_requests_are_given_up,
    google_adapter,
    ids,
    synced,
)

BERLIN = ZoneInfo("Europe/Berlin")
CUSTOMER = "erin@acme.com"


def book(google, title="Acme pitch", *, start=datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN),
         minutes=60, organiser=ALICE, guests=(CUSTOMER,), zone="Europe/Berlin", **fields):
    """A person books a meeting in Google Calendar."""
    end = start + timedelta(minutes=minutes)
    return google.create_event(
        organiser, summary=title,
        start={"dateTime": start.isoformat(), "timeZone": zone},
        end={"dateTime": end.isoformat(), "timeZone": zone},
        attendees=[{"email": organiser}, *({"email": guest} for guest in guests)],
        **fields,
    )


# -- reading -------------------------------------------------------------------------------------


def test_first_sync_lists_the_window_and_hands_out_a_cursor(google, google_calendar):
    inside = book(google)
    book(google, "Long ago", start=datetime(2026, 9, 1, 10, 0, tzinfo=BERLIN))
    book(google, "Far ahead", start=datetime(2027, 9, 1, 10, 0, tzinfo=BERLIN))
    result = synced(google_calendar, {ALICE: None})[ALICE]
    assert result.full_sync and result.cursor
    assert ids(result) == {inside["id"]}
    meeting = result.changes[0]
    assert isinstance(meeting, Meeting) and meeting.organizer_is_owner
    assert meeting.start == datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)


def test_incremental_sync_returns_only_changes_and_deletions(google, google_calendar):
    kept, edited, cancelled = book(google, "Kept"), book(google, "Edited"), book(google, "Gone")
    cursor = synced(google_calendar, {ALICE: None})[ALICE].cursor
    assert ids(synced(google_calendar, {ALICE: cursor})[ALICE]) == set()
    google.edit_event(ALICE, edited["id"], summary="Edited again")
    google.cancel_event(ALICE, cancelled["id"])
    new = book(google, "New")
    result = synced(google_calendar, {ALICE: cursor})[ALICE]
    assert not result.full_sync
    assert ids(result) == {edited["id"], cancelled["id"], new["id"]}
    by_id = {change.event_id: change for change in result.changes}
    assert isinstance(by_id[cancelled["id"]], EventRemoved)
    assert by_id[edited["id"]].title == "Edited again"
    assert kept["id"] not in by_id


def test_pages_are_followed_and_nothing_is_listed_twice(google, google_calendar, monkeypatch):
    monkeypatch.setattr(google_module, "PAGE_SIZE", 7)
    booked = {book(google, f"Meeting {i}", start=datetime(2026, 12, 1 + i % 20, 9, 0,
                                                            tzinfo=BERLIN))["id"]
              for i in range(30)}
    google.reset_counts()
    result = synced(google_calendar, {ALICE: None})[ALICE]
    assert ids(result) == booked and len(result.changes) == 30
    assert google.calls["GET /calendar/v3/calendars/{cal}/events"] == 5  # 30 / 7


def test_an_expired_cursor_means_one_clean_full_sync_with_nothing_processed_twice(
    google, google_calendar
):
    first, second = book(google, "First"), book(google, "Second")
    processed: dict[str, str] = {}  # event id -> ETag handled, as the service's store keeps it

    def handle(result):
        fresh = [c for c in result.changes if processed.get(c.event_id) != getattr(c, "etag", "")]
        processed.update({c.event_id: getattr(c, "etag", "") for c in fresh})
        return {c.event_id for c in fresh}

    cursor = synced(google_calendar, {ALICE: None})[ALICE]
    assert handle(cursor) == {first["id"], second["id"]}
    google.edit_event(ALICE, second["id"], summary="Second, renamed")
    google.store.expire_sync_tokens(ALICE)
    result = synced(google_calendar, {ALICE: cursor.cursor})[ALICE]
    assert result.full_sync
    assert handle(result) == {second["id"]}  # the first was handled already: same ETag
    after = synced(google_calendar, {ALICE: result.cursor})[ALICE]
    assert not after.full_sync and handle(after) == set()


def test_a_recurring_series_comes_once_as_its_master(google, google_calendar):
    series = book(google, "Acme weekly check-in", recurrence=["RRULE:FREQ=WEEKLY;COUNT=20"])
    [change] = synced(google_calendar, {ALICE: None})[ALICE].changes
    assert change.event_id == series["id"] and change.series_id == series["id"]


def test_a_calendar_that_fails_does_not_hold_up_the_others(google, tmp_path):
    google.add_user("dana@other.example")  # a domain the key is not delegated for
    key = tmp_path / "key.json"
    write_owner_only(key, json.dumps(google.service_account_key(SERVICE_ACCOUNT, "example.com")))
    book(google)
    with closing(google_adapter(google, key)) as adapter:
        results = {r.calendar: r for r in adapter.sync({ALICE: None, "dana@other.example": None})}
    assert isinstance(results[ALICE], CalendarChanges)
    failed = results["dana@other.example"]
    assert isinstance(failed, SyncFailed) and isinstance(failed.error, AuthFailed)
    assert "domain-wide delegation" in str(failed.error)


def test_an_expired_access_token_is_refreshed_once(google, google_calendar):
    book(google)
    cursor = synced(google_calendar, {ALICE: None})[ALICE].cursor
    google.oauth.revoke_access_tokens(ALICE)
    requests_before = google.oauth.token_requests
    assert ids(synced(google_calendar, {ALICE: cursor})[ALICE]) == set()
    assert google.oauth.token_requests == requests_before + 1
    google.oauth.revoke_access_tokens(ALICE)
    assert google_calendar.read(ALICE, book(google, "Later")["id"]).title == "Later"


def test_a_part_of_a_batch_cut_off_mid_json_is_asked_again_alone(google, google_calendar,
                                                                 monkeypatch):
    booked = {user: book(google, organiser=user)["id"] for user in (ALICE, BOB)}
    dispatch, cut = google.dispatch, []

    def cut_the_first_listing(request):
        response = dispatch(request)
        if request.path.endswith("/events") and not cut and response is not None:
            cut.append(request.path)  # one calendar's part of the batch, not the batch
            return Response(200, response.body[:20], response.headers)
        return response

    monkeypatch.setattr(google, "dispatch", cut_the_first_listing)
    results = synced(google_calendar, {ALICE: None, BOB: None})
    assert cut and {user: ids(results[user]) for user in booked} == {
        user: {event_id} for user, event_id in booked.items()}


def test_syncing_a_thousand_idle_calendars_takes_one_round_trip_per_fifty(google, google_key):
    users = [f"user{i:04d}@example.com" for i in range(1000)]
    for user in users:
        google.add_user(user)
    with closing(google_adapter(google, google_key)) as adapter:
        cursors = {r.calendar: r.cursor for r in adapter.sync(dict.fromkeys(users))}
        google.reset_counts()
        results = list(adapter.sync(cursors))
    assert len(results) == 1000 and all(isinstance(r, CalendarChanges) for r in results)
    assert google.round_trips == 20
    assert sum(google.calls.values()) == 1000 + 20  # one list call per calendar, 20 batches


# -- writing -------------------------------------------------------------------------------------


def test_a_virtual_meeting_is_shortened_linked_and_marked(google, google_calendar, planner):
    event = book(google, "Acme weekly status", description="Agenda: numbers")
    outcome = google_calendar.update(ALICE, event["id"], planner)
    assert outcome.result is WriteResult.WRITTEN and outcome.attempts == 1
    stored = google.event(ALICE, event["id"])
    assert stored["end"] == {"dateTime": "2026-12-03T10:50:00+01:00", "timeZone": "Europe/Berlin"}
    assert stored["description"].endswith("\n\nAgenda: numbers")
    assert "cameras on" in stored["description"]
    assert stored["hangoutLink"].startswith("https://meet.google.com/")
    assert stored["extendedProperties"]["private"]["meetingFormat.format"] == "virtual"
    assert (event["id"], "patch", "all") in google.store.sent_updates
    assert outcome.meeting.video_link == stored["hangoutLink"]


def test_a_second_run_writes_nothing_and_creates_no_second_meet(google, google_calendar, planner):
    event = book(google, "Acme weekly status")
    google_calendar.update(ALICE, event["id"], planner)
    written = google.event(ALICE, event["id"])
    assert google_calendar.update(ALICE, event["id"], planner).result is WriteResult.UNCHANGED
    assert google.event(ALICE, event["id"]) == written


def test_a_concurrent_human_edit_survives_the_412(google, google_calendar, planner):
    event = book(google, "Acme weekly status", description="Agenda")
    calls = []

    def racing_planner(meeting):
        calls.append(meeting.etag)
        if len(calls) == 1:  # a person saves their edit between our read and our write
            google.edit_event(ALICE, event["id"], description="Agenda\nBring the figures")
        return planner(meeting)

    outcome = google_calendar.update(ALICE, event["id"], racing_planner)
    assert outcome.result is WriteResult.WRITTEN and outcome.attempts == 2
    description = google.event(ALICE, event["id"])["description"]
    assert description.endswith("Agenda\nBring the figures")
    assert description.count(block.TEXT_START) == 1


def test_an_event_that_never_stops_changing_is_a_conflict(google, google_calendar, planner):
    event = book(google, "Acme weekly status")

    def always_racing(meeting):
        google.edit_event(ALICE, event["id"], summary=f"Acme weekly status {meeting.etag}")
        return planner(meeting)

    with pytest.raises(Conflict, match=event["id"]):
        google_calendar.update(ALICE, event["id"], always_racing)


def test_a_length_a_person_set_back_is_respected(google, google_calendar, planner):
    event = book(google, "Acme weekly status")
    google_calendar.update(ALICE, event["id"], planner)
    google.edit_event(ALICE, event["id"], end=event["end"])  # back to the full hour
    outcome = google_calendar.update(ALICE, event["id"], planner)
    stored = google.event(ALICE, event["id"])
    assert outcome.result is WriteResult.WRITTEN  # the note drops its "50 minutes" line
    assert stored["end"]["dateTime"] == "2026-12-03T11:00:00+01:00"
    assert stored["extendedProperties"]["private"]["meetingFormat.lengthByPerson"] == "1"
    assert google_calendar.update(ALICE, event["id"], planner).result is WriteResult.UNCHANGED


def test_a_note_a_person_deleted_stays_deleted(google, google_calendar, planner):
    event = book(google, "Acme weekly status", description="Agenda")
    google_calendar.update(ALICE, event["id"], planner)
    google.edit_event(ALICE, event["id"], description="Agenda")
    assert google_calendar.update(ALICE, event["id"], planner).result is WriteResult.LEFT_ALONE
    assert google.event(ALICE, event["id"])["description"] == "Agenda"


def test_only_the_organisers_own_event_is_written(google, google_calendar, planner):
    event = book(google, "Acme weekly status", guests=(CUSTOMER, BOB))
    before = google.event(BOB, event["id"])
    outcome = google_calendar.update(BOB, event["id"], planner)
    assert outcome.result is WriteResult.NOT_ORGANISER
    assert google.event(BOB, event["id"]) == before


def test_a_cancelled_event_is_gone(google, google_calendar, planner):
    event = book(google)
    google.cancel_event(ALICE, event["id"])
    assert google_calendar.update(ALICE, event["id"], planner).result is WriteResult.GONE


def test_html_descriptions_keep_every_character(google, google_calendar, planner):
    html = 'Agenda:<br><ul><li><b>Roadmap</b></li></ul><a href="https://acme.com/x">deck</a>'
    event = book(google, "Acme weekly status", description=html)
    google_calendar.update(ALICE, event["id"], planner)
    stored = google.event(ALICE, event["id"])["description"]
    assert stored.startswith(block.HTML_START) and stored.endswith(html)
    assert block.remove_block(stored, is_html=True) == html


def test_times_keep_their_zone_across_a_dst_change(google, google_calendar, planner):
    new_york = ZoneInfo("America/New_York")
    event = book(google, "Acme weekly status", start=datetime(2027, 3, 14, 10, 0, tzinfo=new_york),
                 zone="America/New_York")  # the first morning of summer time in New York
    cursor_window = SyncWindow(future=timedelta(days=200))
    adapter = google_calendar
    adapter.window = cursor_window
    [meeting] = synced(adapter, {ALICE: None})[ALICE].changes
    assert meeting.start.utcoffset() == timedelta(hours=-4)
    adapter.update(ALICE, event["id"], planner)
    end = google.event(ALICE, event["id"])["end"]
    assert end == {"dateTime": "2027-03-14T10:50:00-04:00", "timeZone": "America/New_York"}


# -- trouble -------------------------------------------------------------------------------------


@pytest.mark.parametrize("faults", [
    Faults(rate=0.25, seed=7),
    Faults(rate=0.2, kinds=(TRUNCATED, HANG), hang_seconds=0.6, seed=7),
], ids=["errors-and-drops", "broken-json-and-timeouts"])
def test_faults_are_retried_until_everything_is_synced_and_written(
    google_key, planner, closing_later, faults
):
    from integrations.sandbox.google_calendar import GoogleCalendarEmulator

    with GoogleCalendarEmulator(faults) as google:
        users = [ALICE, BOB, *(f"user{i}@example.com" for i in range(30))]
        for user in users:
            google.add_user(user)
        google.faults.rate, booked = 0.0, {u: book(google, organiser=u)["id"] for u in users}
        key = google_key.parent / "faulty-key.json"
        info = google.service_account_key(SERVICE_ACCOUNT, "example.com")
        write_owner_only(key, json.dumps(info))
        adapter = closing_later(google_adapter(google, key, batch_size=7))
        adapter.api.timeout_seconds = 0.2  # a hung request is given up and tried again
        google.faults.rate = 0.25
        results = {r.calendar: r for r in adapter.sync(dict.fromkeys(users))}
        assert all(ids(results[u]) == {booked[u]} for u in users)
        for user in users:
            outcome = adapter.update(user, booked[user], planner)
            # UNCHANGED: our write went through but its answer was lost (a dropped connection);
            # the retry then found the event already reading as planned.
            assert outcome.result in (WriteResult.WRITTEN, WriteResult.UNCHANGED)
        google.faults.rate = 0.0
        assert set(google.injected) == set(faults.kinds)
        for user in users:
            assert google.event(user, booked[user])["description"].count(block.TEXT_START) == 1


def test_a_request_is_given_up_after_the_configured_timeout(google, google_key, closing_later):
    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "service_account_key_file": str(google_key),
                   "api_endpoint": google.url, "request_timeout_seconds": 0.25},
    })
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    assert_hung_requests_are_given_up(google, adapter, book(google)["id"])


def test_format_of_written_mark_reads_back(google, google_calendar, planner):
    event = book(google, "Acme weekly status")
    google_calendar.update(ALICE, event["id"], planner)
    meeting = google_calendar.read(ALICE, event["id"])
    assert meeting.mark is not None and meeting.mark.format is Format.VIRTUAL
    assert meeting.mark.minutes_set == 50 and meeting.mark.minutes_before == 60




# -- push ----------------------------------------------------------------------------------------


def test_a_push_notification_names_the_calendar_to_sync(google, google_calendar, receiver):
    cursor = synced(google_calendar, {ALICE: None})[ALICE].cursor
    channel = google_calendar.watch(ALICE, receiver.url, "s3cret-token", timedelta(hours=6))
    assert channel.calendar == ALICE
    assert timedelta(hours=5) < channel.expires - _now() <= timedelta(hours=6)
    [sync_message] = receiver.wait_for(1)
    assert sync_message["X-Goog-Resource-State"] == "sync"
    event = book(google)
    exists = receiver.wait_for(2)[1]
    assert exists["X-Goog-Resource-State"] == "exists" and exists["X-Goog-Message-Number"] == "2"
    assert exists["X-Goog-Channel-Token"] == "s3cret-token"
    channels = {channel.channel_id: channel}
    calendar = calendar_to_sync(exists, channels)
    assert calendar == ALICE
    assert ids(synced(google_calendar, {calendar: cursor})[ALICE]) == {event["id"]}


@pytest.mark.parametrize("forged", [
    {"X-Goog-Channel-Token": "guess"},
    {"X-Goog-Channel-ID": "someone-elses-channel"},
    {"X-Goog-Resource-ID": "another-resource"},
])
def test_a_notification_without_our_channel_and_token_is_ignored(forged):
    channel = Channel(Provider.GOOGLE, ALICE, "ch-1", "res-1", "s3cret", _now())
    genuine = {"X-Goog-Channel-ID": "ch-1", "X-Goog-Channel-Token": "s3cret",
               "X-Goog-Resource-ID": "res-1", "X-Goog-Resource-State": "exists"}
    assert calendar_to_sync({k.lower(): v for k, v in genuine.items()}, {"ch-1": channel}) == ALICE
    assert calendar_to_sync(genuine | forged, {"ch-1": channel}) is None


def test_a_stopped_channel_sends_nothing_more(google, google_calendar, receiver):
    channel = google_calendar.watch(ALICE, receiver.url, "token", timedelta(hours=1))
    receiver.wait_for(1)
    google_calendar.unwatch(channel)
    google_calendar.unwatch(channel)  # stopping twice is harmless
    book(google)
    google.notifier.wait_idle()
    assert len(receiver.received) == 1 and not google.channels


def _now() -> datetime:
    return datetime.now(UTC)


# -- sign-in -------------------------------------------------------------------------------------


class _Browser:
    """Stands in for the user's browser: follows the consent redirect back to the app."""

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=5).read()).start()
        return True


def test_one_user_signs_in_once_and_the_refresh_token_is_kept_owner_only(
    google, tmp_path, monkeypatch, closing_later
):
    client = tmp_path / "client_secret.json"
    client.write_text(json.dumps(google.installed_app_client(consenting_user=ALICE)))
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator speaks plain HTTP
    monkeypatch.setattr(webbrowser, "get", lambda name=None: _Browser())
    token_file = tmp_path / "private" / "google-token.json"
    authorize_installed_app(client, token_file, ALICE)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "refresh_token" in json.loads(token_file.read_text())

    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "token_file": str(token_file), "api_endpoint": google.url},
    })
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    event = book(google)
    assert ids(synced(adapter, {ALICE: None})[ALICE]) == {event["id"]}
    with pytest.raises(AuthFailed, match="for alice@example.com only"):
        adapter.read(BOB, event["id"])


def test_a_revoked_sign_in_is_an_auth_failure_that_says_what_to_do(google, tmp_path, closing_later):
    client = google.installed_app_client(consenting_user=ALICE)["installed"]
    token_file = tmp_path / "token.json"
    write_owner_only(token_file, json.dumps({
        "client_id": client["client_id"], "client_secret": client["client_secret"],
        "refresh_token": "1//revoked", "token_uri": client["token_uri"], "type": "authorized_user",
    }))
    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "token_file": str(token_file), "api_endpoint": google.url},
    })
    adapter = closing_later(google_calendar_from_config(config, retry=NO_WAIT))
    [failed] = adapter.sync({ALICE: None})
    assert isinstance(failed, SyncFailed) and "sign in again" in str(failed.error)


def test_a_missing_key_file_is_a_config_error_naming_it(tmp_path):
    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "service_account_key_file": str(tmp_path / "nope.json")},
    })
    with pytest.raises(ConfigError, match="nope.json"):
        google_calendar_from_config(config)


def test_a_key_file_others_may_read_is_refused_with_the_fix(google_key):
    google_key.chmod(0o644)  # as a browser saves a download
    config = Config.model_validate({
        "organisation": {"domains": ["example.com"]},
        "google": {"calendars": [ALICE], "service_account_key_file": str(google_key)},
    })
    with pytest.raises(ConfigError, match=f"chmod 600 {google_key}"):
        google_calendar_from_config(config)


# -- the emulator itself, where the adapter does not reach ---------------------------------------


def test_single_events_lists_instances_with_exceptions_in_place(google, google_calendar):
    series = book(google, "Acme weekly check-in", start=datetime(2027, 3, 9, 10, 0, tzinfo=BERLIN),
                  recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    api = google_calendar.api
    moved_id = f"{series['id']}_20270323T090000Z"  # the third, 10:00 Berlin in winter time
    google.edit_event(ALICE, moved_id, start={"dateTime": "2027-03-23T15:00:00+01:00"},
                      end={"dateTime": "2027-03-23T16:00:00+01:00"})
    google.cancel_event(ALICE, f"{series['id']}_20270316T090000Z")
    listing = api.execute(Call(ALICE, lambda c: c.events.list(
        calendarId="primary", singleEvents=True, timeMin="2027-03-01T00:00:00Z",
        timeMax="2027-04-30T00:00:00Z")))
    starts = [(item["id"], item["start"]["dateTime"]) for item in listing["items"]]
    assert starts == [
        (f"{series['id']}_20270309T090000Z", "2027-03-09T10:00:00+01:00"),
        (moved_id, "2027-03-23T15:00:00+01:00"),
        # Summer time from 28 March: still 10:00 on the wall clock, an hour earlier in UTC.
        (f"{series['id']}_20270330T080000Z", "2027-03-30T10:00:00+02:00"),
    ]
    assert all(item["recurringEventId"] == series["id"] for item in listing["items"])


@pytest.mark.parametrize(("params", "status"), [
    ({"syncToken": "x", "timeMin": "2026-01-01T00:00:00Z"}, 400),
    ({"syncToken": "not-a-token"}, 400),
    ({"maxResults": 0}, 400),
    ({"pageToken": "garbage"}, 400),
])
def test_bad_list_requests_are_refused_as_google_refuses_them(google, google_calendar, params,
                                                              status):
    with pytest.raises(ProviderRejected, match=f"Google answered {status}"):
        google_calendar.api.execute(Call(ALICE, lambda c: c.events.list(
            calendarId="primary", **params)))


def test_a_moved_meeting_keeps_its_shortened_length_and_its_note(google, google_calendar, planner):
    event = book(google, "Acme weekly status")
    google_calendar.update(ALICE, event["id"], planner)
    google.move_event(ALICE, event["id"], timedelta(days=1))
    assert google_calendar.update(ALICE, event["id"], planner).result is WriteResult.UNCHANGED
    stored = google.event(ALICE, event["id"])
    assert (stored["start"]["dateTime"], stored["end"]["dateTime"]) == (
        "2026-12-04T10:00:00+01:00", "2026-12-04T10:50:00+01:00")


def test_a_cancelled_instance_arrives_as_a_removal_within_its_series(google, google_calendar):
    series = book(google, "Acme weekly check-in", recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    cursor = synced(google_calendar, {ALICE: None})[ALICE].cursor
    google.cancel_event(ALICE, f"{series['id']}_20261210T090000Z")
    [removed] = synced(google_calendar, {ALICE: cursor})[ALICE].changes
    assert isinstance(removed, EventRemoved) and removed.series_id == series["id"]


def test_renewing_a_channel_opens_a_new_one_and_stops_the_old(google, google_calendar, receiver):
    old = google_calendar.watch(ALICE, receiver.url, "token", timedelta(hours=1))
    new = google_calendar.renew(old, timedelta(days=7))
    assert new.channel_id != old.channel_id and new.expires > old.expires
    assert set(google.channels) == {new.channel_id} and new.address == receiver.url


def test_insert_update_and_delete_through_the_real_client(google, google_calendar):
    api = google_calendar.api
    body = {"summary": "Created by API", "description": "to be dropped",
            "start": {"dateTime": "2026-12-05T10:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-12-05T11:00:00", "timeZone": "Europe/Berlin"}}
    made = api.execute(Call(ALICE, lambda c: c.events.insert(calendarId="primary", body=body)))
    assert made["start"]["dateTime"] == "2026-12-05T10:00:00+01:00"
    replaced = api.execute(Call(ALICE, lambda c: c.events.update(
        calendarId="primary", eventId=made["id"],
        body={"summary": "Replaced", "start": made["start"], "end": made["end"]})))
    assert replaced["summary"] == "Replaced" and "description" not in replaced
    assert replaced["etag"] != made["etag"]
    api.execute(Call(ALICE, lambda c: c.events.delete(calendarId="primary", eventId=made["id"])))
    assert google.event(ALICE, made["id"])["status"] == "cancelled"
    with pytest.raises(NotFound):  # deleting twice: Google's 410 "deleted"
        api.execute(Call(ALICE, lambda c: c.events.delete(calendarId="primary",
                                                          eventId=made["id"])))


def test_a_channel_says_when_it_is_due_for_renewal():
    channel = Channel(Provider.GOOGLE, ALICE, "ch", "res", "t", datetime(2026, 12, 1, tzinfo=UTC))
    assert not channel.expires_within(datetime(2026, 11, 29, tzinfo=UTC), timedelta(days=1))
    assert channel.expires_within(datetime(2026, 11, 30, 1, tzinfo=UTC), timedelta(days=1))


def test_a_series_that_ended_before_the_window_is_not_listed(google, google_calendar):
    book(google, "Old weekly", start=datetime(2026, 1, 6, 10, 0, tzinfo=BERLIN),
         recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20260301T000000Z"])
    ongoing = book(google, "Acme weekly", start=datetime(2026, 1, 6, 10, 0, tzinfo=BERLIN),
                   recurrence=["RRULE:FREQ=WEEKLY"])
    assert ids(synced(google_calendar, {ALICE: None})[ALICE]) == {ongoing["id"]}
