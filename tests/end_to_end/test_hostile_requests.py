"""What a stranger on the network can do to the web app, served for real by uvicorn: no more
than the app promises. Link scanners change nothing, a flood of bogus notifications costs one
query, /metrics names nobody and can be closed, and a body that never comes is given up."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import event

from assistant import web
from assistant.models import Provider
from assistant.store.tables import Outbox, UsedLink
from tests.end_to_end.conftest import ALICE, BOB, book_google
from tests.end_to_end.serving import HTTP_TIMEOUT, Site, answer_links, served
from tests.end_to_end.test_web import conversation_states, count_rows, open_channels

# -- one-click links -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"])
def test_only_post_on_a_one_click_link_changes_anything(site, sandbox, method):
    """Mail security scanners and link previewers send HEAD; Starlette answers HEAD on every
    GET route, so HEAD must be as harmless as GET."""
    service = site.service
    book_google(sandbox, "Pitch to Northwind")
    service.cycle()
    [question] = sandbox.mail.wait_for(1)
    virtual = answer_links(question)["virtual"]

    for _ in range(3):
        answer = requests.request(method, virtual, timeout=HTTP_TIMEOUT, allow_redirects=False)
        assert answer.status_code in (200, 405), (method, answer.status_code)
    service.deliver()
    assert conversation_states(service) == ["asked"]
    assert count_rows(service, UsedLink) == 0
    assert count_rows(service, Outbox, Outbox.kind == "annotate") == 0
    assert len(sandbox.mail.messages) == 1  # no confirmation went out

    applied = requests.post(virtual, timeout=HTTP_TIMEOUT)  # the organiser's own click
    assert applied.status_code == 200 and "Thank you" in applied.text
    assert conversation_states(service) == ["answered"]


# -- Graph notifications ---------------------------------------------------------------------------

@pytest.fixture()
def channel_queries(site) -> Iterator[list[str]]:
    """The SQL statements that read the channels table while the test runs."""
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if " channels" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = site.service.store.engine
    event.listen(engine, "before_cursor_execute", seen)
    yield statements
    event.remove(engine, "before_cursor_execute", seen)


def test_twenty_thousand_bogus_notification_items_cost_one_query(site, sandbox, channel_queries):
    service = site.service
    service.cycle()
    open_channels(site, sandbox)
    [(subscription_id, channel)] = service.push.live(Provider.MICROSOFT).items()
    channel_queries.clear()
    bogus = {"value": [{"subscriptionId": f"{n:05d}", "clientState": "guess"}
                       for n in range(20_000)]}
    body = json.dumps(bogus, separators=(",", ":")).encode()
    assert len(body) < web.MAX_NOTIFICATION_BYTES
    refused = requests.post(site.url + "/push/microsoft", data=body,
                            headers={"Content-Type": "application/json"}, timeout=HTTP_TIMEOUT)
    assert refused.status_code == 403
    assert len(channel_queries) == 1, channel_queries
    assert site.wakes == 0

    # A genuine item among a thousand copies of it: still one query, one sync due.
    genuine = {"subscriptionId": subscription_id, "clientState": channel.token,
               "changeType": "updated", "resource": f"Users/{BOB}/Events/x"}
    accepted = requests.post(site.url + "/push/microsoft", json={"value": [genuine] * 1000},
                             timeout=HTTP_TIMEOUT)
    assert accepted.status_code == 202
    assert len(channel_queries) == 2
    assert site.wakes == 1


def test_a_notification_body_that_never_comes_is_given_up(site, monkeypatch):
    monkeypatch.setattr(web, "BODY_TIMEOUT_SECONDS", 0.5)
    host, port = site.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT) as slow:
        slow.sendall(b"POST /push/microsoft HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"va")
        answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer


# -- metrics ---------------------------------------------------------------------------------------

@pytest.fixture()
def closed_metrics(sandbox, database_url, monkeypatch) -> Iterator[Site]:
    monkeypatch.setenv("ASSISTANT_METRICS_TOKEN", "scrape-me-please-0123456789")
    with served(sandbox, database_url, metrics_token_env="ASSISTANT_METRICS_TOKEN") as site:
        yield site


def test_metrics_behind_a_bearer_token_answer_only_with_it(closed_metrics):
    site = closed_metrics
    site.service.metrics.watch_store(site.service.store, site.service.clock)
    site.service.cycle()
    url = site.url + "/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic scrape-me-please-0123456789"}):
        refused = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "assistant_" not in refused.text
    scraped = requests.get(url, timeout=HTTP_TIMEOUT,
                           headers={"Authorization": "Bearer scrape-me-please-0123456789"})
    assert scraped.status_code == 200
    assert "assistant_sync_lag_seconds{" in scraped.text
    assert ALICE not in scraped.text and BOB not in scraped.text
    assert requests.get(site.url + "/healthz", timeout=HTTP_TIMEOUT).status_code == 200
