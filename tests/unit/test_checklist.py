"""The checklist file: the shipped one is complete, and a broken one says exactly what is wrong."""

from __future__ import annotations

import json
import tomllib
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


# -- translations ------------------------------------------------------------------------------


def _shipped_rows() -> list[dict]:
    return tomllib.loads(_shipped_text())["rows"]


def _toml(rows: list[dict]) -> str:
    """rows as a checklist file (JSON's strings, lists and booleans are TOML's too)."""
    lines = []
    for row in rows:
        lines.append("[[rows]]")
        lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}"
                  for key, value in row.items() if key != "translations"]
        for language, words in row.get("translations", {}).items():
            lines.append(f"[rows.translations.{language}]")
            lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}"
                      for key, value in words.items()]
    return "\n".join(lines) + "\n"


def _problems(tmp_path: Path, rows: list[dict]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_checklist(_write(tmp_path, _toml(rows)))
    return caught.value.problems


def test_the_shipped_checklist_is_worded_in_every_language(checklist):
    for language in ("de", "fr", "es"):
        translated = checklist.in_language(language)
        assert [(row.number, row.key) for row in translated] == \
            [(row.number, row.key) for row in checklist]
        for english, row in zip(checklist, translated, strict=True):
            assert row.question != english.question and row.a != english.a
            assert bool(row.invite_a) == bool(english.invite_a)
            assert bool(row.invite_b) == bool(english.invite_b)
            assert row.title_words_a == english.title_words_a  # every language's, for detection
    assert checklist.in_language("en") is checklist
    with pytest.raises(ValueError, match="unsupported language 'it'"):
        checklist.in_language("it")


def test_title_words_of_every_language_count(tmp_path):
    rows = _shipped_rows()
    rows[0]["title_words_a"] = ["pitch"]
    rows[0]["translations"]["de"]["title_words_a"] = ["Auftakt", "PITCH"]
    rows[0]["translations"]["fr"]["title_words_a"] = ["lancement"]
    rows[0]["translations"]["es"].pop("title_words_a", None)
    row = load_checklist(_write(tmp_path, _toml(rows))).row("importance")
    assert row.title_words(Side.A) == ("pitch", "Auftakt", "lancement")  # each once
    assert row.translation("de").title_words_a == ("Auftakt", "PITCH")


def test_a_row_worded_in_one_language_is_said_in_each(checklist):
    said = checklist.row("rapport").said(Side.A, invite=True)
    assert said == checklist.row("rapport").invite_a
    assert said.texts["de"] == checklist.in_language("de").row("rapport").invite_a


def test_a_missing_translation_names_the_row_and_language(tmp_path):
    rows = _shipped_rows()
    del rows[2]["translations"]["fr"]
    assert _problems(tmp_path, rows) == [
        "rows[2].translations.fr: missing; row 3 (number) needs a translation into each of "
        "de, fr, es"]


def test_an_unknown_language_is_named(tmp_path):
    rows = _shipped_rows()
    rows[4]["translations"]["it"] = dict(rows[4]["translations"]["fr"])
    [problem] = _problems(tmp_path, rows)
    assert problem.startswith("rows[4].translations: unknown language 'it'")


@pytest.mark.parametrize(("field", "problem"), [
    ("question", "rows[6].translations.de.question: required key is missing"),
    ("b", "rows[6].translations.de.b: required key is missing"),
    ("invite_a", "rows[6].translations.de.invite_a: missing; the English row has invite_a, "
                 "so every translation needs it too"),
])
def test_a_missing_field_names_the_row_and_field(tmp_path, field, problem):
    rows = _shipped_rows()
    del rows[6]["translations"]["de"][field]
    assert _problems(tmp_path, rows) == [problem]


def test_a_translation_cannot_show_customers_what_the_english_keeps_internal(tmp_path):
    rows = _shipped_rows()
    rows[9]["translations"]["es"]["invite_a"] = "el poder está equilibrado"  # row 10: power
    assert _problems(tmp_path, rows) == [
        "rows[9].translations.es.invite_a: the English row has no invite_a (customers never "
        "read that side), so no translation may"]


def test_a_misspelt_translation_field_suggests_the_right_one(tmp_path):
    rows = _shipped_rows()
    rows[1]["translations"]["fr"]["qestion"] = rows[1]["translations"]["fr"].pop("question")
    problems = _problems(tmp_path, rows)
    assert "rows[1].translations.fr.qestion: unknown key (did you mean 'question'?); allowed " \
           "here: question, a, b, invite_a, invite_b, title_words_a, title_words_b" in problems


def test_a_blank_translation_is_refused(tmp_path):
    rows = _shipped_rows()
    rows[0]["translations"]["es"]["a"] = "  "
    assert _problems(tmp_path, rows) == ["rows[0].translations.es.a: must have words, not only "
                                         "spaces"]
