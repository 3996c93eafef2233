"""The Microsoft adapter through real msal and requests against the Graph emulator."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest

from assistant import block
from assistant.errors import AuthFailed, ConfigError, Conflict
from assistant.models import EventRemoved, Format, Meeting
from assistant.ports import CalendarChanges, Channel, ChannelLookup, SyncFailed, WriteResult
from assistant.secret_files import write_owner_only
from integrations import microsoft_graph as graph_module
from integrations.graph_api import GraphRequest
from integrations.microsoft_auth import (
    device_code_app,
    load_token_cache,
    sign_in_with_device_code,
)
from integrations.microsoft_graph import read_notifications
from integrations.sandbox.microsoft_graph import GraphEmulator
from integrations.sandbox.microsoft_identity import LoginRedirect
from integrations.sandbox.server import HANG, TRUNCATED, Faults
from tests.contract.conftest import (
    ALICE,
    BOB,
    NO_WAIT,
    assert_hung_requests_are_given_up,
    graph_config,
    ids,
    synced,
)
from tests.factories import NOW

CUSTOMER = "erin@acme.com"


def book(graph, subject="Acme pitch", *, start="2026-12-03T10:00:00", minutes=60,
         zone="W. Europe Standard Time", organiser=ALICE, guests=(CUSTOMER,), **fields):
    """A person books a meeting in Outlook."""
    begin = datetime.fromisoformat(start)
    end = (begin + timedelta(minutes=minutes)).isoformat()
    return graph.create_event(
        organiser, subject=subject,
        start={"dateTime": start, "timeZone": zone}, end={"dateTime": end, "timeZone": zone},
        attendees=[{"type": "required", "emailAddress": {"address": guest}} for guest in guests],
        **fields,
    )


# -- signing in ----------------------------------------------------------------------------------


def test_app_only_tokens_are_acquired_once_and_cached(graph, outlook):
    book(graph)
    synced(outlook, {ALICE: None, BOB: None})
    synced(outlook, {ALICE: None})
    assert graph.identity.token_requests == 1


def test_a_wrong_secret_says_what_to_fix(graph, graph_app, outlook_factory, monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_SECRET", "not-the-secret")
    [failed] = outlook_factory().sync({ALICE: None})
    assert isinstance(failed, SyncFailed) and isinstance(failed.error, AuthFailed)
    assert "AADSTS7000215" in str(failed.error) and "client secret" in str(failed.error)


def test_missing_admin_consent_says_so(graph, graph_app, outlook_factory):
    graph_app.consented = False
    [failed] = outlook_factory().sync({ALICE: None})
    assert "has not consented" in str(failed.error)


def test_an_unset_secret_variable_is_a_config_error(graph, graph_app, monkeypatch):
    monkeypatch.delenv("TEST_GRAPH_SECRET", raising=False)
    with pytest.raises(ConfigError, match="TEST_GRAPH_SECRET is not set"):
        graph_module.microsoft_calendar_from_config(graph_config(graph, graph_app))


def test_a_rejected_token_is_replaced_once(graph, outlook):
    book(graph)
    cursor = synced(outlook, {ALICE: None})[ALICE].cursor
    graph.identity.revoke_access_tokens()
    assert ids(synced(outlook, {ALICE: cursor})[ALICE]) == set()
    assert graph.identity.token_requests == 2


def test_a_certificate_signs_the_app_in(graph, tmp_path, closing_later):
    pem, certificate = _self_signed_certificate()
    app = graph.identity.register_app("example.com", certificate_pem=certificate)
    write_owner_only(tmp_path / "app.pem", pem)
    config = graph_config(graph, app, client_secret_env=None,
                          certificate_file=str(tmp_path / "app.pem"))
    adapter = closing_later(graph_module.microsoft_calendar_from_config(
        config, retry=NO_WAIT, login_http=closing_later(LoginRedirect(graph.url))))
    assert adapter.read(ALICE, book(graph)["id"]).title == "Acme pitch"


def _self_signed_certificate() -> tuple[str, str]:
    """(private key and certificate as one PEM, the certificate alone), as an admin makes them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meeting-format-assistant")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
                   .not_valid_after(datetime(2028, 1, 1, tzinfo=UTC))
                   .sign(key, hashes.SHA256()))
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem + certificate_pem, certificate_pem


