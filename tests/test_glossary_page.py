"""The words of the record, explained (dmp/glossary.py, /words/): each language's page shows its
glossary's terms and explanations (docs/glossary/<lang>.md), with the French word beside them."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.text import capfirst

from dmp.glossary import WORDS
from tests.test_translations import glossary

URL = reverse("words")
LANGUAGES = [code for code, _name in settings.LANGUAGES]


def _explanations(language: str) -> dict[str, tuple[str, str]]:
    path = settings.BASE_DIR / "docs" / "glossary" / f"{language}.md"
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[a-z_]+", cells[0]) and cells[0] != "key":
            rows[cells[0]] = (cells[3], cells[5])
    return rows


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_says_what_the_glossary_says(language):
    rows = _explanations(language)
    assert [key for key, _t, _e in WORDS] == list(rows), "the page lists the glossary's concepts in its order"
    assert {row["key"] for row in glossary(language)} == set(rows)
    with translation.override(language):
        shown = {key: (str(term), str(explanation)) for key, term, explanation in WORDS}
    assert shown == rows


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ar", "ru", "fr"])
def test_anyone_reads_the_words_in_their_language_with_the_french_word(client, language):
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    term, explanation = _explanations(language)["attending_doctor"]
    assert escape(explanation) in html and f'<dt id="attending_doctor">{escape(capfirst(term))}' in html
    french = '<span class="french" lang="fr" dir="ltr">(médecin traitant)</span>'
    assert (french in html) == (language != "fr"), "the French word, beside the others only"


@pytest.mark.django_db
def test_every_page_links_to_the_words(client, world):
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:home"), follow=True).content.decode()
    assert f'<footer class="bottom"><a href="{URL}">' in page
