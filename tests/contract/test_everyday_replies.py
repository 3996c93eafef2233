"""Everyday replies: 45 replies as busy organisers type them in real mail clients.

Each case in tests/data/everyday_replies/ is a complete reply to a realistic question email
(2-4 rows asked, quoted as its client quotes it), and expected.json holds the reading a careful
person would make of it: row answers by checklist key, bare positional letters, a decision in
words, and whether the reply is unclear (see the README there for every case). The
expectations were written by hand, not by running the reader: they are the specification the
reader is measured against, so a failing case is the reader's to fix, never the file's.

Only the four reading keys are compared (answers, positional, decision, unclear), on the JSON
that `assistant parse-reply FILE --json` prints, run in-process.
"""

from __future__ import annotations

import json
import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import resources
from assistant.cli import cli
from assistant.reply_mail import read_reply_email

CORPUS = Path(__file__).resolve().parent.parent / "data" / "everyday_replies"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
ASSISTANT = "meeting-assistant@example.com"
CONFIG = str(resources.example_config_path())  # its mail.sender is ASSISTANT
READING = ("answers", "positional", "decision", "unclear")
TOKEN = re.compile(r"meeting-assistant\+([a-z2-7]{26})@example\.com")


def cli_reading(path: Path) -> dict:
    """The reading as `assistant parse-reply FILE --config CONFIG --json` prints it."""
    result = CliRunner().invoke(cli, ["parse-reply", str(path), "--config", CONFIG, "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    return {key: printed.get(key) for key in READING}


def test_the_corpus_is_whole():
    names = {path.stem for path in CORPUS.glob("*.eml")}
    assert names == set(EXPECTED) and len(names) == 45
    for name, reading in EXPECTED.items():
        assert set(reading) == set(READING), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_case_is_a_reply_to_its_own_question(name):
    """The corpus itself, read with the standard library only: a reply from an organiser at
    example.com to the assistant's plus address, its token in the subject tag too."""
    raw = (CORPUS / f"{name}.eml").read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    to_token = TOKEN.search(str(message["To"])).group(1)
    assert f"[MFA-{to_token}]" in str(message["Subject"])
    assert str(message["From"]).endswith("@example.com>")
    assert message["In-Reply-To"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_everyday_reply_reads_as_a_careful_person_reads_it(name):
    path = CORPUS / f"{name}.eml"
    reply = read_reply_email(path.read_bytes(), ASSISTANT)
    assert cli_reading(path) == EXPECTED[name], (
        f"{name}: the reader took this as the new text:\n{reply.new_text}")