def test_device_code_sign_in_keeps_an_owner_only_cache(graph, tmp_path, closing_later):
    public_app = graph.identity.register_app("example.com")
    cache_file = tmp_path / "private" / "msal-cache.json"
    login = closing_later(LoginRedirect(graph.url))
    app = device_code_app("example.com", public_app.client_id, load_token_cache(cache_file),
                          authority="https://login.microsoftonline.com", http_client=login)
    shown = []

    def user_signs_in(message: str) -> None:
        shown.append(message)
        # The user signs in before msal's first poll, so the test does not wait its interval.
        graph.identity.approve_device(message.split("enter the code ")[1].split()[0], ALICE)

    assert sign_in_with_device_code(app, cache_file, user_signs_in) == ALICE
    assert "https://microsoft.com/devicelogin" in shown[0]
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600

    config = graph_config(graph, public_app, client_secret_env=None,
                          token_cache_file=str(cache_file), calendars=[ALICE])
    adapter = closing_later(graph_module.microsoft_calendar_from_config(
        config, retry=NO_WAIT, login_http=login))
    event = book(graph)
    assert adapter.read(ALICE, event["id"]).title == "Acme pitch"
    with pytest.raises(Exception, match="403"):
        adapter.read(BOB, event["id"])  # one user's sign-in reaches one mailbox


# -- reading -------------------------------------------------------------------------------------


def test_first_delta_sync_lists_the_window(graph, outlook):
    inside = book(graph)
    book(graph, "Long ago", start="2026-09-01T10:00:00")
    book(graph, "Far ahead", start="2027-09-01T10:00:00")
    result = synced(outlook, {ALICE: None})[ALICE]
    assert result.full_sync and "$deltatoken=" in result.cursor
    assert ids(result) == {inside["id"]}
    meeting = result.changes[0]
    assert meeting.organizer_is_owner and meeting.start == datetime(2026, 12, 3, 9, tzinfo=UTC)


def test_incremental_sync_returns_changes_and_removals(graph, outlook):
    kept, edited, gone = book(graph, "Kept"), book(graph, "Edited"), book(graph, "Gone")
    cursor = synced(outlook, {ALICE: None})[ALICE].cursor
    graph.edit_event(ALICE, edited["id"], subject="Edited again")
    graph.cancel_event(ALICE, gone["id"])
    result = synced(outlook, {ALICE: cursor})[ALICE]
    by_id = {change.event_id: change for change in result.changes}
    assert set(by_id) == {edited["id"], gone["id"]} and not result.full_sync
    assert isinstance(by_id[gone["id"]], EventRemoved)
    assert by_id[edited["id"]].title == "Edited again" and kept["id"] not in by_id


def test_pages_are_followed(graph, outlook, monkeypatch):
    monkeypatch.setattr(graph_module, "PAGE_SIZE", 4)
    booked = {book(graph, f"Meeting {i}", start=f"2026-12-{1 + i:02d}T09:00:00")["id"]
              for i in range(10)}
    graph.reset_counts()
    assert ids(synced(outlook, {ALICE: None})[ALICE]) == booked
    assert graph.calls["POST /v1.0/$batch"] == 3  # three pages, a one-request batch each


