"""Annotation planning: one block, replaced never doubled, every outside character kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from assistant import block
from assistant.annotate import applied, plan_annotation
from assistant.models import DecidedBy, Format, Recommendation, Totals
from tests.factories import make_meeting

MARKERS = (block.TEXT_START, block.TEXT_END, block.HTML_START, block.HTML_END)


def recommendation(format_: Format, invite_reasons=("it saves everyone the journey",)):
    return Recommendation(format_, Totals(1, 2), DecidedBy.COUNT, ("reason",), invite_reasons)


VIRTUAL = recommendation(Format.VIRTUAL)
IN_PERSON = recommendation(Format.IN_PERSON, ("we would like to get to know each other",))


def plan(renderer, meeting, rec=VIRTUAL, minutes=50):
    return plan_annotation(meeting, rec, renderer, organisation_name="Example Ltd",
                           virtual_minutes=minutes)


def annotated(renderer, meeting, rec=VIRTUAL):
    return replace(meeting, description=plan(renderer, meeting, rec).description)


def test_virtual_block_has_cameras_on_duration_and_link(renderer):
    meeting = replace(make_meeting(minutes=60), description="Agenda:\n1. Roadmap")
    result = plan(renderer, meeting)
    assert result.end == meeting.start + timedelta(minutes=50)
    assert result.add_video_link
    assert result.description == "\n".join([
        block.TEXT_START,
        "We'll meet by video because it saves everyone the journey.",
        "We will have our cameras on and would love it if you did too.",
        "We've planned 50 minutes, leaving everyone a little time before their next meeting.",
        "A video link is added to this invitation.",
        "(Added by Example Ltd's meeting assistant.)",
        block.TEXT_END,
        "",
        "Agenda:",
        "1. Roadmap",
    ])


def test_in_person_keeps_the_end_and_leaves_room_to_talk(renderer):
    meeting = make_meeting(minutes=60)
    result = plan(renderer, meeting, IN_PERSON)
    assert result.end is None and not result.add_video_link
    expected = "We'll meet in person because we would like to get to know each other."
    assert expected in result.description
    assert "room for informal conversation" in result.description


def test_existing_video_link_is_not_added_again(renderer):
    meeting = replace(make_meeting(), video_link="https://meet.google.com/abc-defg-hij")
    result = plan(renderer, meeting)
    assert not result.add_video_link
    assert "video link is added" not in result.description


def test_short_virtual_meeting_is_not_changed(renderer):
    assert plan(renderer, make_meeting(minutes=30)).end is None


def test_second_run_on_a_shortened_meeting_does_not_shorten_again(renderer):
    meeting = make_meeting(minutes=90)
    first = plan(renderer, meeting)
    assert first.end == meeting.start + timedelta(minutes=80)
    again = plan(renderer, replace(applied(meeting, first), video_link="https://meet.example/x"))
    assert again.end is None and again.description == first.description
    assert again.mark == first.mark


def test_turning_in_person_gives_the_hour_back(renderer):
    meeting = make_meeting(minutes=60)
    shortened = applied(meeting, plan(renderer, meeting))
    assert plan(renderer, shortened, IN_PERSON).end == meeting.end


def test_a_moved_meeting_keeps_its_shortened_length(renderer):
    meeting = make_meeting(minutes=60)
    shortened = applied(meeting, plan(renderer, meeting))
    moved = replace(shortened, start=meeting.start + timedelta(days=1),
                    end=shortened.end + timedelta(days=1))
    again = plan(renderer, moved)
    assert again.end is None and again.mark.minutes_set == 50


def test_a_length_a_person_set_back_is_kept_from_then_on(renderer):
    meeting = make_meeting(minutes=60)
    undone = replace(applied(meeting, plan(renderer, meeting)), end=meeting.end)
    again = plan(renderer, undone)
    assert again.end is None and again.mark.length_by_person
    assert "50 minutes" not in again.description
    later = plan(renderer, applied(undone, again), IN_PERSON)
    assert later.end is None and plan(renderer, applied(undone, later)).end is None


@pytest.mark.parametrize("edit", [
    lambda text: block.remove_block(text),
    lambda text: text.replace("cameras on", "cameras off"),
])
def test_a_note_a_person_removed_or_edited_is_left_alone(renderer, edit):
    meeting = replace(make_meeting(), description="Agenda")
    written = applied(meeting, plan(renderer, meeting))
    assert plan(renderer, replace(written, description=edit(written.description))) is None


def test_whitespace_a_provider_changes_is_not_a_persons_edit(renderer):
    meeting = replace(make_meeting(), description="<p>Agenda</p>", description_is_html=True)
    written = applied(meeting, plan(renderer, meeting))
    reserialised = written.description.replace("><", ">\n<").replace("\"", "'")
    assert plan(renderer, replace(written, description=reserialised)) is not None


def test_a_video_link_a_person_removed_is_not_added_back(renderer):
    meeting = make_meeting()
    first = plan(renderer, meeting)
    assert first.add_video_link and first.mark.video_link_added
    again = plan(renderer, applied(meeting, first))  # the provider's link was deleted since
    assert not again.add_video_link and again.mark.video_link_added


def test_changed_recommendation_replaces_the_block(renderer):
    meeting = replace(make_meeting(), description="Bring the contract.")
    once = annotated(renderer, meeting, VIRTUAL)
    twice = annotated(renderer, once, IN_PERSON)
    assert twice.description.count(block.TEXT_START) == 1
    assert "in person" in twice.description and "by video" not in twice.description
    assert twice.description.endswith("\n\nBring the contract.")


def test_html_body_gets_an_escaped_html_block_after_body(renderer):
    body = ('<html>\r\n<head></head>\r\n<body>\r\n<div>Agenda &amp; goals</div>\r\n'
            '</body>\r\n</html>\r\n')
    meeting = replace(make_meeting(), description=body, description_is_html=True)
    evil = recommendation(Format.VIRTUAL, ("<script>alert(1)</script>",))
    result = plan(renderer, meeting, evil).description
    assert result.startswith("<html>\r\n<head></head>\r\n<body>" + block.HTML_START)
    assert "<script>" not in result and "&lt;script&gt;" in result
    assert block.remove_block(result, is_html=True) == body
    assert block.TEXT_START in result and "We'll meet by video" in result


def test_crlf_text_gets_a_crlf_block(renderer):
    meeting = replace(make_meeting(), description="Line one\r\nLine two")
    result = plan(renderer, meeting).description
    assert "\n" not in result.replace("\r\n", "")
    assert result.endswith("\r\n\r\nLine one\r\nLine two")


def test_all_day_meeting_keeps_its_dates(renderer):
    from datetime import date
    meeting = replace(make_meeting(), start=date(2026, 12, 3), end=date(2026, 12, 4))
    assert plan(renderer, meeting).end is None


# Property tests over arbitrary organiser text.

user_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)
html_text = st.builds(
    lambda head, tags, tail: head + "".join(tags) + tail,
    user_text,
    st.lists(st.sampled_from(["<body>", "<BODY class='x'>", "<br>", "<div>", "</div>",
                              "<p>", "&amp;", "<!-- c -->", "\r\n", "<ul><li>a</li></ul>"])),
    user_text,
)


@pytest.mark.fuzz
@given(description=user_text | html_text, is_html=st.booleans(), virtual=st.booleans())
def test_planning_is_idempotent_and_keeps_every_character(renderer, description, is_html, virtual):
    assume(not any(marker in description for marker in MARKERS))
    rec = VIRTUAL if virtual else IN_PERSON
    meeting = replace(make_meeting(), description=description, description_is_html=is_html)
    once = plan(renderer, meeting, rec).description
    twice = plan(renderer, replace(meeting, description=once), rec).description
    assert twice == once
    assert block.remove_block(once, is_html) == description
    assert once.count(block.TEXT_START) == 1 and once.count(block.TEXT_END) == 1


@given(description=user_text | html_text, is_html=st.booleans())
def test_a_new_recommendation_replaces_the_old_block_in_place(renderer, description, is_html):
    assume(not any(marker in description for marker in MARKERS))
    meeting = replace(make_meeting(), description=description, description_is_html=is_html)
    as_virtual = plan(renderer, meeting, VIRTUAL).description
    as_in_person = plan(renderer, replace(meeting, description=as_virtual), IN_PERSON).description
    assert as_in_person == plan(renderer, meeting, IN_PERSON).description
    assert block.remove_block(as_in_person, is_html) == description


@given(before=user_text, after=user_text)
def test_text_around_a_block_someone_moved_is_kept(before, after):
    assume(not any(marker in before + after for marker in MARKERS))
    old = block.wrap_text("old words")
    new = block.wrap_text("new words")
    assert block.put_block(before + old + after, new, False) == before + new + after
    assert block.remove_block(before + old + after) == before + after


@pytest.mark.parametrize("is_html", [False, True])
def test_empty_description_gets_just_the_block(renderer, is_html):
    meeting = replace(make_meeting(), description="", description_is_html=is_html)
    result = plan(renderer, meeting).description
    assert block.find_block(result, is_html) == (0, len(result))


def _without_comments(html: str) -> str:
    return html.replace(block.HTML_START, "").replace(block.HTML_END, "")


@pytest.mark.fuzz
@given(description=html_text)
def test_html_block_is_found_even_if_the_provider_drops_comments(renderer, description):
    assume(not any(marker in description for marker in MARKERS))
    meeting = replace(make_meeting(), description=description, description_is_html=True)
    stored = _without_comments(plan(renderer, meeting, VIRTUAL).description)
    again = plan(renderer, replace(meeting, description=stored), IN_PERSON).description
    assert again.count(block.TEXT_START) == 1
    assert again == plan(renderer, meeting, IN_PERSON).description
    assert block.remove_block(stored, is_html=True) == description


def test_dropped_comments_inside_a_provider_wrapper_keep_the_organisers_text(renderer):
    outlook = '<html><body><div class="x"><div>Agenda</div></div></body></html>'
    meeting = replace(make_meeting(), description=outlook, description_is_html=True)
    written = plan(renderer, meeting).description
    # A provider that drops comments and wraps the block together with the organiser's text.
    stored = _without_comments(written).replace("<body>", '<body><div class="wrap">', 1)
    stored = stored.replace("</body>", "</div></body>", 1)
    again = plan(renderer, replace(meeting, description=stored), IN_PERSON).description
    assert again.count(block.TEXT_START) == 1 and "<div>Agenda</div>" in again
    assert again.count("<div") == again.count("</div>")
