"""A new admin follows what `assistant demo --serve` prints, command by command, as printed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from integrations.sandbox.server import free_port

PRINTED_STEPS = "Try it as an admin, in a second terminal:"


def start_demo(tmp_path: Path, listen: str) -> tuple[subprocess.Popen[str], list[str]]:
    """The demo serving, and the lines it printed up to its last hint."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "assistant", "demo", "--serve", "--listen", listen,
         "--out", str(tmp_path / "demo")], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "(a refusal)" not in "".join(lines[-1:]):
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    assert PRINTED_STEPS in lines, "\n".join(lines)
    return demo, lines


def the_steps(lines: list[str]) -> tuple[dict[str, str], list[list[str]]]:
    """The environment the steps set up, and the assistant commands they run, in order."""
    steps = lines[lines.index(PRINTED_STEPS) + 1:lines.index("Other sign-ins to try:")]
    env = dict(os.environ)
    commands = []
    for step in (line.strip() for line in steps):
        if step.startswith("set -a; . "):
            secrets_file = Path(step.split(". ", 1)[1].split(";")[0])
            env.update(line.split("=", 1) for line in secrets_file.read_text().splitlines())
        elif step.startswith("export "):
            for assignment in shlex.split(step.removeprefix("export ")):
                name, value = assignment.split("=", 1)
                env[name] = os.path.expanduser(value.replace("$PATH", env.get("PATH", "")))
        else:
            command = step.split("   ")[0]  # the words after it are a comment
            commands.append(shlex.split(command))
    return env, commands


def assistant(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_printed_steps_connect_an_account_add_calendars_and_report(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    demo, lines = start_demo(tmp_path, listen)
    try:
        env, commands = the_steps(lines)
        env["ASSISTANT_SECRETS_DIR"] = str(tmp_path / "secrets")  # not the real home folder
        assert [c[:3] for c in commands] == [
            ["assistant", "auth", "google"], ["assistant", "calendars", "add"],
            ["assistant", "calendars", "add"], ["assistant", "status"],
            ["assistant", "report", "--format"]]
        for command in commands:
            assert shutil.which(command[0], path=env["PATH"]), "the steps put it on PATH"
            done = assistant(env, *command[1:])
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert "Connected." in assistant(env, *commands[0][1:]).stdout

        # The serving worker syncs the new calendars within its interval; a cycle now is sooner.
        assert assistant(env, "run", "--once").returncode == 0
        status = json.loads(assistant(env, "status", "--json").stdout)
        synced = {c["address"]: c["last_synced_at"] for c in status["calendars"]}
        assert synced["carol@example.com"] and synced["dan@example.com"]
        for added in ("carol@example.com", "dan@example.com"):  # each meeting taken up
            taken = json.loads(assistant(env, "report", "--json", "--team", added).stdout)
            assert taken["meetings"]["detected"] == 1, (added, taken["meetings"])
        report = (tmp_path / "demo" / "team-report.html").read_text()
        assert report.count("<svg") >= 5

        page = requests.get(f"http://{listen}/admin/", allow_redirects=False, timeout=10)
        assert page.status_code == 303 and page.headers["location"].endswith("/admin/login")
    finally:
        demo.terminate()
        demo.communicate(timeout=30)  # reads what is left and closes the pipe
