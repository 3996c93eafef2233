"""The reply reader reads what people write: sentences, corrections, inline answers, other
languages; and it never reads an answer into a signature, a disclaimer or a quoted email."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.emails import Sender, question_email
from assistant.models import Format, Side
from assistant.rendering import Renderer
from assistant.replies import DECISION, OPTION_WORDING, UNDER_QUESTION, read_answer, read_reply
from assistant.reply_layout import body_text, lay_out
from assistant.reply_mail import read_reply_email
from assistant.reply_sentences import IN_WORDS, VIDEO_TOOL
from tests.factories import make_meeting

IN_PERSON, VIRTUAL = Format.IN_PERSON, Format.VIRTUAL


@pytest.mark.parametrize(("text", "decision"), [
    ("a video call suits me", VIRTUAL),
    ("Meet works", VIRTUAL),
    ("Teams is fine for me", VIRTUAL),
    ("let's do Zoom", VIRTUAL),
    ("we'll go over there – it's a kick-off after all", IN_PERSON),
    ("no need to travel, video please", VIRTUAL),
    ("not in person this time", VIRTUAL),
    ("I'd rather not travel, let's do it remotely", VIRTUAL),
    ("I'll drive over", IN_PERSON),
    ("in-persom please", IN_PERSON),
    ("vitual", VIRTUAL),
    ("vidoe call", VIRTUAL),
    ("virtual. On second thought, in person", IN_PERSON),
    ("We met virtually last time, so in person this time.", IN_PERSON),
    ("could we do it by video?", VIRTUAL),
    ("vor Ort bitte", IN_PERSON),
    ("lieber per Video", VIRTUAL),
    ("Teams reicht", VIRTUAL),
    ("Wir müssen nicht hinfahren", VIRTUAL),
    ("en personne", IN_PERSON),
    ("plutôt en visio", VIRTUAL),
    ("on se voit sur place", IN_PERSON),
    ("pas besoin de se déplacer", VIRTUAL),
    ("por videollamada", VIRTUAL),
    ("mejor en persona", IN_PERSON),
    ("presencial, gracias", IN_PERSON),
    ("no hace falta desplazarse", VIRTUAL),
    ("I'd rather not do this one virtually, I'll be on their site anyway", IN_PERSON),
    ("We can't do this one over video", IN_PERSON),
    ("Video geht leider nicht", IN_PERSON),
    ("No problem with video", VIRTUAL),
    ("In person, if possible", IN_PERSON),
    ("In person. Update – they asked for a Teams call instead, so let's go virtual.", VIRTUAL),
    ("Let's do video. Call me on +44 7700 900123 if they push back.", VIRTUAL),
    ("Virtual\nWait no in person.", IN_PERSON),
    ("Keep it on Teams. Never mind, they want us onsite.", IN_PERSON),
    ("I'd rather meet them in person than over Zoom", IN_PERSON),
])
def test_a_decision_said_in_a_sentence_is_read(text, decision):
    reading = read_answer(text)
    assert (reading.decision, reading.unclear, dict(reading.answers)) == (decision, False, {})
    assert reading.rules[DECISION] in (IN_WORDS, VIDEO_TOOL)


@pytest.mark.parametrize(("text", "answers"), [
    ("3B… no, wait, 3A", {3: Side.A}),
    ("2A 4B — sorry, 4A", {2: Side.A, 4: Side.A}),
    ("question 2: option B", {2: Side.B}),
    ("Q3 - A", {3: Side.A}),
    ("#4 b", {4: Side.B}),
    ("2) a", {2: Side.A}),
    ("Frage 2: B, Frage 4: A", {2: Side.B, 4: Side.A}),
    ("pregunta 5: opción A", {5: Side.A}),
    ("few customers or meetings: effectiveness is key", {3: Side.A}),
    ("5A 10B – sorry, 5 should be B", {5: Side.B, 10: Side.B}),
    ("A for 3, B for 5", {3: Side.A, 5: Side.B}),
    ("7 -> A\n10 -> B", {7: Side.A, 10: Side.B}),
    ("La 1 es A y la 12 es B. ¡Gracias!", {1: Side.A, 12: Side.B}),
    ("1A, 4B – ach nee, 4A. 12B", {1: Side.A, 4: Side.A, 12: Side.B}),
    ("stakeholders – B\nlocation – A", {4: Side.B, 6: Side.A}),
])
def test_other_forms_of_a_row_answer_are_read(text, answers):
    reading = read_answer(text)
    assert (dict(reading.answers), reading.unclear) == (answers, False)


@pytest.mark.parametrize("text", [
    "3A 3B",  # two answers, no correction
    "virtual would be nice but the customer wants us there",
    "maybe video?",
    "either works",
    "in person or virtual, whatever you think",
    "3C",
    "13A",
    "I'm at the customer's today, will look at this tomorrow",
    "Depends on whether Karen joins – if she does, in person.",
    "In person if the travel budget gets approved, otherwise Teams.",
    "Hybrid – I'll be there, Priya dials in from Berlin.",
    "5: B... not sure actually, could be A",
    "Both B",  # without the question quoted, which questions?
])
def test_what_could_be_read_two_ways_is_asked_again(text):
    reading = read_answer(text)
    assert reading.unclear and reading.empty and reading.problems


@pytest.mark.parametrize("text", ["Thanks!", "Danke dir", "merci beaucoup", "¡Gracias!",
                                  "Will check with the team and get back to you by Friday.",
                                  "Ich melde mich morgen dazu.",
                                  "Can't answer yet, will reply by Friday.\n\nJordan Blake"])
def test_thanks_alone_is_neither_an_answer_nor_unclear(text):
    reading = read_answer(text)
    assert reading.empty and not reading.unclear


QUESTIONS = """\
> Please answer:
>   3. How many customer meetings are you juggling?
>      A: few customers or meetings: effectiveness is key
>      B: many customers or meetings: efficiency is key
>   4. Who will attend from the customer?
>      A: a small number of stakeholders who can be in one room
>      B: many stakeholders, or stakeholders in different places
>   5. What does the customer value?
>      A: the customer values in-person, social contact
>      B: the customer values virtual meetings or the environmental choice
"""


def under_each(answers: list[str]) -> str:
    """QUESTIONS with each answer typed under its question, as Thunderbird users write."""
    head, *blocks = re.split(r"(?=>   \d)", QUESTIONS)
    return head + "".join(f"{block}{answer}\n" for block, answer in zip(blocks, answers,
                                                                       strict=True))


def test_answers_typed_under_each_quoted_question_belong_to_it():
    text = under_each(["B - far too many this month", "A", "the customer values in-person, "
                                                             "social contact"])
    reading = read_answer(text)
    assert dict(reading.answers) == {3: Side.B, 4: Side.A, 5: Side.A}
    assert reading.rules == {3: UNDER_QUESTION, 4: UNDER_QUESTION, 5: OPTION_WORDING}
    assert not reading.positional and not reading.unclear


def test_one_letter_for_every_quoted_question_and_a_letter_after_a_word():
    assert dict(read_answer(QUESTIONS + "\nBoth B\n").answers) == {3: Side.B, 4: Side.B,
                                                                  5: Side.B}
    text = under_each(["Definitely B", "I'd say A.", "B? not sure"])
    reading = read_answer(text)
    assert dict(reading.answers) == {3: Side.B, 4: Side.A} and reading.unclear
    # A mark on the chosen option in the quoted original, and a word only one option has.
    marked = QUESTIONS.replace("efficiency is key", "efficiency is key   <-- this one")
    assert dict(read_answer(marked).answers) == {3: Side.B}
    for doubted in ("3B. 7A? or B, they know us", "2A, 6 both really, 9B"):
        assert read_answer(doubted).unclear


def test_an_original_quoted_without_marks_after_its_attribution_is_not_read():
    text = ("1A 5B\n\nOn Tuesday, 1 December 2026, 09:02, Meeting assistant "
            "<meeting-assistant@example.com> wrote:\n\n" + QUESTIONS.replace("> ", "")
            + "\nAs it stands, in person; 2 quick answers could change that.\n")
    reading = read_answer(body_text(lay_out(text)))
    assert dict(reading.answers) == {1: Side.A, 5: Side.B} and not reading.unclear
    assert reading.decision is None


def test_a_comment_under_an_answer_is_not_read_again_and_dont_know_is_no_answer():
    text = under_each(["B\nthey are all remote anyway, in person would be hard", "no idea",
                       "A"])
    reading = read_answer(text)
    assert dict(reading.answers) == {3: Side.B, 5: Side.A} and not reading.unclear


def test_outlook_html_inline_answers_in_colour_are_read_under_their_question():
    html = ("<div>See my answers below.</div><div id='divRplyFwdMsg'><b>From:</b> Meeting "
            "assistant<br><b>Sent:</b> Tuesday</div><div><p>Please answer:</p><ol>"
            "<li value='3'>How many customer meetings are you juggling?<br>"
            "<a href='x'><b>A</b>: few customers or meetings: effectiveness is key</a><br>"
            "<a href='y'><b>B</b>: many customers or meetings: efficiency is key</a>"
            "<p><span style='color:#C00000'>B</span></p></li>"
            "<li value='4'>Who will attend from the customer?<br><b>A</b>: a small number of "
            "stakeholders who can be in one room<br><b>B</b>: many stakeholders, or "
            "stakeholders in different places<p><span style='color:rgb(0, 112, 192)'>[Jane "
            "Doe] A, just two of them</span></p></li></ol>"
            "<p style='color:#666'>Your meeting-format assistant at Example</p></div>")
    reply = read_reply_email(_mail(html, "html"), "meeting-assistant@example.com")
    assert dict(read_reply(reply).answers) == {3: Side.B, 4: Side.A}


def test_outlook_plain_inline_answers_with_the_name_mark_are_read():
    text = ("Answers inline.\n\nJane\n\nFrom: Meeting assistant <meeting-assistant@example.com>"
            "\nSent: Tuesday, December 1, 2026 10:02 AM\nTo: Jane Doe <jane@example.com>\n"
            "Subject: Acme pitch: in person or virtual?\n\n" + QUESTIONS.replace("> ", "")
            + "\n[Jane Doe] 5B - they asked for video\n\nReply with the numbers and letters, "
            "e.g. \"3A 4B\", or just \"in person\" or \"virtual\".\n")
    reply = read_reply_email(_mail(text, "plain"), "meeting-assistant@example.com")
    reading = read_reply(reply)
    assert dict(reading.answers) == {5: Side.B} and reading.decision is None


def test_a_reply_with_only_an_attachment_is_unclear_and_says_why():
    message = EmailMessage()
    message["From"], message["Subject"] = "jane@example.com", "Re: pitch"
    message.set_content("")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                           filename="answers.pdf")
    reply = read_reply_email(message.as_bytes(), "meeting-assistant@example.com")
    reading = read_reply(reply)
    assert reading.unclear and "answers.pdf" in str(reading.problems[0])
    assert "attachments are not read" in str(reading.problems[0])


def test_a_signature_after_the_answer_is_not_read():
    text = ("in person please\n\nBest regards,\nB\n\nJane Doe | Online Marketing Manager\n"
            "Contoso Ltd, Suite 2A, 12B Baker Street\n+44 20 7946 0000 ext. 4B")
    reading = read_answer(body_text(lay_out(text)))
    assert reading.decision is IN_PERSON and not reading.answers and not reading.positional


# -- noise never yields an answer ----------------------------------------------------------

NAMES = st.sampled_from(["Jane Doe", "Jürgen Weiß", "Amélie Dubois", "José García", "B. Smith",
                         "A. Jones", "Bea"])
TITLES = st.sampled_from(["Online Marketing Manager", "Head of Virtual Events",
                          "Remote Sales Lead", "Key Account Manager | DACH",
                          "Responsable Vente à Distance", "Directora de Ventas Online",
                          "Teams Lead, Inside Sales", "VP Sales, B2B"])
ADDRESSES = st.sampled_from(["Suite 2A, 100 Main Street", "Building 4B, Floor 3A",
                             "12B Baker Street, London", "Unit 7B, Harbour Road",
                             "Hauptstraße 5, 3. OG, Raum 2A", "Bâtiment 1B, 3 rue de la Paix",
                             "Calle Mayor 2, planta 3B", "PO Box 11A"])
PHONES = st.sampled_from(["+44 20 7946 0000 ext. 4B", "Tel. +49 30 1234567, Durchwahl 2A",
                          "M: +33 6 12 34 56 78", "Tel: +34 91 123 45 67"])
SIGN_OFFS = st.sampled_from(["Best regards,", "Thanks,", "Cheers", "Viele Grüße",
                             "Mit freundlichen Grüßen", "Cordialement,", "Bien à vous",
                             "Un saludo,", "Saludos", "Kind regards"])
DISCLAIMERS = st.sampled_from([
    "This email and any attachments are confidential and intended solely for the addressee. "
    "If you are not the intended recipient, please notify the sender and delete it; meetings "
    "held online or in person are covered by our privacy notice.",
    "CONFIDENTIALITY NOTICE: privileged information. Unauthorised copying or distribution is "
    "prohibited. We operate remotely and virtual offices may apply.",
    "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat "
    "sind, informieren Sie bitte sofort den Absender und löschen Sie diese E-Mail; vor Ort "
    "oder virtuell.",
    "Ce message et toutes les pièces jointes sont confidentiels et établis à l'intention "
    "exclusive de ses destinataires. Toute diffusion est interdite, en personne ou en ligne.",
    "Este mensaje y sus adjuntos son confidenciales. Si usted no es el destinatario, "
    "notifíquelo al remitente y elimínelo; la reunión presencial o por videollamada.",
    "Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone",
    "Enviado desde mi iPhone", "Get Outlook for Android",
])


@st.composite
def signatures(draw) -> str:
    lines = [draw(SIGN_OFFS), draw(NAMES)] if draw(st.booleans()) else ["-- ", draw(NAMES)]
    lines += draw(st.lists(st.one_of(TITLES, ADDRESSES, PHONES), min_size=1, max_size=4))
    return "\n".join(lines)


@st.composite
def quoted_questions(draw) -> str:
    rows = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True))
    email = question_email(
        make_meeting(), customers=["acme.example"], inferred={}, questions=rows,
        checklist=_checklist(), token="a" * 26, sender=Sender("assistant@example.com", "Example"),
        deadline=None, renderer=Renderer(), default=draw(st.sampled_from(list(Format))),
        language=draw(st.sampled_from(["en", "de", "fr", "es"])))
    quoted = "\n".join(f"> {line}" for line in email.text.splitlines())
    return draw(st.sampled_from([
        f"On Tue, 1 Dec 2026 at 10:02, Meeting assistant wrote:\n{quoted}",
        "From: Meeting assistant <assistant@example.com>\nSent: Tuesday, 1 December 2026\n"
        f"To: Jane\nSubject: Re: pitch\n\n{email.text}",
    ]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(signatures(), DISCLAIMERS, quoted_questions()), min_size=1,
                max_size=3))
def test_only_a_signature_disclaimer_or_quoted_email_never_yields_an_answer(parts):
    text = "\n\n".join(parts)
    reading = read_answer(body_text(lay_out(text)))
    assert reading.empty, (text, reading)


def _checklist():
    from assistant.checklist import load_checklist
    return load_checklist()


def _mail(body: str, subtype: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = "jane@example.com", "meeting-assistant+" + "a" * 26 + \
        "@example.com"
    message["Subject"] = "Re: Acme pitch: in person or virtual?"
    message.set_content(body, subtype=subtype)
    return message.as_bytes()
