"""In their language (DOMAIN.md §7): the papers printed at the counter, the International
Patient Summary and the login-code SMS, produced for an Arabic, a Persian and a Russian
speaker, are written in that script, with nothing of the catalogues left in French or English
(tests/leftovers.py), and right to left where it should be."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from dmp.bidi import FSI, LRI, PDI
from dmp.storage import cipher
from social_workers.views.onboarding import SESSION_KEY
from tests.leftovers import SCRIPTS, leftovers
from tests.test_ips_pdf import pdf_text

LANGUAGES = ["ar", "fa", "ru"]


def assert_in_language(text: str, language: str, *, sources=("English", "French")) -> None:
    assert re.search(SCRIPTS[language], unicodedata.normalize("NFKC", text)), f"no {language} letters"
    left = leftovers(text, language, sources=sources)
    assert not left, f"French or English left in the {language} text: {left[:5]}"


# --- the papers printed at the counter --------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.django_db
def test_the_explanation_sheet_is_in_the_persons_language(client, world, language):
    client.force_login(world.agent.user)
    response = client.get(reverse("social_workers:onboarding_presentation_pdf") + f"?lang={language}")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert_in_language(pdf_text(response.content), language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.django_db
def test_the_credentials_sheet_is_in_the_persons_language_with_its_identifier_whole(client, world, language):
    client.force_login(world.agent.user)
    session = client.session
    session[SESSION_KEY] = {
        "identifier": "1 85 05 78 006 084 91", "password": cipher().encrypt(b"Kx7-pQ2-mZ9").decode(),
        "language": language, "code_destination": "+33 6 •• •• •• 78", "organisation": "CADA Lille",
        "when": timezone.now().isoformat(),
    }
    session.save()
    response = client.get(reverse("social_workers:onboarding_credentials_pdf"))
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert_in_language(text, language)
    # Isolated left to right: the groups of the NIR and the password keep their order.
    assert "1 85 05 78 006 084 91" in text and "Kx7-pQ2-mZ9" in text


# --- the International Patient Summary --------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.django_db
def test_the_patient_summary_is_in_the_persons_language_and_english(client, world, language):
    from dmp.models import Synthesis, SynthesisProblem

    world.record.preferred_language = language
    world.record.save(update_fields=["preferred_language"])
    synthesis = Synthesis.objects.create(record=world.record, version=1, author=world.dr_house)
    SynthesisProblem.objects.create(synthesis=synthesis, icd10="E11.9", label="Diabète de type 2",
                                    since=date(2020, 1, 1))
    client.force_login(world.alice)
    response = client.get(reverse("portal_patient:summary_pdf", args=[world.record.pk]))
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert_in_language(text, language, sources=("French",))  # English is its second language
    assert "International Patient Summary" in text  # the second language, for a clinician abroad
    assert "E11.9" in text and "1970-05-17" in text


@pytest.mark.django_db
def test_the_patient_summary_of_an_english_reader_has_french_as_its_second_language(world):
    from dmp.policy import Actor
    from dmp.selectors.summary import summary_to_print
    from dmp.summary_pdf import summary_pdf

    world.record.preferred_language = "en"
    world.record.save(update_fields=["preferred_language"])
    text = pdf_text(summary_pdf(summary_to_print(Actor(world.alice), world.record.pk)))
    assert "International Patient Summary" in text and "Résumé international du patient" in text


@pytest.mark.parametrize(("language", "direction"), [("ar", "rtl"), ("fa", "rtl"), ("ru", "ltr")])
@pytest.mark.django_db
def test_the_patient_summary_says_its_language_and_direction(world, language, direction, monkeypatch):
    import weasyprint

    from dmp.policy import Actor
    from dmp.selectors.summary import summary_to_print
    from dmp.summary_pdf import summary_pdf

    seen = {}
    monkeypatch.setattr(weasyprint, "HTML", lambda string: seen.setdefault("html", string) and _Nothing())
    world.record.preferred_language = language
    world.record.save(update_fields=["preferred_language"])
    summary_pdf(summary_to_print(Actor(world.alice), world.record.pk))
    assert f'<html lang="{language}" dir="{direction}">' in seen["html"]
    assert f'<bdi dir="ltr">{world.record.identifier}</bdi>' in seen["html"]
    assert '<span class="second" lang="en" dir="ltr">International Patient Summary</span>' in seen["html"]


class _Nothing:
    def render(self, **options):
        return self

    def write_pdf(self):
        return b""


# --- the login-code SMS -----------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.django_db
def test_the_login_code_sms_is_in_the_persons_language_with_the_code_isolated(world, sms_outbox, language):
    from allauth.account.adapter import get_adapter

    world.alice.preferred_language = language
    world.alice.save(update_fields=["preferred_language"])
    request = RequestFactory().get("/")
    get_adapter(request).send_verification_code_sms(world.alice, world.alice.phone, "042917")
    (to, text), = sms_outbox
    assert to == world.alice.phone
    assert_in_language(text, language)
    if language in ("ar", "fa"):
        assert f"{LRI}042917{PDI}" in text  # right to left: the code kept whole and in order
    else:
        assert LRI not in text and FSI not in text and "042917" in text  # no isolate costs a Latin SMS nothing


def test_isolates_are_added_only_in_right_to_left_languages():
    from django.utils import translation

    from dmp.bidi import isolated_text, ltr_text

    with translation.override("fr"):
        assert ltr_text("06 12 34 56 78") == "06 12 34 56 78" and isolated_text("Ahmad") == "Ahmad"
    with translation.override("fa"):
        assert ltr_text("06 12 34 56 78") == f"{LRI}06 12 34 56 78{PDI}"
        assert isolated_text("Ahmad") == f"{FSI}Ahmad{PDI}"
        assert ltr_text("") == ""


def test_the_html_filters_escape_and_say_the_direction():
    from django.template import Context, Template

    rendered = Template('{{ nir|ltr }} {{ name|isolate }} {{ empty|ltr|default:"–" }}').render(
        Context({"nir": "1 85 05", "name": "<Karimi>", "empty": ""}))
    assert rendered == '<bdi dir="ltr">1 85 05</bdi> <bdi>&lt;Karimi&gt;</bdi> –'
