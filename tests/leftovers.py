"""Finding French or English left in a text that should be in another language.

The check is against the catalogues, not a dictionary: every source string (English msgid) and
every French translation, cut at its placeholders and tags into fragments of three words or more,
is looked for in the text — unless the language's own translation says the same (a brand name, an
acronym). People's content (names, document titles typed in French) is never in the catalogues,
so it is never reported."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"
_CUT = re.compile(r"%\([a-z_0-9]+\)[sd]|%[sd]|\{[a-z_0-9]*\}|<[^>]+>|\n")
SCRIPTS = {"ar": "[\u0600-\u06ff]", "fa": "[\u0600-\u06ff]", "ru": "[\u0400-\u04ff]",
           "uk": "[\u0400-\u04ff]"}


def _normal(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").replace("’", "'").split())


def _fragments(text: str) -> list[str]:
    return [f for f in (_normal(part).strip(" :;,.()«»\"'-") for part in _CUT.split(text))
            if len(f.split()) >= 3 and len(f) >= 15]


@cache
def _catalogue(language: str) -> list[polib.POEntry]:
    return [e for e in polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
            if not e.obsolete]


@cache
def source_fragments(language: str) -> dict[str, str]:
    """fragment of English or French → the msgid it comes from, for what `language` says
    differently."""
    french = {(e.msgctxt, e.msgid): e for e in _catalogue("fr")}
    found: dict[str, str] = {}
    for entry in _catalogue(language):
        own = " ".join([entry.msgstr, *entry.msgstr_plural.values()])
        fr = french.get((entry.msgctxt, entry.msgid))
        sources = [entry.msgid, entry.msgid_plural or ""]
        if language != "fr" and fr is not None:
            sources += [fr.msgstr, *fr.msgstr_plural.values()]
        for source in sources:
            for fragment in _fragments(source):
                if fragment not in _normal(own):
                    found.setdefault(fragment, entry.msgid)
    return found


def leftovers(text: str, language: str) -> list[str]:
    """The catalogue's English or French fragments found in `text` (rendered in `language`)."""
    text = _normal(text)
    return sorted({f"{fragment!r} (from {msgid!r})"
                   for fragment, msgid in source_fragments(language).items() if fragment in text})
