"""Every notification (SMS, e-mail subject, text and HTML bodies, every event) reads in the
recipient's language: in Arabic, Persian, Russian, Ukrainian, Albanian and English, nothing of
the French or English source is left, and the text is in the language's script."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import strip_tags

from tests.leftovers import SCRIPTS, leftovers

FOLDER = Path(__file__).resolve().parent.parent / "templates" / "notifications"
EVENTS = sorted(p.name for p in FOLDER.iterdir() if p.is_dir())
PARTS = ("sms.txt", "subject.txt", "body.txt", "body.html")
WHEN = datetime(2026, 3, 14, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))
# A value for every variable the templates use: names and codes, never a French sentence.
CONTEXT = {
    "when": WHEN, "end": WHEN, "date": WHEN, "time": WHEN, "who": "Gregory House",
    "professional": "Gregory House", "organisation": "CPAM Roubaix", "username": "alice.martin",
    "patient": "Alice Martin", "new_destination": "+33 6 12 ** ** 78",
    "link": "https://dmp.example/activate/abc", "code": "482913", "what": "Alice Martin",
    "count": 3, "counter": 3, "minutes": 10, "represented": "Léo Martin",
}


def test_the_context_covers_every_variable_the_templates_use():
    used = set()
    for path in FOLDER.rglob("*.*"):
        used |= set(re.findall(r"(?:\{\{ ?|counter=)([a-z_]+)", path.read_text(encoding="utf-8")))
    assert used <= set(CONTEXT), sorted(used - set(CONTEXT))
    assert len(EVENTS) >= 13


@pytest.mark.parametrize("language", ["en", "ar", "fa", "ru", "uk", "sq"])
def test_every_notification_is_in_the_recipients_language(language):
    problems = []
    for event in EVENTS:
        for part in PARTS:
            if not (FOLDER / event / part).exists():  # some events go by one channel only
                continue
            with translation.override(language):
                text = render_to_string(f"notifications/{event}/{part}", CONTEXT)
            if part.endswith(".html"):
                text = strip_tags(text)
            problems += [f"{event}/{part}: {left}" for left in leftovers(text, language)]
            if language in SCRIPTS and not re.search(SCRIPTS[language], text):
                problems.append(f"{event}/{part}: no {language} letters in {text[:80]!r}")
    assert not problems, "\n".join(problems[:20])


def test_the_check_finds_french_left_in_an_arabic_message():
    """The detector itself: a French sentence of the catalogue is found, a name is not."""
    with translation.override("fr"):
        french = render_to_string("notifications/access/body.txt", CONTEXT)
    assert leftovers(french, "ar"), "the French body must be reported when Arabic was expected"
    assert not leftovers("Alice Martin, CPAM Roubaix, 482913", "ar")
