"""French is the default language; English, Arabic and Persian on request (every message's
translation into each language: tests/test_translations.py)."""

from __future__ import annotations

import pytest


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
