"""`assistant run` and `assistant demo` as an admin and a newcomer use them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from assistant.cli import cli
from assistant.store import Store
from assistant.store.tables import Outbox, WatchedCalendar
from integrations.sandbox.environment import SandboxEnvironment, to_toml
from tests.end_to_end.conftest import ALICE, BOB, book_google, book_outlook


def test_demo_shows_the_whole_flow_and_leaves_a_report(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "First pitch to Northwind Traders" in out and "customer meeting" in out
    assert "Team stand-up" in out and "inside the organisation" in out
    assert "Subject: First pitch to Northwind Traders: in person or virtual?" in out
    assert "60 minutes became 50; video link added" in out
    assert "We will have our cameras on and would love it if you did too." in out
    assert "'Call with Initech' is now cancelled" in out
    assert "none twice" in out
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "60 minutes → 50 minutes" in report and "<script" not in report


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
    port = _free_port()
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
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'assistant_emails_sent_total{kind="question"} 1.0' in metrics
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
    store = Store(database)
    try:
        with store.transaction() as session:
            held = [row.lease_owner for model in (WatchedCalendar, Outbox)
                    for row in session.scalars(select(model)) if row.lease_owner]
        assert held == []
    finally:
        store.close()


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
