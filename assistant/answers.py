"""The answers document the CLI reads: checklist rows by key or number, plus the hard facts.

    {"answers": {"importance": "A", "7": "B", "type": "virtual"},
     "on_site_equipment": false, "travel_policy": null, "organiser_choice": null}

Rows are named by key or number, values are A/B or in_person/virtual in any case. Anything
unknown is an InputError naming it: a guessed answer would be worse than none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.checklist import Checklist, parse_format, parse_side
from assistant.errors import InputError
from assistant.models import Format, HardFacts, Provenance, RowAnswer

_KEYS = {"answers", "on_site_equipment", "travel_policy", "organiser_choice"}
DEFAULT_TRAVEL_REASON = "a travel policy rules out travel"


@dataclass(frozen=True)
class AnswerDocument:
    answers: dict[str, RowAnswer]
    hard: HardFacts


def parse_answer_text(source: str, checklist: Checklist, *, where: str) -> AnswerDocument:
    """Parse the JSON text of an answers document; `where` names its origin in errors."""
    try:
        data = json.loads(source)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not valid JSON ({err})") from err
    try:
        return parse_answer_document(data, checklist)
    except InputError as err:
        raise InputError(f"{where}: {err}") from err


def parse_answer_document(data: Any, checklist: Checklist) -> AnswerDocument:
    if not isinstance(data, Mapping):
        raise InputError("the answers document must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_KEYS))}")
    return AnswerDocument(
        answers=_row_answers(data.get("answers") or {}, checklist),
        hard=HardFacts(
            organiser_choice=_organiser_choice(data.get("organiser_choice")),
            on_site_equipment=_on_site_equipment(data.get("on_site_equipment")),
            travel_ruled_out=_travel_reason(data.get("travel_policy")),
        ),
    )


def _row_answers(raw: Any, checklist: Checklist) -> dict[str, RowAnswer]:
    if not isinstance(raw, Mapping):
        raise InputError("'answers' must be an object of row to A or B")
    answers: dict[str, RowAnswer] = {}
    for name, value in raw.items():
        row = checklist.find(name)
        if row.key in answers:
            raise InputError(f"row {row.number} ({row.key}) is answered twice")
        if not isinstance(value, str):
            raise InputError(f"row {name!r}: answer {value!r} must be A or B")
        try:
            side = parse_side(value)
        except InputError as err:
            raise InputError(f"row {name!r}: {err}") from err
        answers[row.key] = RowAnswer(side, Provenance.ORGANISER)
    return answers


def _organiser_choice(value: Any) -> Format | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"organiser_choice: {value!r} must be null, 'in_person' or 'virtual'")
    return parse_format(value)


def _on_site_equipment(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"on_site_equipment: {value!r} must be true or false")
    return value


def _travel_reason(value: Any) -> str:
    """null/false: travel allowed; true: ruled out; a string: ruled out, for that reason."""
    if value is None or value is False:
        return ""
    if value is True:
        return DEFAULT_TRAVEL_REASON
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InputError(f"travel_policy: {value!r} must be null, true/false or a reason in words")
