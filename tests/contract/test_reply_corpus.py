"""The reply corpus: 70 replies as real mail clients write them, each with its expected reading.

tests/data/replies/README.md describes every case (client, style, trick). The reading is the
one `assistant parse-reply --json` prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.presenting import reply_json
from assistant.replies import read_reply
from assistant.reply_mail import read_reply_email

CORPUS = Path(__file__).resolve().parent.parent / "data" / "replies"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
ASSISTANT = "meeting-assistant@example.com"


def reading_of(name: str, checklist) -> dict:
    reply = read_reply_email((CORPUS / f"{name}.eml").read_bytes(), ASSISTANT)
    return reply_json(reply, read_reply(reply, checklist), checklist)


def test_the_corpus_is_whole():
    names = {path.stem for path in CORPUS.glob("*.eml")}
    assert names == set(EXPECTED) and len(names) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reply_reads_as_expected(name, checklist):
    """Compared on the keys the corpus records; `problems` and `read_by` explain a reading."""
    reading = reading_of(name, checklist)
    assert {key: reading[key] for key in EXPECTED[name]} == EXPECTED[name]
