"""The checklist file: the shipped one is complete, and a broken one says exactly what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import resources
from assistant.checklist import load_checklist, parse_side
from assistant.errors import ConfigError, InputError
from assistant.models import Side

DESIGN_ROWS = [
    (1, "importance", "Occasion"),
    (2, "priorities", "Occasion"),
    (3, "number", "Customers"),
    (4, "stakeholders", "Customers"),
    (5, "values", "Customers"),
    (6, "location", "Relationship"),
    (7, "rapport", "Relationship"),
    (8, "stability", "Interaction"),
    (9, "discussion", "Interaction"),
    (10, "power", "Information"),
    (11, "type", "Information"),
    (12, "enablers", "Information"),
]


def test_shipped_checklist_has_the_design_rows(checklist):
    assert [(row.number, row.key, row.area) for row in checklist] == DESIGN_ROWS
    for row in checklist:
        assert row.question and row.a and row.b


def test_internal_rows_have_no_invite_wording(checklist):
    # Competitors and power are sales reasoning: a customer must never read them in an invite.
    for key in ("number", "stability", "power"):
        row = checklist.row(key)
        assert row.invite_wording(Side.A) == row.invite_wording(Side.B) == ""


@pytest.mark.parametrize("name", ["7", 7, " rapport ", "RAPPORT"])
def test_rows_are_found_by_number_or_key(checklist, name):
    assert checklist.find(name).key == "rapport"


@pytest.mark.parametrize("name", ["0", "13", "rapportt", ""])
def test_unknown_rows_are_named_in_the_error(checklist, name):
    with pytest.raises(InputError, match="unknown checklist row"):
        checklist.find(name)


@pytest.mark.parametrize(
    ("text", "side"),
    [("A", Side.A), ("a", Side.A), ("in person", Side.A), ("IN_PERSON", Side.A),
     ("in-person", Side.A), ("B", Side.B), ("virtual", Side.B), ("Video", Side.B)],
)
def test_sides_are_read_from_letters_or_words(text, side):
    assert parse_side(text) is side


@pytest.mark.parametrize("text", ["C", "", "maybe", "AB"])
def test_other_answers_are_refused(text):
    with pytest.raises(InputError):
        parse_side(text)


def _shipped_text() -> str:
    return resources.default_checklist_path().read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checklist.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_key_is_reported_with_both_rows(tmp_path):
    text = _shipped_text().replace('key = "priorities"', 'key = "importance"')
    with pytest.raises(ConfigError) as caught:
        load_checklist(_write(tmp_path, text))
    assert str(tmp_path / "checklist.toml") in str(caught.value)
    assert "rows[1].key: 'importance' is already used by rows[0]" in str(caught.value)


def test_duplicate_number_is_reported(tmp_path):
    text = _shipped_text().replace("number = 2\n", "number = 1\n")
    with pytest.raises(ConfigError, match=r"rows\[1\]\.number: 1 is already used"):
        load_checklist(_write(tmp_path, text))


def test_missing_row_is_reported(tmp_path):
    text = _shipped_text()
    text = text[: text.rindex("[[rows]]")]
    with pytest.raises(ConfigError, match="exactly 12 rows, found 11"):
        load_checklist(_write(tmp_path, text))


def test_blank_side_is_reported(tmp_path):
    text = _shipped_text().replace('b = "trust and rapport already exist"', 'b = "   "')
    with pytest.raises(ConfigError, match=r"rows\[6\]\.b: must have words"):
        load_checklist(_write(tmp_path, text))


def test_unknown_row_field_suggests_the_right_one(tmp_path):
    text = _shipped_text().replace('question = "Is there trust', 'qestion = "Is there trust')
    with pytest.raises(ConfigError) as caught:
        load_checklist(_write(tmp_path, text))
    message = str(caught.value)
    assert "rows[6].qestion: unknown key (did you mean 'question'?)" in message
    assert "rows[6].question: required key is missing" in message


def test_broken_toml_names_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        load_checklist(_write(tmp_path, "[[rows]\n"))