def test_an_expired_delta_link_means_one_clean_full_sync(graph, outlook):
    first, second = book(graph, "First"), book(graph, "Second")
    seen: dict[str, str] = {}

    def fresh(result):
        new = {c.event_id for c in result.changes if seen.get(c.event_id) != c.etag}
        seen.update({c.event_id: c.etag for c in result.changes})
        return new

    cursor = synced(outlook, {ALICE: None})[ALICE]
    assert fresh(cursor) == {first["id"], second["id"]}
    graph.edit_event(ALICE, second["id"], subject="Second, renamed")
    graph.store.expire_delta_tokens(ALICE)
    result = synced(outlook, {ALICE: cursor.cursor})[ALICE]
    assert result.full_sync and fresh(result) == {second["id"]}


def test_a_series_comes_once_as_its_master(graph, outlook):
    series = book(graph, "Acme weekly check-in", recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["thursday"]},
        "range": {"type": "numbered", "startDate": "2026-12-03", "numberOfOccurrences": 3}})
    graph.reset_counts()
    [master] = synced(outlook, {ALICE: None})[ALICE].changes
    assert master.event_id == series["id"] and master.series_id == series["id"]
    assert master.title == "Acme weekly check-in" and master.start.hour == 9


def test_delta_lists_occurrences_as_stubs_and_a_moved_event_as_removed(graph, outlook):
    book(graph, "Acme weekly check-in", recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["thursday"]},
        "range": {"type": "numbered", "startDate": "2026-12-03", "numberOfOccurrences": 2}})
    moved = book(graph, "Acme pitch")
    first = outlook.api.call(GraphRequest(
        "GET", f"/users/{ALICE}/calendarView/delta?startDateTime=2026-11-01T00:00:00Z"
        "&endDateTime=2026-12-31T00:00:00Z", ALICE))
    stubs = [i for i in first["value"] if i.get("type") == "occurrence"]
    assert len(stubs) == 2 and set(stubs[0]) == {"@odata.type", "@odata.etag", "id",
                                                 "seriesMasterId", "type", "start", "end"}
    graph.move_event(ALICE, moved["id"], timedelta(days=60))  # out of the window
    later = outlook.api.call(GraphRequest("GET", first["@odata.deltaLink"], ALICE))
    assert later["value"] == [{"@odata.type": "#microsoft.graph.event", "id": moved["id"],
                               "@removed": {"reason": "deleted"}}]


def test_a_thousand_idle_mailboxes_cost_one_batch_per_twenty(graph, outlook):
    mailboxes = [f"user{i:04d}@example.com" for i in range(1000)]
    for mailbox in mailboxes:
        graph.add_user(mailbox)
    cursors = {r.calendar: r.cursor for r in outlook.sync(dict.fromkeys(mailboxes))}
    graph.reset_counts()
    results = list(outlook.sync(cursors))
    assert len(results) == 1000
    assert all(isinstance(r, CalendarChanges) and not r.changes for r in results)
    assert graph.round_trips == 50 and graph.calls["POST /v1.0/$batch"] == 50
    assert graph.calls["GET /v1.0/{…}/calendarView/delta"] == 1000


def test_windows_zones_and_dst_are_read_and_written_right(graph, outlook, planner):
    # The first morning of US summer time: 10:00 in New York is 14:00 UTC, not 15:00.
    event = book(graph, "Acme weekly status", start="2027-03-14T10:00:00",
                 zone="Eastern Standard Time")
    meeting = outlook.read(ALICE, event["id"])
    assert meeting.start == datetime(2027, 3, 14, 14, tzinfo=UTC)
    outlook.update(ALICE, event["id"], planner)
    assert graph.event(ALICE, event["id"])["end"]["dateTime"] == "2027-03-14T14:50:00.0000000"
    in_new_york = {"Prefer": 'outlook.timezone="America/New_York"'}
    local = outlook.api.call(GraphRequest("GET", f"/users/{ALICE}/events/{event['id']}", ALICE,
                                          headers=in_new_york))
    assert local["end"] == {"dateTime": "2027-03-14T10:50:00.0000000",
                            "timeZone": "America/New_York"}
    assert local["originalEndTimeZone"] == "Eastern Standard Time"


# -- writing -------------------------------------------------------------------------------------


