"""Every email and the invite's note in German, French and Spanish: the language's own words,
dates and lists, and not one English sentence left over; English exactly as before."""

from __future__ import annotations

import copy
import json
import pickle
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.messages.pofile import read_po

from assistant.annotate import plan_annotation
from assistant.assess import Assessor
from assistant.config import Config, Customer, Organisation
from assistant.conversation import changes_made
from assistant.detect import CustomerMeetingDetector
from assistant.emails import (
    DigestItem,
    Sender,
    clarification_email,
    confirmation_email,
    describe_when,
    digest_email,
    question_email,
)
from assistant.infer import Inferrer
from assistant.language import N_, Nn_
from assistant.language.catalogs import LOCALES, catalog_path
from assistant.language.phrases import Phrase, Wording, from_json, joined, to_json, voice
from assistant.models import Format, HardFacts, Provenance, RowAnswer, Side
from assistant.presenting import assessment_json, recommendation_from_json, recommendation_json
from assistant.replies import read_answer
from assistant.scoring import recommend
from tests.factories import NOW, make_meeting

SENDER = Sender("meeting-assistant@example.com", "Example Ltd")
TOKEN = "k3q7zt2mxa4bq5c6d7efgh2ijkabcdefghijklmn"
LANGUAGES = ("de", "fr", "es")
FORMAT_WORDS = {"de": ("vor Ort", "virtuell"), "fr": ("en présentiel", "à distance"),
                "es": ("presencial", "virtual")}
WHEN = {"de": "Do., 3. Dez., 10:00–11:00 (Europe/Berlin)",
        "fr": "jeu. 3 déc., 10:00–11:00 (Europe/Berlin)",
        "es": "jue, 3 dic, 10:00–11:00 (Europe/Berlin)"}
CAMERAS = {"de": "Wir schalten unsere Kameras ein und würden uns freuen, wenn Sie das auch tun.",
           "fr": "Nous aurons nos caméras allumées et serions ravis que vous fassiez de même.",
           "es": "Tendremos las cámaras encendidas y nos encantaría que usted también encendiera "
                 "la suya."}
MINUTES = {"de": "Wir haben 50 Minuten eingeplant, damit allen etwas Zeit bis zum nächsten "
                 "Termin bleibt.",
           "fr": "Nous avons prévu 50 minutes, pour laisser à chacun un peu de temps avant sa "
                 "réunion suivante.",
           "es": "Hemos previsto 50 minutos, para que todos tengan un poco de tiempo antes de su "
                 "siguiente reunión."}


def _texts(language: str) -> list[str]:
    """Every translation in language's catalog."""
    with catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language)
    return [text for message in catalog if message.id
            for text in (message.string if message.pluralizable else (message.string,))]


def english_sentences(language: str, checklist) -> list[str]:
    """The English of every marked text and of the checklist, as runs of two words or more
    between placeholders and tags, leaving out runs the language happens to share."""
    with (LOCALES / "assistant.pot").open("rb") as file:
        template = read_po(file)
    own = "\n".join(_texts(language))
    texts = [text for message in template if message.id
             for text in ((message.id,) if isinstance(message.id, str) else message.id)]
    texts += [text for row in checklist for text in (row.question, row.a, row.b, row.invite_a,
                                                      row.invite_b) if text]
    runs = set()
    for text in texts:
        for run in re.split(r"%\(\w+\)s|\{\w+\}|<[^>]*>", text):
            run = run.strip(" ,.:;!?()\"'“”/-")
            if len(run.split()) >= 2 and run not in own:
                runs.add(run)
    return sorted(runs)


def assert_no_english(text: str, language: str, checklist) -> None:
    leaks = [run for run in english_sentences(language, checklist) if run in text]
    assert leaks == [], f"English in the {language} text: {leaks}\n{text}"


