"""French is the default language and every string has its French translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PO = Path(__file__).resolve().parent.parent / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def test_every_french_message_is_translated():
    text = PO.read_text(encoding="utf-8")
    entries = re.split(r"\n\n", text)[1:]  # the first block is the header
    untranslated = [e for e in entries if re.search(r'^msgstr ""\n?$', e.strip() + "\n", re.M) and
                    not re.search(r'^msgstr ""\n"', e, re.M)]
    fuzzy = [e for e in entries if "#, fuzzy" in e]
    assert not untranslated and not fuzzy, (untranslated + fuzzy)[:3]


@pytest.mark.django_db
def test_pages_are_in_french_by_default_and_in_english_on_request(client):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="").content.decode()
    assert 'lang="fr"' in page and "Se connecter" in page
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="en"' in page and "Log in" in page


@pytest.mark.django_db
def test_persian_and_arabic_pages_are_right_to_left(client):
    for code in ("fa", "ar"):
        page = client.get("/", HTTP_ACCEPT_LANGUAGE=code).content.decode()
        assert f'lang="{code}" dir="rtl"' in page