def test_a_virtual_meeting_is_shortened_given_teams_and_marked(graph, outlook, planner):
    event = book(graph, "Acme weekly status", body={"contentType": "html",
                                                    "content": "<p>Agenda</p>"})
    outcome = outlook.update(ALICE, event["id"], planner)
    assert outcome.result is WriteResult.WRITTEN
    stored = graph.event(ALICE, event["id"])
    assert stored["end"]["dateTime"] == "2026-12-03T09:50:00.0000000"
    assert stored["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/")
    assert "cameras on" in stored["body"]["content"]
    assert "<p>Agenda</p>" in stored["body"]["content"]
    [mark] = stored["extendedProperties"].values()
    assert json.loads(mark)["meetingFormat.format"] == "virtual"
    again = outlook.read(ALICE, event["id"])
    assert again.mark is not None and again.mark.format is Format.VIRTUAL
    assert outlook.update(ALICE, event["id"], planner).result is WriteResult.UNCHANGED


def test_html_outside_the_note_is_kept_byte_for_byte(graph, outlook, planner):
    event = book(graph, "Acme weekly status", body={"contentType": "html",
                                                    "content": "<div>Agenda<br>1. Numbers</div>"})
    original = graph.event(ALICE, event["id"])["body"]["content"]
    outlook.update(ALICE, event["id"], planner)
    written = graph.event(ALICE, event["id"])["body"]["content"]
    assert block.remove_block(written, is_html=True) == original


def test_a_concurrent_human_edit_survives_the_412(graph, outlook, planner):
    event = book(graph, "Acme weekly status", body={"contentType": "text", "content": "Agenda"})
    calls = []

    def racing(meeting):
        calls.append(meeting.etag)
        if len(calls) == 1:
            graph.edit_event(ALICE, event["id"], body={"contentType": "text",
                                                        "content": "Agenda\r\nBring figures"})
        return planner(meeting)

    outcome = outlook.update(ALICE, event["id"], racing)
    assert outcome.result is WriteResult.WRITTEN and outcome.attempts == 2
    content = graph.event(ALICE, event["id"])["body"]["content"]
    assert content.endswith("Agenda\r\nBring figures") and content.count(block.TEXT_START) == 1


def test_an_event_that_keeps_changing_is_a_conflict(graph, outlook, planner):
    event = book(graph, "Acme weekly status")

    def always(meeting):
        graph.edit_event(ALICE, event["id"], subject=f"Acme weekly status {meeting.etag}")
        return planner(meeting)

    with pytest.raises(Conflict):
        outlook.update(ALICE, event["id"], always)


def test_a_human_undo_is_respected(graph, outlook, planner):
    event = book(graph, "Acme weekly status")
    outlook.update(ALICE, event["id"], planner)
    graph.edit_event(ALICE, event["id"], end=event["end"])
    assert outlook.update(ALICE, event["id"], planner).result is WriteResult.WRITTEN
    assert graph.event(ALICE, event["id"])["end"]["dateTime"] == "2026-12-03T10:00:00.0000000"
    graph.edit_event(ALICE, event["id"], body={"contentType": "text", "content": ""})
    assert outlook.update(ALICE, event["id"], planner).result is WriteResult.LEFT_ALONE


def test_only_the_organisers_own_copy_is_written(graph, outlook, planner):
    book(graph, "Acme weekly status", guests=(CUSTOMER, BOB))
    [copy] = synced(outlook, {BOB: None})[BOB].changes
    assert outlook.update(BOB, copy.event_id, planner).result is WriteResult.NOT_ORGANISER


def test_categories_name_the_format_and_keep_the_organisers_own(graph, outlook_factory, planner):
    adapter = outlook_factory(categories={"in_person": "Meet in person", "virtual": "Video"})
    event = book(graph, "Acme weekly status", categories=["Acme"])
    adapter.update(ALICE, event["id"], planner)
    assert sorted(graph.event(ALICE, event["id"])["categories"]) == ["Acme", "Video"]