def meeting(title="Acme pitch", **fields):
    return make_meeting(title, organizer="alice@example.com", time_zone="Europe/Berlin",
                        start=datetime(2026, 12, 3, 9, tzinfo=UTC), **fields)


def inferred() -> dict[str, RowAnswer]:
    """What inference tells of a pitch tomorrow (as infer.py words it)."""
    return {
        "importance": RowAnswer(Side.A, Provenance.INFERRED,
                                Phrase(N_("the title says '{word}'"), word="pitch")),
        "priorities": RowAnswer(Side.B, Provenance.INFERRED, Phrase(
            N_("it starts in {span}"), span=Phrase(*Nn_("{count} hour", "{count} hours"),
                                                    count=30))),
        "values": RowAnswer(Side.B, Provenance.DEFAULT, Phrase(
            N_("{customer} values meeting virtually"), customer="Acme")),
    }


def question(checklist, renderer, language, **options):
    return question_email(meeting(), customers=["Acme", "Globex"], inferred=inferred(),
                          questions=(4, 7), checklist=checklist, token=TOKEN, sender=SENDER,
                          renderer=renderer, deadline=datetime(2026, 12, 2, 9, tzinfo=UTC),
                          default=Format.VIRTUAL, language=language, **options)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_question_email_is_in_the_organisers_language(checklist, renderer, language):
    mail = question(checklist, renderer, language)
    in_person, virtual = FORMAT_WORDS[language]
    local = checklist.in_language(language)
    for text in (mail.text, mail.html):
        assert WHEN[language] in text
        assert in_person in text and virtual in text
        assert local.row("stakeholders").question in text and local.row("rapport").b in text
        assert_no_english(text, language, checklist)
    assert mail.subject.endswith(f"[MFA-{TOKEN}]") and virtual in mail.subject
    assert_no_english(mail.subject, language, checklist)


def test_the_german_question_email_reads_as_german(checklist, renderer):
    mail = question(checklist, renderer, "de", reminder=True)
    assert mail.subject == f"Erinnerung: Acme pitch: vor Ort oder virtuell? [MFA-{TOKEN}]"
    assert mail.text.startswith("Hallo Alice,\n\nKurze Erinnerung")
    assert ("Acme pitch mit Acme und Globex, Do., 3. Dez., 10:00–11:00 (Europe/Berlin): vor Ort "
            "oder virtuell? Stand jetzt: virtuell – 2 kurze Antworten könnten das ändern.") \
        in mail.text
    assert "(der Titel enthält „pitch“)" in mail.text
    assert "(er beginnt in 30 Stunden)" in mail.text and "Acme bevorzugt virtuelle" in mail.text
    assert "„vor Ort“ oder „virtuell“" in mail.text
    assert "Ohne Antwort bis Mi., 2. Dez., 10:00 Uhr findet der Termin virtuell statt." \
        in mail.text
    assert "<b>Acme pitch</b> mit Acme und Globex" in mail.html


def test_french_and_spanish_punctuation(checklist, renderer):
    french = question(checklist, renderer, "fr")
    assert "en présentiel ou à distance\u202f?" in french.subject
    assert "«\u202fen présentiel\u202f» ou «\u202fà distance\u202f»" in french.text
    spanish = question(checklist, renderer, "es")
    assert "¿presencial o virtual?" in spanish.subject and "«presencial» o «virtual»" \
        in spanish.text


def test_one_click_links_say_the_languages_words(checklist, renderer):
    from assistant.answer_links import AnswerLinks
    from assistant.emails import OneClick

    links = OneClick(AnswerLinks(b"k" * 32, "https://assistant.example.com"), 7,
                     NOW + timedelta(days=3))
    html = question(checklist, renderer, "de", links=links).html
    assert "Oder entscheide mit einem Klick" in html and "<b>vor Ort</b></a>" in html
    assert html.count('href="https://assistant.example.com/answer/') == 6


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_clarification_is_in_the_organisers_language(checklist, renderer, language):
    mail = clarification_email(meeting(), read_answer("2A 5C"), checklist=checklist,
                               questions=(2, 5), token=TOKEN, sender=SENDER,
                               renderer=renderer, language=language)
    assert "5C" in mail.text and FORMAT_WORDS[language][0] in mail.text
    for text in (mail.subject, mail.text, mail.html):
        assert_no_english(text, language, checklist)


