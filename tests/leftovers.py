"""Finding French or English left in a text that should be in another language.

The check is against the catalogues, not a dictionary: every English source (msgid) and every
French translation, cut at its placeholders into fragments of at least 2 words and 12
characters, must not appear in a text rendered in a language that says it differently. Words a
language keeps on purpose (a French term in brackets after its explanation, "Carte Vitale",
"CPAM") are in its own translations, so never reported; people's content (names, document
titles typed in French) is not in the catalogues, so never compared."""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cache
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"
MIN_WORDS, MIN_CHARS = 2, 12
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]|\{[a-z_]*\}")
# The letters each non-Latin language is written in.
SCRIPTS = {"ar": "[\u0600-\u06ff]", "fa": "[\u0600-\u06ff]", "ru": "[\u0400-\u04ff]",
           "uk": "[\u0400-\u04ff]"}


BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def normalised(text: str) -> str:
    """Text as a reader sees it: presentation forms folded (NFKC: a PDF's shaped Arabic),
    direction marks dropped, typographic apostrophes and spaces plain, spaces folded, case folded."""
    text = unicodedata.normalize("NFKC", text).translate(BIDI_CONTROLS).replace("\u2019", "'")
    return " ".join(text.split()).casefold()


def _plain(text: str) -> str:
    """A catalogue string as a reader sees it: no tags, entities decoded, then normalised."""
    return normalised(html.unescape(re.sub(r"<[^>]+>", "", text)))


def _fragments(text: str) -> list[str]:
    """The literal parts of a string around its placeholders, those long enough to compare."""
    return [part for part in (" ".join(p.split()) for p in PLACEHOLDER.split(_plain(text)))
            if len(part) >= MIN_CHARS and len(part.split()) >= MIN_WORDS]


@cache
def _catalogue(language: str) -> dict:
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    return {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}


def _forms(entry: polib.POEntry) -> list[tuple[str, str]]:
    """(source, translation) pairs of an entry, each English plural form against every
    translated one."""
    if entry.msgid_plural:
        translations = [value for _index, value in sorted(entry.msgstr_plural.items())]
        return [(source, value) for source in (entry.msgid, entry.msgid_plural) for value in translations]
    return [(entry.msgid, entry.msgstr)]


@cache
def forbidden(language: str) -> tuple[tuple[str, str, str], ...]:
    """(fragment, msgid, "English"/"French") that must not appear in a text in `language`."""
    own = _catalogue(language)
    french = _catalogue("fr")
    corpus = "\n".join(_plain(source if language == "en" else translation)
                       for entry in own.values() for source, translation in _forms(entry))
    found = []
    for key, entry in own.items():
        for source, translation in _forms(entry):
            said = source if language == "en" else translation
            if not said or "fuzzy" in entry.flags:
                continue  # untranslated: tests/test_translations.py reports it
            shown = _plain(said)
            if language != "en":
                found += [(fragment, entry.msgid, "English") for fragment in _fragments(source)
                          if fragment not in shown and fragment not in corpus]
            if language != "fr" and key in french:
                for _source, french_text in _forms(french[key]):
                    found += [(fragment, entry.msgid, "French") for fragment in _fragments(french_text)
                              if fragment not in shown and fragment not in corpus]
    return tuple(found)


def leftovers(text: str, language: str, *, sources=("English", "French")) -> list[str]:
    """The catalogue strings left in French or English (`sources`) in `text`, rendered in
    `language`."""
    seen = normalised(text)
    return sorted({f"{source} left: {msgid!r}" for fragment, msgid, source in forbidden(language)
                   if source in sources and fragment in seen})
