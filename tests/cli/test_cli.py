"""The `assistant` command as admins script it: exit codes, messages and JSON shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import block, resources
from assistant.cli import cli

EXAMPLES = resources.config_dir() / "examples"
EXAMPLE_CONFIG = str(resources.example_config_path())
NOW = ["--now", "2026-12-01T09:00:00Z"]


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_recommend_json_from_stdin():
    document = {"answers": {"importance": "A", "7": "B", "type": "virtual"},
                "on_site_equipment": False, "travel_policy": None, "organiser_choice": None}
    result = run("recommend", "--answers", "-", "--json", input=json.dumps(document))
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["format"] == "virtual"
    assert output["totals"] == {"in_person": 1, "virtual": 2}
    assert output["decided_by"] == "count"
    assert output["reasons"] == ["Trust and rapport already exist (row 7).",
                                 "Simple, direct, fact-based (row 11)."]


def test_recommend_hard_reasons_and_case_insensitive_values():
    document = {"answers": {"IMPORTANCE": "b"}, "on_site_equipment": True,
                "organiser_choice": "IN_PERSON"}
    output = json.loads(run("recommend", "--answers", "-", "--json",
                            input=json.dumps(document)).stdout)
    assert (output["format"], output["decided_by"]) == ("in_person", "organiser_choice")


def test_recommend_text_from_a_file(tmp_path):
    path = tmp_path / "answers.json"
    path.write_text('{"travel_policy": "no flights this quarter"}')
    result = run("recommend", "--answers", str(path))
    assert result.exit_code == 0
    assert result.stdout.startswith("Recommendation: virtual (decided by travel policy;")
    assert "Travel is ruled out: no flights this quarter." in result.stdout


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"answers": {"13": "A"}}', "stdin: unknown checklist row '13'"),
        ('{"answers": {"rapport": "maybe"}}', "stdin: row 'rapport': unknown answer 'maybe'"),
        ('{"answers": {"rapport": 1}}', "row 'rapport': answer 1 must be A or B"),
        ('{"answers": {"7": "A", "rapport": "B"}}', "row 7 (rapport) is answered twice"),
        ('{"answer": {}}', "unknown key 'answer'"),
        ('{"organiser_choice": "hybrid"}', "unknown answer 'hybrid'"),
        ('{"on_site_equipment": "yes"}', "on_site_equipment: 'yes' must be true or false"),
        ("[1, 2]", "must be a JSON object"),
        ("{nope", "stdin: not valid JSON"),
    ],
)
def test_recommend_refuses_what_it_cannot_read(document, message):
    result = run("recommend", "--answers", "-", input=document)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_preview_json_shape_for_the_example():
    result = run("preview", str(EXAMPLES / "google-event.json"), "--config", EXAMPLE_CONFIG,
                 "--history", str(EXAMPLES / "history.json"), *NOW, "--json")
    assert result.exit_code == 0, result.stderr
    output = json.loads(result.stdout)
    assert set(output) == {"customer_meeting", "why", "customer_domains", "inferred",
                           "questions", "recommendation", "changes"}
    assert output["customer_meeting"] is True
    assert output["customer_domains"] == ["acme.com"]
    assert output["inferred"]["importance"] == {
        "answer": "A", "why": "the title says 'kick-off'", "source": "inferred"}
    assert output["inferred"]["values"]["source"] == "default"
    # Six rows in person, none virtual: six answers the other way would only tie, and row 1
    # breaks a tie in person. Nothing worth asking.
    assert output["questions"] == []
    assert output["recommendation"]["format"] == "in_person"
    assert output["recommendation"]["totals"] == {"in_person": 6, "virtual": 0}
    changes = output["changes"]
    assert changes["end"] is None and changes["add_video_link"] is False
    assert changes["description"].startswith(block.TEXT_START)
    assert changes["description"].endswith("\n\nGoals for the first quarter and who does what.\n"
                                           "Please bring the rollout plan.")


def test_preview_answers_change_the_recommendation_and_the_end():
    answers = '{"answers": {"1": "B", "4": "B", "11": "B"}, "organiser_choice": "virtual"}'
    result = run("preview", str(EXAMPLES / "google-event.json"), "--org-domain", "example.com",
                 "--answers", "-", *NOW, "--json", input=answers)
    output = json.loads(result.stdout)
    assert output["recommendation"]["decided_by"] == "organiser_choice"
    assert output["changes"]["end"] == "2026-12-08T14:50:00+01:00"
    assert 1 not in output["questions"] and 4 not in output["questions"]


def test_preview_without_config_assumes_the_organisers_domain():
    result = run("preview", str(EXAMPLES / "google-event.json"), *NOW)
    assert result.exit_code == 0
    assert "assuming your organisation is example.com" in result.stderr
    assert "Customer meeting: yes" in result.stdout
    assert "Invite before:" in result.stdout and "Invite after:" in result.stdout


def test_preview_of_an_internal_meeting_changes_nothing():
    result = run("preview", str(EXAMPLES / "google-event.json"), "--org-domain", "example.com",
                 "--org-domain", "acme.com", *NOW, "--json")
    output = json.loads(result.stdout)
    assert output["customer_meeting"] is False
    assert output["why"] == "every attendee is inside the organisation"
    assert output["recommendation"] is None and output["changes"] is None
    assert output["questions"] == [] and output["inferred"] == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ('{"summary": "x"}', "the event has no 'id'"),
        ('{"id": "x"}', "cannot tell whether this is a Google Calendar or a Microsoft Graph event"),
        ('{"kind": "calendar#event", "id": "x", "status": "cancelled"}',
         "describes a deleted event"),
        ('{"kind": "calendar#event", "id": "x", "start": {"dateTime": "soon"}, "end": {}}',
         "start.dateTime: 'soon' is not a date-time"),
    ],
)
def test_preview_explains_unusable_event_files(tmp_path, content, message):
    path = tmp_path / "event.json"
    path.write_text(content)
    result = run("preview", str(path), "--org-domain", "example.com")
    assert result.exit_code == 1
    assert message in result.stderr and str(path) in result.stderr


def test_preview_with_a_missing_file_is_a_clear_error(tmp_path):
    result = run("preview", str(tmp_path / "missing.json"))
    assert result.exit_code == 1
    assert "cannot read" in result.stderr and "No such file" in result.stderr


def test_preview_rejects_a_bad_org_domain():
    result = run("preview", str(EXAMPLES / "google-event.json"), "--org-domain", "not a domain")
    assert result.exit_code == 1 and "--org-domain" in result.stderr


def test_check_config_ok_text_and_json():
    result = run("check-config", EXAMPLE_CONFIG)
    assert result.exit_code == 0 and result.stdout.startswith(f"{EXAMPLE_CONFIG}: OK")
    output = json.loads(run("check-config", EXAMPLE_CONFIG, "--json").stdout)
    assert output["ok"] is True and output["checklist_rows"] == 12


def test_check_config_failure_lists_problems(tmp_path):
    path = tmp_path / "assistant.toml"
    path.write_text('[organisation]\ndomains = ["example.com"]\n[policy]\nvirtual_minute = 45\n')
    result = run("check-config", str(path))
    assert result.exit_code == 1
    assert f"invalid config {path}:" in result.stderr
    assert "policy.virtual_minute: unknown key (did you mean 'virtual_minutes'?)" in result.stderr
    output = json.loads(run("check-config", str(path), "--json").stdout)
    assert output["ok"] is False and output["file"] == str(path)


def test_check_config_reads_the_environment_variable(monkeypatch):
    monkeypatch.setenv("ASSISTANT_CONFIG", EXAMPLE_CONFIG)
    assert run("check-config").exit_code == 0


def test_check_config_without_any_file_says_where_to_start(monkeypatch, tmp_path):
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run("check-config")
    assert result.exit_code == 1
    assert f"start from a copy of {resources.example_config_path()}" in result.stderr


def test_check_config_reports_a_broken_own_checklist(tmp_path):
    (tmp_path / "mine.toml").write_text("[[rows]]\nnumber = 1\n")
    path = tmp_path / "assistant.toml"
    path.write_text('checklist = "mine.toml"\n[organisation]\ndomains = ["example.com"]\n')
    result = run("check-config", str(path))
    assert result.exit_code == 1 and str(tmp_path / "mine.toml") in result.stderr


@pytest.mark.parametrize("command", [[], ["recommend"], ["preview"], ["check-config"]])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage: " in result.stdout


def test_installed_console_script_runs():
    script = Path(sys.executable).parent / "assistant"
    result = subprocess.run([str(script), "recommend", "--json"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decided_by"] == "tie_break"


def test_usage_errors_exit_2():
    result = CliRunner().invoke(cli, ["preview"])
    assert result.exit_code == 2 and "give EVENT_FILE, or --calendar" in result.stderr


def test_history_may_be_a_graph_page_or_a_single_event(tmp_path):
    event = json.loads((EXAMPLES / "graph-event.json").read_text())
    earlier = {**event, "id": "earlier",
               "start": {"dateTime": "2026-10-01T15:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-10-01T16:00:00", "timeZone": "UTC"}}
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"@odata.context": "x", "value": [earlier]}))
    single = tmp_path / "single.json"
    single.write_text(json.dumps(earlier))
    for history in (page, single):
        result = run("preview", str(EXAMPLES / "graph-event.json"), "--org-domain", "example.com",
                     "--history", str(history), *NOW, "--json")
        assert result.exit_code == 0, result.stderr
        inferred = json.loads(result.stdout)["inferred"]
        assert "rapport" not in inferred  # met before, so not a first meeting
        # Two months earlier: not within the two weeks around the meeting.
        assert inferred["number"]["why"] == "no other customer meeting within two weeks"


def test_history_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "history.json"
    path.write_text('{"items": "none"}')
    result = run("preview", str(EXAMPLES / "google-event.json"), "--history", str(path))
    assert result.exit_code == 1 and "history must be a JSON list" in result.stderr


def test_parse_reply_json_has_the_documented_shape():
    result = run("parse-reply", str(EXAMPLES / "reply.eml"), "--config", EXAMPLE_CONFIG, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "from": "alice@example.com", "token": "k3q7zt2mxa4bq5c6d7efgh2ijk", "auto_reply": False,
        "answers": {"priorities": "A", "values": "B", "discussion": "A"}, "positional": [],
        "decision": None, "unclear": False, "problems": [],
        "read_by": {"priorities": "row number", "values": "row number", "discussion": "row number"},
    }


def test_parse_reply_reads_stdin_and_explains_an_unclear_reply():
    reply = b"From: bob@example.com\nSubject: Re: x\n\n4C please\n"
    result = CliRunner().invoke(cli, ["parse-reply", "-"], input=reply)
    assert result.exit_code == 0, result.output
    assert "unclear, a clarification would be sent" in result.output
    assert "answer with A or B" in result.output and "token: (none" in result.output