def test_a_clarification_without_a_readable_problem_says_so_in_the_language(checklist,
                                                                              renderer):
    from assistant.replies import Reading

    mail = clarification_email(meeting(), Reading(unclear=True), checklist=checklist,
                               questions=(2,), token=TOKEN, sender=SENDER, renderer=renderer,
                               language="es")
    assert "no he encontrado ninguna respuesta en tu mensaje" in mail.text


def decided(checklist):
    answers = {**inferred(), "rapport": RowAnswer(Side.A, Provenance.ORGANISER),
               "type": RowAnswer(Side.A, Provenance.ORGANISER),
               "stakeholders": RowAnswer(Side.A, Provenance.ORGANISER)}
    return recommend(checklist, answers)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_confirmation_gives_its_reasons_in_the_organisers_language(checklist, renderer,
                                                                       language):
    result = decided(checklist)
    plan = plan_annotation(meeting(), result, renderer, organisation_name="Example Ltd",
                           virtual_minutes=50)
    assert plan is not None
    mail = confirmation_email(meeting(), result, changes_made(meeting(), plan),
                              without_answer=True, token=TOKEN, sender=SENDER,
                              renderer=renderer, language=language)
    local = checklist.in_language(language)
    wording = local.row("importance").a
    assert wording[0].upper() + wording[1:] in mail.text
    assert FORMAT_WORDS[language][0] in mail.subject and WHEN[language] in mail.text
    for text in (mail.subject, mail.text, mail.html):
        assert_no_english(text, language, checklist)


def test_the_german_confirmation_counts_in_german(checklist, renderer):
    mail = confirmation_email(meeting(), decided(checklist), [], without_answer=False,
                              token=TOKEN, sender=SENDER, renderer=renderer, language="de")
    assert "(Frage 1: der Titel enthält „pitch“)." in mail.text
    assert "Grundlage: 3 deiner Antworten, 3 Punkte aus Kalender oder Einstellungen und 6 " \
           "unbekannte." in mail.text
    assert "Zum Ändern antworte einfach „virtuell“." in mail.text


@pytest.mark.parametrize("choice", list(Format))
@pytest.mark.parametrize("language", LANGUAGES)
def test_hard_reasons_are_said_in_the_language(checklist, renderer, language, choice):
    for hard in (HardFacts(organiser_choice=choice), HardFacts(on_site_equipment=True),
                 HardFacts(travel_ruled_out=Phrase(N_("{customer}'s travel policy"),
                                                   customer="Acme"))):
        result = recommend(checklist, {}, hard)
        mail = confirmation_email(meeting(), result, [], without_answer=False, token=TOKEN,
                                  sender=SENDER, renderer=renderer, language=language)
        assert_no_english(mail.text, language, checklist)
        plan = plan_annotation(meeting(), result, renderer, organisation_name="Example Ltd",
                               virtual_minutes=50, language=language)
        assert plan is not None
        assert_no_english(plan.description, language, checklist)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_digest_is_in_the_organisers_language(checklist, renderer, language):
    items = [DigestItem(meeting(f"Meeting {n}"), (2, 5), token, Format.VIRTUAL)
             for n, token in enumerate(["a" * 30, "b" * 30])]
    mail = digest_email("alice@example.com", items, checklist=checklist, sender=SENDER,
                        renderer=renderer, language=language)
    assert mail.subject.startswith("2 ") and FORMAT_WORDS[language][1] in mail.subject
    assert checklist.in_language(language).row("values").question in mail.text
    for token in ("a" * 30, "b" * 30):
        assert f"mailto:meeting-assistant+{token}@example.com?subject=Re%3A" in mail.text
    for text in (mail.subject, mail.text, mail.html):
        assert_no_english(text, language, checklist)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("html", [False, True])