# -- trouble -------------------------------------------------------------------------------------


@pytest.mark.parametrize("faults", [
    Faults(rate=0.3, seed=3),
    Faults(rate=0.2, kinds=(TRUNCATED, HANG), hang_seconds=0.6, seed=3),
], ids=["errors-and-drops", "broken-json-and-timeouts"])
def test_throttling_and_outages_are_retried(graph_app, planner, closing_later, monkeypatch,
                                            faults):
    with GraphEmulator(faults) as graph:
        mailboxes = [ALICE, BOB, *(f"user{i}@example.com" for i in range(20))]
        for mailbox in mailboxes:
            graph.add_user(mailbox)
        app = graph.identity.register_app("example.com", secret="s")
        monkeypatch.setenv("TEST_GRAPH_SECRET", "s")
        graph.faults.rate = 0.0
        booked = {m: book(graph, "Acme weekly status", organiser=m)["id"] for m in mailboxes}
        graph.faults.rate = 0.3
        adapter = closing_later(graph_module.microsoft_calendar_from_config(
            # A hung request is given up after 0.2 s and tried again.
            graph_config(graph, app, batch_size=7, request_timeout_seconds=0.2), retry=NO_WAIT,
            login_http=closing_later(LoginRedirect(graph.url))))
        adapter.now = lambda: datetime(2026, 11, 20, tzinfo=UTC)
        results = {r.calendar: r for r in adapter.sync(dict.fromkeys(mailboxes))}
        assert all(ids(results[m]) == {booked[m]} for m in mailboxes)
        for mailbox in mailboxes:
            outcome = adapter.update(mailbox, booked[mailbox], planner)
            assert outcome.result in (WriteResult.WRITTEN, WriteResult.UNCHANGED)
        graph.faults.rate = 0.0
        assert set(faults.kinds) - {"500"} <= set(graph.injected)
        for mailbox in mailboxes:
            body = graph.event(mailbox, booked[mailbox])["body"]["content"]
            assert body.count(block.TEXT_START) == 1


def test_a_request_is_given_up_after_the_configured_timeout(graph, outlook_factory):
    adapter = outlook_factory(request_timeout_seconds=0.25)
    assert_hung_requests_are_given_up(graph, adapter, book(graph)["id"])


def test_retry_after_is_honoured(graph, outlook):
    waits = []
    outlook.api.retry = type(NO_WAIT)(sleep=waits.append, random=lambda: 0.0)
    graph.faults.rate, graph.faults.kinds = 1.0, ("429",)
    timer = threading.Timer(0.3, lambda: setattr(graph.faults, "rate", 0.0))
    timer.start()
    try:
        result = None
        while result is None or isinstance(result, SyncFailed):
            [result] = outlook.sync({ALICE: None})
    finally:
        timer.cancel()
    assert waits and min(waits) >= 1.0  # the emulator's Retry-After: 1


# -- change notifications ------------------------------------------------------------------------


def lookup(*channels: Channel) -> ChannelLookup:
    """channels as the store would find them, by the ids a notification names."""
    ours = {channel.channel_id: channel for channel in channels}
    return lambda ids: {i: ours[i] for i in ids if i in ours}


def test_a_subscription_passes_the_handshake_and_notifies_changes(graph, outlook, receiver):
    channel = outlook.watch(ALICE, receiver.url, "client-state-secret", timedelta(days=30))
    assert channel.expires - NOW <= timedelta(minutes=10_080)
    handshakes = receiver.wait_for(2)  # the notification URL and the lifecycle URL
    assert all(h["path"].startswith("/push?validationToken=") for h in handshakes)
    event = book(graph)
    [notification] = receiver.wait_for_notifications(1)
    notices = read_notifications(notification, lookup(channel))
    assert notices.sync == {ALICE} and notices.rejected == 0
    assert notification["value"][0]["resourceData"]["id"] == event["id"]


