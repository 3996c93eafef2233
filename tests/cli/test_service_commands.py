"""`assistant run` and `assistant demo` as an admin and a newcomer use them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from assistant import resources
from assistant.cli import cli
from assistant.store.tables import JobLease, Outbox, WatchedCalendar
from integrations.sandbox.environment import SandboxEnvironment, to_toml
from integrations.sandbox.server import free_port
from tests.end_to_end.conftest import ALICE, BOB, book_google, book_outlook, store_session


def test_demo_shows_the_whole_flow_and_leaves_a_report(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "First pitch to Northwind Traders" in out and "customer meeting" in out
    assert "Team stand-up" in out and "inside the organisation" in out
    assert "Subject: Acme weekly check-in: in person or virtual?" in out
    assert "Without an answer by " in out and "I'll go with virtual." in out
    # The pitch is settled by what the calendar and the admin's facts tell: never asked,
    # and its confirmation says how to change it in one word.
    assert "Subject: First pitch to Northwind Traders: in person or virtual?" not in out
    assert "will be in person. No answer of yours could change that, so I didn't ask." in out
    assert 'To change it, reply "virtual".' in out
    assert "(bob@example.com's answer of " in out and "for contoso.example)" in out
    figures = re.search(r"questions per meeting: median ([\d.]+);.*\n.*"
                        r"Decided with no question: (\d+) of", out)
    assert figures is not None, out
    assert float(figures.group(1)) <= 2 and int(figures.group(2)) >= 1
    assert "60 minutes became 50; video link added" in out
    assert "We will have our cameras on and would love it if you did too." in out
    assert "cancels 'Call with Initech'; the assistant now has it as cancelled" in out
    assert "none twice" in out
    assert "(letters in the order asked: rows " in out
    # Jürgen's Google Calendar is in German, and the admin noted that Kunde GmbH reads German.
    assert "Subject: Workshop mit Kunde GmbH: vor Ort [MFA-" in out
    assert "| Hallo Juergen," in out and "deshalb habe ich nicht gefragt" in out
    assert "Wir schalten unsere Kameras ein und würden uns freuen, wenn Sie das auch tun." in out
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "After: 50 minutes, a video link added" in report and "<script" not in report
    assert "The organiser's own text, kept: “Agenda to follow.”" in report


def test_the_config_the_demo_leaves_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(cli, ["demo"], catch_exceptions=False)  # the default, relative folder
    monkeypatch.chdir(tmp_path / "assistant-demo")
    result = CliRunner().invoke(cli, ["check-config", "assistant.toml"], catch_exceptions=False)
    assert result.exit_code == 0
    assert f"state: sqlite:///{tmp_path}/assistant-demo/assistant.sqlite3" in result.output
    assert "(NOT FOUND)" not in result.output


@pytest.fixture()
def sandbox(tmp_path):
    environment = SandboxEnvironment(tmp_path / "sandbox", google_users=[ALICE],
                                     microsoft_users=[BOB]).start()
    yield environment
    environment.stop()


def command(sandbox, config_path, *args):
    env = {**os.environ, **sandbox.environ}
    return [sys.executable, "-m", "assistant", *args, "--config", str(config_path)], env


def test_run_once_does_one_real_cycle_and_exits(sandbox, tmp_path):
    book_google(sandbox, "Pitch to Northwind")
    book_outlook(sandbox, "Northwind onboarding")
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config("sqlite:///assistant.sqlite3")))
    args, env = command(sandbox, config, "run", "--once")
    finished = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert sorted(m["To"] for m in sandbox.mail.wait_for(2)) == [ALICE, BOB]
    assert (tmp_path / "assistant.sqlite3").exists()  # relative to the config file
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and sandbox.mail.deliveries == 2


def test_run_stops_cleanly_on_sigterm_and_gives_its_work_back(sandbox, tmp_path):
    port = free_port()
    database = f"sqlite:///{tmp_path / 'assistant.sqlite3'}"
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config(database, service={"listen": f"127.0.0.1:{port}"})))
    book_google(sandbox, "Pitch to Northwind")
    args, env = command(sandbox, config, "run")
    worker = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert sandbox.mail.wait_for(1, timeout=30), "no question within 30 s"
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # The counter goes up once the mail server's "accepted" is recorded, just after.
        sent = 'assistant_emails_sent_total{kind="question"} 1.0'
        deadline = time.monotonic() + 10
        while sent not in (metrics := requests.get(f"http://127.0.0.1:{port}/metrics",
                                                   timeout=5).text):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
    assert leases_held(database) == []


def test_run_with_a_bad_config_names_the_file_and_the_key(tmp_path):
    config = tmp_path / "assistant.toml"
    config.write_text('[organisation]\ndomains = ["example.com"]\n[service]\n'
                      'database_url = "mysql://x"\n')
    result = CliRunner().invoke(cli, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 1
    assert str(config) in result.output and "service.database_url" in result.output


def test_run_without_mail_settings_says_what_is_missing(tmp_path):
    config = tmp_path / "assistant.toml"
    config.write_text('[organisation]\ndomains = ["example.com"]\n')
    result = CliRunner().invoke(cli, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 1 and "[mail]" in result.output


def leases_held(database: str) -> list[str]:
    """Whoever still holds a calendar, an outbox row or a job in the store at database."""
    with store_session(database) as session:
        held = [row.lease_owner for model in (WatchedCalendar, Outbox)
                for row in session.scalars(select(model)) if row.lease_owner]
        return held + [job.owner for job in session.scalars(select(JobLease)) if job.owner]


def test_check_config_says_which_secrets_and_files_are_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSISTANT_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("ASSISTANT_MICROSOFT_CLIENT_SECRET", "s3cret")
    result = CliRunner().invoke(cli, ["check-config", str(resources.example_config_path())])
    assert result.exit_code == 0
    assert ("secret ASSISTANT_TOKEN_SECRET (mail.token_secret_env): NOT SET in this environment"
            in result.output)
    assert "secret ASSISTANT_MICROSOFT_CLIENT_SECRET (microsoft.client_secret_env): set" \
        in result.output
    assert "s3cret" not in result.output
    assert "google-service-account.json (NOT FOUND)" in result.output


def test_check_config_says_which_secret_files_others_may_read(tmp_path):
    key = tmp_path / "key.json"
    key.write_text("{}")
    key.chmod(0o644)
    config = tmp_path / "assistant.toml"
    config.write_text(f'[organisation]\ndomains = ["example.com"]\n[google]\n'
                      f'calendars = ["alice@example.com"]\nservice_account_key_file = "{key}"\n')
    result = CliRunner().invoke(cli, ["check-config", str(config)])
    assert "1 file(s) others may read" in result.output
    assert f"{key} (others may read it: run `chmod 600 {key}`)" in result.output
    key.chmod(0o600)
    result = CliRunner().invoke(cli, ["check-config", str(config), "--json"])
    assert '"owner_only": true' in result.output


def test_sigterm_mid_backlog_stops_soon_and_the_rest_goes_out_once_after_a_restart(
    sandbox, tmp_path
):
    port = free_port()
    database = f"sqlite:///{tmp_path / 'assistant.sqlite3'}"
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config(database, service={"listen": f"127.0.0.1:{port}"},
                                             mail={"daily_question_cap": 100})))
    for n in range(12):
        book_google(sandbox, f"Pitch {n} to Northwind")
    sandbox.mail.delay_seconds = 0.3  # a slow mail server: the backlog takes ~4 s
    args, env = command(sandbox, config, "run")
    worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert sandbox.mail.wait_for(2, timeout=30), "nothing was sent within 30 s"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0  # the current email, not the whole backlog
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    sent_before_restart = sandbox.mail.deliveries
    assert sent_before_restart < 12
    assert leases_held(database) == []  # given back at once, not left to expire
    sandbox.mail.delay_seconds = 0
    again, env = command(sandbox, config, "run", "--once")
    assert subprocess.run(again, env=env, capture_output=True, timeout=60).returncode == 0
    assert sandbox.mail.deliveries == 12 == len(sandbox.mail.messages)


def test_run_names_the_key_of_a_sign_in_file_it_cannot_read(sandbox, tmp_path, monkeypatch):
    for name, value in sandbox.environ.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "assistant.toml"
    config.write_text(to_toml(sandbox.config(
        "sqlite:///assistant.sqlite3", google={"service_account_key_file": "nope.json"})))
    result = CliRunner().invoke(cli, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 1
    assert f"invalid config {config}:" in result.output
    assert f"google.service_account_key_file: {tmp_path / 'nope.json'} is not a " \
        "service-account key file" in result.output
    assert not (tmp_path / "assistant.sqlite3").exists()  # a bad config leaves nothing behind