def test_the_invite_note_is_in_the_customers_language(checklist, renderer, language, html):
    virtual = recommend(checklist, {"values": RowAnswer(Side.B, Provenance.ORGANISER),
                                    "location": RowAnswer(Side.B, Provenance.ORGANISER)})
    event = meeting(description="<p>Agenda</p>" if html else "Agenda",
                    description_is_html=html)
    plan = plan_annotation(event, virtual, renderer, organisation_name="Example Ltd",
                           virtual_minutes=50, language=language)
    assert plan is not None
    local = checklist.in_language(language)
    assert CAMERAS[language] in plan.description and MINUTES[language] in plan.description
    assert "Meeting format" not in plan.description and "meeting-format note" not in \
        plan.description  # the marker lines are in the language too
    assert voice(language).and_list([local.row("values").invite_b,
                                     local.row("location").invite_b]) in plan.description
    assert_no_english(plan.description, language, checklist)
    in_person = recommend(checklist, {"rapport": RowAnswer(Side.A, Provenance.ORGANISER)})
    plan = plan_annotation(event, in_person, renderer, organisation_name="Example Ltd",
                           virtual_minutes=50, language=language)
    assert plan is not None and local.row("rapport").invite_a in plan.description
    assert_no_english(plan.description, language, checklist)


def test_the_german_invite_note_is_formal(checklist, renderer):
    result = recommend(checklist, {"location": RowAnswer(Side.B, Provenance.ORGANISER)},
                       HardFacts(travel_ruled_out="no travel this quarter"))
    plan = plan_annotation(meeting(), result, renderer, organisation_name="Example Ltd",
                           virtual_minutes=45, language="de")
    assert plan is not None
    assert "Wir treffen uns per Video, weil für diesen Termin keine Reise möglich ist." \
        in plan.description
    assert "Wir haben 45 Minuten eingeplant" in plan.description
    assert "Hinzugefügt vom Meeting-Assistenten von Example Ltd." in plan.description


def test_the_assessor_writes_the_note_in_the_language_it_is_given(checklist, renderer):
    config = Config(organisation=Organisation(domains=["example.com"]))
    assessor = Assessor(config, checklist, renderer)
    assessment = assessor.assess(meeting("Acme weekly sync"), now=NOW, note_language="fr")
    assert assessment.plan is not None and assessment.recommendation is not None
    assert "Nous nous retrouverons" in assessment.plan.description
    again = assessor.plan_decided(meeting("Acme weekly sync"), assessment.recommendation,
                                  language="es")
    assert again is not None and "Nos reuniremos" in again.description
    english = assessor.plan_decided(meeting("Acme weekly sync"), assessment.recommendation)
    assert english is not None and "We'll meet" in english.description


def test_a_recorded_decision_is_still_said_in_any_language(checklist, renderer):
    result = decided(checklist)
    stored = json.loads(json.dumps(recommendation_json(result)))
    loaded = recommendation_from_json(stored)
    assert loaded == result  # the English, as before
    mail = confirmation_email(meeting(), loaded, [], without_answer=False, token=TOKEN,
                              sender=SENDER, renderer=renderer, language="de")
    assert "(Frage 1: der Titel enthält „pitch“)." in mail.text
    # Recorded by an earlier version, without phrases: the reasons stay as they were written.
    del stored["phrases"]
    old = recommendation_from_json(stored)
    assert old == result and not any(isinstance(reason, Phrase) for reason in old.reasons)
    stored["phrases"] = {"reasons": [{"message": "{nothing}"}] * len(result.reasons)}
    assert recommendation_from_json(stored) == result  # unreadable phrases: the English


