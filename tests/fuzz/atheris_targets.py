"""Coverage-guided fuzzing with atheris (libFuzzer), where hypothesis's generators run blind.

    .venv/bin/pip install -e '.[fuzz]'
    mkdir -p /tmp/fuzz/reply /tmp/fuzz/events /tmp/fuzz/merge
    .venv/bin/python -m tests.fuzz.atheris_targets reply /tmp/fuzz/reply tests/data/replies \
        -atheris_runs=100000
    .venv/bin/python -m tests.fuzz.atheris_targets events /tmp/fuzz/events tests/data/events \
        -atheris_runs=100000
    .venv/bin/python -m tests.fuzz.atheris_targets merge /tmp/fuzz/merge -atheris_runs=100000
    .venv/bin/python -m tests.fuzz.atheris_targets structures /tmp/fuzz/structures \
        -atheris_runs=100000

Each target takes libFuzzer's bytes as input: a reply email's bytes for the reply reader, JSON
for the event readers and the planning behind them, a description for the annotation merge;
and for `structures`, the choices of the structure-aware generators in
tests/unit/test_hostile_mail.py (deep MIME, pathological headers), which blind bytes never
reach: hypothesis's fuzz_one_input turns libFuzzer's bytes into those generators' draws. A
target fails (and libFuzzer saves the input as crash-*) on any exception the code does not
promise, and, for the merge, when the organiser's text is not kept exactly. Everything after
the target's name is libFuzzer's: the first folder is where it keeps the inputs it finds (so
not one of the repository's), the next ones seed it with real replies and events.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports():
    # Run through tests.factories.read_and_assess; imported here to be instrumented.
    import assistant.event_files  # noqa: F401
    import integrations.google_event  # noqa: F401
    import integrations.graph_event  # noqa: F401
    from assistant import block
    from assistant.annotate import plan_annotation
    from assistant.assess import Assessor
    from assistant.checklist import load_checklist
    from assistant.config import config_for_domains
    from assistant.models import DecidedBy, Format, Meeting, Recommendation, Totals
    from assistant.rendering import Renderer
    from assistant.replies import read_reply
    from assistant.reply_mail import read_reply_email

from tests.factories import make_meeting, read_and_assess
from tests.unit.test_hostile_mail import test_reading_hostile_structures_never_raises

NOW = datetime(2026, 12, 1, tzinfo=UTC)
RENDERER = Renderer()
ASSESSOR = Assessor(config_for_domains(["example.com"]), load_checklist(), RENDERER)
MARKERS = (block.TEXT_START, block.TEXT_END, block.HTML_START, block.HTML_END)
RECOMMENDATIONS = [Recommendation(side, Totals(1, 2), DecidedBy.COUNT, ("reason",), ("why",))
                   for side in (Format.VIRTUAL, Format.IN_PERSON)]


def reply(data: bytes) -> None:
    reading = read_reply_email(data, "meeting-assistant@example.com",
                               authserv_id="mx.example.com")
    read_reply(reading)  # the whole reading: quoted lines, sentences, typos


def events(data: bytes) -> None:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return  # not JSON: the HTTP layer refuses it before any reader sees it
    read_and_assess(event, ASSESSOR, NOW)


def merge(data: bytes) -> None:
    given = atheris.FuzzedDataProvider(data)
    is_html = given.ConsumeBool()
    first, second = (RECOMMENDATIONS[given.ConsumeIntInRange(0, 1)] for _ in range(2))
    description = given.ConsumeUnicodeNoSurrogates(given.remaining_bytes())
    if any(marker in description for marker in MARKERS):
        return  # a description that already holds our markers is ours to replace
    meeting = replace(make_meeting(), description=description, description_is_html=is_html)
    once = _planned(meeting, first)
    again = _planned(replace(meeting, description=once), second)
    if block.remove_block(again, is_html) != description:
        raise AssertionError(f"the organiser's text was not kept: {description!r}")
    if again != _planned(meeting, second):
        raise AssertionError(f"a second recommendation did not replace the first: {once!r}")


def _planned(meeting: Meeting, recommendation: Recommendation) -> str:
    return plan_annotation(meeting, recommendation, RENDERER, organisation_name="Example Ltd",
                           virtual_minutes=50).description


def structures(data: bytes) -> None:
    test_reading_hostile_structures_never_raises.hypothesis.fuzz_one_input(data)


TARGETS: dict[str, Callable[[bytes], None]] = {"reply": reply, "events": events, "merge": merge,
                                               "structures": structures}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.atheris_targets {{{'|'.join(TARGETS)}}} "
                 "[libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