def test_a_notification_with_the_wrong_client_state_is_dropped(graph, outlook, receiver):
    channel = outlook.watch(ALICE, receiver.url, "right", timedelta(hours=1))
    forged = {"value": [{"subscriptionId": channel.channel_id, "clientState": "wrong",
                         "changeType": "updated"}]}
    notices = read_notifications(forged, lookup(channel))
    assert notices.sync == set() and notices.rejected == 1
    assert read_notifications("not even json", lookup()).rejected == 0


def test_lifecycle_events_ask_for_renewal_or_a_new_subscription(graph, outlook, receiver):
    channel = outlook.watch(ALICE, receiver.url, "state", timedelta(hours=1))
    for event in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
        graph.send_lifecycle(channel.channel_id, event)
    bodies = receiver.wait_for_notifications(3)
    notices = [read_notifications(body, lookup(channel)) for body in bodies]
    assert [len(n.renew) for n in notices] == [1, 0, 0]
    assert [len(n.recreate) for n in notices] == [0, 1, 0]
    assert all(n.sync == {ALICE} for n in notices)
    renewed = outlook.renew(channel, timedelta(days=2))
    assert renewed.channel_id == channel.channel_id and renewed.expires > channel.expires


def test_a_stopped_subscription_is_gone(graph, outlook, receiver):
    channel = outlook.watch(ALICE, receiver.url, "state", timedelta(hours=1))
    outlook.unwatch(channel)
    outlook.unwatch(channel)  # stopping twice is harmless
    assert not graph.subscriptions


def test_an_endpoint_that_fails_the_handshake_gets_no_subscription(graph, outlook):
    with pytest.raises(Exception, match="ValidationError"):
        outlook.watch(ALICE, "http://127.0.0.1:9/nowhere", "state", timedelta(hours=1))


def _meetings(changes: CalendarChanges) -> list[Meeting]:
    return [c for c in changes.changes if isinstance(c, Meeting)]


def test_the_emulator_refuses_what_graph_refuses(graph, outlook):
    from assistant.errors import ProviderRejected

    delta = f"/users/{ALICE}/calendarView/delta?startDateTime=2026-11-01T00:00:00Z" \
            "&endDateTime=2026-12-31T00:00:00Z"
    with pytest.raises(ProviderRejected, match="not supported"):
        outlook.api.call(GraphRequest("GET", delta + "&$expand=extensions", ALICE))
    # The adapter makes its own links relative; an absolute URL in a batch is refused.
    absolute = "https://graph.microsoft.com/v1.0" + delta
    [answer] = outlook.api.batch([GraphRequest("GET", absolute, ALICE)])
    assert isinstance(answer, ProviderRejected) and "Invalid batch payload" in str(answer)


def test_sign_in_waits_for_first_use_and_an_outage_is_retried_not_a_crash(graph_app, monkeypatch,
                                                                          closing_later):
    monkeypatch.setenv("TEST_GRAPH_SECRET", graph_app.secret)
    graph = GraphEmulator().start()
    config = graph_config(graph, graph_app)
    login = closing_later(LoginRedirect(graph.url))
    graph.stop()  # Microsoft is unreachable when the service starts
    adapter = closing_later(graph_module.microsoft_calendar_from_config(
        config, retry=NO_WAIT, login_http=login))
    [failed] = adapter.sync({ALICE: None})
    assert isinstance(failed, SyncFailed) and "could not reach Microsoft's sign-in" in str(
        failed.error)


def test_a_damaged_token_cache_is_a_config_error_naming_the_file(graph, graph_app, tmp_path):
    damaged = tmp_path / "cache.json"
    damaged.write_text("{not json")
    config = graph_config(graph, graph_app, client_secret_env=None, token_cache_file=str(damaged))
    with pytest.raises(ConfigError, match="cache.json"):
        graph_module.microsoft_calendar_from_config(config)