def test_the_clis_json_is_as_it_was(checklist, renderer):
    assert "phrases" not in recommendation_json(decided(checklist), phrases_too=False)
    config = Config(organisation=Organisation(domains=["example.com"]))
    assessment = Assessor(config, checklist, renderer).assess(meeting(), now=NOW)
    output = json.loads(json.dumps(assessment_json(assessment)))
    assert "phrases" not in output["recommendation"]
    assert output["inferred"]["importance"]["why"] == "the title says 'pitch'"


def test_inferred_whys_are_said_in_the_organisers_language(checklist):
    config = Config(organisation=Organisation(domains=["example.com"]),
                    customers={"acme.com": Customer(name="Acme", values="virtual",
                                                    power="customer")})
    detector = CustomerMeetingDetector(config.organisation.domains, config.detection)
    event = meeting("Acme kick-off", attendees=("alice@example.com", "carol@acme.com",
                                                "dan@globex.com"))
    found = Inferrer(checklist, config, detector).infer(event, detector.detect(event), [],
                                                        NOW).answers
    assert found["importance"].why == "the title says 'kick-off'; first meeting with acme.com, " \
                                      "globex.com"
    german = voice("de")
    assert german.say(found["importance"].why) == ("der Titel enthält „kick-off“; erster Termin "
                                                    "mit acme.com, globex.com")
    assert german.say(found["stakeholders"].why) == "2 Personen aus 2 Domains"
    assert german.say(found["power"].why) == "die Macht liegt bei Acme"
    assert voice("fr").say(found["stakeholders"].why) == "2 personnes de 2 domaines"
    assert voice("es").say(found["values"].why) == "Acme prefiere reunirse virtualmente"


def test_a_german_title_word_is_found_whatever_the_organisers_language(checklist):
    config = Config(organisation=Organisation(domains=["example.com"]))
    detector = CustomerMeetingDetector(config.organisation.domains, config.detection)
    event = meeting("Jour fixe mit Acme")
    found = Inferrer(checklist, config, detector).infer(event, detector.detect(event), None,
                                                        NOW).answers
    assert found["importance"].side is Side.B
    assert voice("de").say(found["importance"].why) == "der Titel enthält „Jour fixe“"


def test_dates_and_lists_follow_the_language():
    event = meeting()
    assert describe_when(event) == "Thu 3 Dec, 10:00-11:00 (Europe/Berlin)"
    assert [describe_when(event, language) for language in LANGUAGES] == \
        [WHEN[language] for language in LANGUAGES]
    all_day = replace(event, start=date(2026, 9, 3), end=date(2026, 9, 4))
    assert describe_when(all_day) == "Thu 3 Sep, all day"
    assert describe_when(all_day, "de") == "Do., 3. Sept., ganztägig"
    assert [voice(language).and_list(["a", "b", "c"]) for language in ("en", *LANGUAGES)] == \
        ["a, b and c", "a, b und c", "a, b et c", "a, b y c"]


def test_english_is_as_it_always_was(checklist, renderer):
    mail = question_email(meeting(), customers=["Acme"], inferred=inferred(), questions=(2, 5),
                          checklist=checklist, token=TOKEN, sender=SENDER, renderer=renderer,
                          deadline=datetime(2026, 12, 2, 9, tzinfo=UTC),
                          default=Format.IN_PERSON)
    assert mail.subject == f"Acme pitch: in person or virtual? [MFA-{TOKEN}]"
    row2, row5 = checklist.row("priorities"), checklist.row("values")
    assert mail.text == "\n".join([
        "Hi Alice,",
        "",
        "Acme pitch with Acme, Thu 3 Dec, 10:00-11:00 (Europe/Berlin): in person or virtual? "
        "As it stands, in person; 2 quick answers could change that.",
        "",
        "What I know already (answer a number to change it):",
        f"  1. importance: A, {checklist.row('importance').a} (the title says 'pitch')",
        f"  2. priorities: B, {row2.b} (it starts in 30 hours)",
        f"  5. values: B, {row5.b} (Acme values meeting virtually)",
        "",
        "Please answer:",
        f"  2. {row2.question}",
        f"     A: {row2.a}",
        f"     B: {row2.b}",
        f"  5. {row5.question}",
        f"     A: {row5.a}",
        f"     B: {row5.b}",
        "",
        'Reply with the numbers and letters, e.g. "2A 5B", or just "in person" or "virtual".',
        "Without an answer by Wed 2 Dec 10:00, I'll go with in person.",
        "",
        "Your meeting-format assistant at Example Ltd",
    ])


def test_an_organiser_without_a_name_is_greeted_in_the_language(checklist, renderer):
    from assistant.models import Person

    nameless = replace(meeting(), organizer=Person("@example.com"))
    for language, greeting in (("en", "Hi there,"), ("de", "Hallo,"), ("fr", "Bonjour,"),
                               ("es", "¡Hola!")):
        mail = question_email(nameless, customers=[], inferred={}, questions=(1,),
                              checklist=checklist, token=TOKEN, sender=SENDER,
                              renderer=renderer, deadline=None, language=language)
        assert mail.text.startswith(greeting + "\n") and f"<p>{greeting}</p>" in mail.html


def test_a_phrase_is_its_english_and_keeps_what_any_language_needs():
    hours = Phrase(*Nn_("{count} hour", "{count} hours"), count=1)
    why = Phrase(N_("it starts in {span}"), span=hours)
    assert why == "it starts in 1 hour" and isinstance(why, str)
    assert voice("fr").say(why) == "elle commence dans 1 heure"
    assert pickle.loads(pickle.dumps(why)) == why and copy.deepcopy(why).values == why.values
    both = joined("; ", [why, "as the admin wrote it"])
    assert both == "it starts in 1 hour; as the admin wrote it"
    assert voice("de").say(both) == "er beginnt in 1 Stunde; as the admin wrote it"
    memory = Phrase(N_("{organiser}'s answer of {day} for {domain}"), organiser="bob",
                    day=date(2026, 12, 3), domain="acme.com")
    assert memory == "bob's answer of 3 Dec for acme.com"
    assert voice("de").say(memory) == "Antwort von bob vom 3. Dez. zu acme.com"
    wording = Wording({"en": "a side", "de": "eine Seite"})
    for text in (why, both, memory, wording, wording.capitalised(), "plain"):
        back = from_json(json.loads(json.dumps(to_json(text))))
        assert back == text and voice("de").say(back) == voice("de").say(text)
    assert voice("es").say(wording) == "a side"  # a language the data file lacks: English


@pytest.mark.parametrize("data", [{"message": "{missing}"}, {"texts": {"de": "x"}}, [1],
                                  {"message": "x", "values": []}, {"date": "not a date"}, None])
def test_json_that_is_no_phrase_is_refused(data):
    with pytest.raises(ValueError):
        from_json(data)


@pytest.mark.parametrize("html", [False, True])
def test_a_note_rewritten_in_another_language_replaces_the_old_one(checklist, renderer, html):
    from assistant import block

    result = recommend(checklist, {"location": RowAnswer(Side.B, Provenance.ORGANISER)})
    original = "<p>Agenda</p>" if html else "Agenda"
    event = meeting(description=original, description_is_html=html)
    for language in ("de", "fr", "es", "en", "de"):
        plan = plan_annotation(event, result, renderer, organisation_name="Example Ltd",
                               virtual_minutes=50, language=language)
        assert plan is not None
        start, end = block.TEXT_MARKERS[language]
        assert plan.description.count(start) == 1 and plan.description.count(end) == 1
        assert sum(plan.description.count(other) for other, _ in block.TEXT_MARKERS.values()) == 1
        assert "Agenda" in plan.description and plan.description.count("Agenda") == 1
        event = replace(event, description=plan.description, mark=plan.mark)
    assert block.remove_block(event.description, html) == original
