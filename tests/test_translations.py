"""Every message a patient, a legal representative, a counter agent or a notification shows
exists in all seven languages, and says the glossary's words.

The messages are extracted from the source itself (the way `makemessages` does: Django's
`templatize` for templates, `xgettext` with Django's keywords), not read from the catalogues:
a new string that nobody added to the catalogues fails here as surely as an untranslated one.

What must be translated into which languages:
- French (the default) and English: every message of the project. The clinician portal, the
  FHIR API's messages and Django admin stay French with English.
- Arabic, Persian, Russian, Ukrainian and Albanian: every message of every file outside
  `CLINICIAN_ONLY` (so a new page, form or service is covered the day it is written).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import polib
import pytest
from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
SOURCES = ("dmp", "portal_patient", "portal_pro", "social_workers", "templates")
# Read only by professionals (in French or English), by practice software or by operators.
CLINICIAN_ONLY = ("portal_pro/", "templates/portal_pro/", "dmp/api/", "dmp/admin.py",
                  "templates/admin/")
EVERYWHERE = ("fr", "en")
PEOPLE = ("ar", "fa", "ru", "uk", "sq")
# Django's own keywords (django/core/management/commands/makemessages.py).
KEYWORDS = ("gettext_noop", "gettext_lazy", "ngettext_lazy:1,2", "pgettext:1c,2",
            "npgettext:1c,2,3", "pgettext_lazy:1c,2", "npgettext_lazy:1c,2,3")

pytestmark = pytest.mark.skipif(shutil.which("xgettext") is None,
                                reason="gettext's xgettext is needed (Debian package gettext)")


def _source_files() -> list[Path]:
    files = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".html", ".txt") and "migrations" not in path.parts:
                files.append(path)
    return files


@cache
def extracted() -> dict[tuple[str | None, str], set[str]]:
    """(context, msgid) → the files that use it, for every message in the source. The templates
    are turned into Python in a directory of this process's own (xdist workers run this at the
    same time)."""
    with tempfile.TemporaryDirectory(prefix="xgettext-") as scratch:
        inputs = []
        for path in _source_files():
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix == ".py":
                inputs.append(relative)
                continue
            if not relative.startswith("templates/"):
                continue
            # As makemessages does: the template turned into Python that xgettext reads.
            target = Path(scratch) / (relative + ".py")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(templatize(path.read_text(encoding="utf-8"), origin=relative),
                              encoding="utf-8")
            inputs.append(str(target))
        command = [shutil.which("xgettext"), "--language=Python", "--from-code=UTF-8", "--output=-",
                   "--no-wrap", *(f"--keyword={k}" for k in KEYWORDS), *inputs]
        output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True,  # noqa: S603
                                text=True).stdout
        prefix = scratch.rstrip("/") + "/"
    found: dict[tuple[str | None, str], set[str]] = {}
    for entry in polib.pofile(output):
        found[(entry.msgctxt, entry.msgid)] = {
            f.removeprefix(prefix).removesuffix(".py") if f.startswith(prefix) else f
            for f, _line in entry.occurrences}
    return found


@cache
def catalogue(language: str) -> dict[tuple[str | None, str], polib.POEntry]:
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    return {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}


def _translated(entry: polib.POEntry | None) -> bool:
    if entry is None or "fuzzy" in entry.flags:
        return False
    if entry.msgid_plural:
        return bool(entry.msgstr_plural) and all(s.strip() for s in entry.msgstr_plural.values())
    return bool(entry.msgstr.strip())


def _needed(language: str) -> dict[tuple[str | None, str], set[str]]:
    if language in EVERYWHERE:
        return extracted()
    return {key: files for key, files in extracted().items()
            if not all(f.startswith(CLINICIAN_ONLY) for f in files)}


GETTEXT_IN_FSTRING = re.compile(r"""\{\s*(?:_|gettext|ngettext|pgettext|npgettext|gettext_lazy)\(""")


def test_no_message_is_hidden_from_the_extraction_inside_an_f_string():
    """xgettext does not read the expressions of an f-string: `f"{_('…')}"` is never extracted,
    so never translated, and no catalogue would ever say it is missing."""
    hidden = [f"{path.relative_to(ROOT)}:{number}" for path in _source_files() if path.suffix == ".py"
              for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if GETTEXT_IN_FSTRING.search(line)]
    assert not hidden, hidden


def test_the_extraction_sees_templates_python_and_plurals():
    """The check below is only as good as the extraction: it must find messages of each kind."""
    found = extracted()
    assert (None, "Log in") in found                                   # {% translate %}
    assert any(f.startswith("social_workers/") for files in found.values() for f in files)
    assert any(f.startswith("templates/notifications/") for files in found.values() for f in files)
    po = polib.pofile(str(LOCALE / "fr" / "LC_MESSAGES" / "django.po"))
    assert any(e.msgid_plural for e in po) and len(found) > 1000


@pytest.mark.parametrize("language", EVERYWHERE + PEOPLE)
def test_every_message_people_read_is_translated(language):
    known = catalogue(language)
    missing = [f"{msgid!r} ({', '.join(sorted(files)[:2])})"
               for (context, msgid), files in sorted(_needed(language).items(), key=str)
               if not _translated(known.get((context, msgid)))]
    assert not missing, (f"{len(missing)} messages lack a {language} translation (add them to "
                         f"locale/{language}/LC_MESSAGES/django.po):\n" + "\n".join(missing[:15]))


@pytest.mark.parametrize("language", EVERYWHERE + PEOPLE)
def test_catalogue_compiles_with_placeholders_intact(language, tmp_path):
    """msgfmt --check: every %(name)s of the source is in the translation, nothing added."""
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    result = subprocess.run(  # noqa: S603 - fixed argv: gettext's msgfmt on our catalogue
        [shutil.which("msgfmt"), "--check", "-o", str(tmp_path / "django.mo"), str(po)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("language", EVERYWHERE + PEOPLE)
def test_compiled_catalogue_is_the_committed_one(language):
    """What the server reads (.mo) says what the catalogue (.po) says."""
    po = catalogue(language)
    mo = {(e.msgctxt, e.msgid): e
          for e in polib.mofile(str(LOCALE / language / "LC_MESSAGES" / "django.mo"))}
    stale = [msgid for key, entry in po.items() if _translated(entry)
             for msgid in [key[1]]
             if key not in mo or (mo[key].msgstr or mo[key].msgstr_plural) !=
             (entry.msgstr or entry.msgstr_plural)]
    assert not stale, f"run manage.py compilemessages -l {language}: {stale[:5]}"


GLOSSARY_ROW = re.compile(r"^\|\s*(?P<key>[a-z_]+)\s*\|\s*(?P<english>[^|]+?)\s*\|[^|]*\|\s*"
                          r"(?P<term>[^|]+?)\s*\|\s*(?P<check>[^|]+?)\s*\|", re.M)


# The words-explained page shows each glossary's own terms and explanations, written for each
# language rather than translated from English: tests/test_glossary_page.py compares them.
GLOSSARY_CONTEXTS = ("glossary", "glossary term")


def glossary(language: str) -> list[dict[str, str]]:
    text = (ROOT / "docs" / "glossary" / f"{language}.md").read_text(encoding="utf-8")
    return [m.groupdict() for m in GLOSSARY_ROW.finditer(text) if m["key"] != "key"]


def test_every_language_has_a_glossary_of_every_concept():
    readme = (ROOT / "docs" / "glossary" / "README.md").read_text(encoding="utf-8")
    concepts = set(re.findall(r"^\| ([a-z_]+) \|", readme.split("## The concepts")[1], re.M)) - {"key"}
    assert len(concepts) > 30
    for language in ("en",) + PEOPLE:
        keys = [row["key"] for row in glossary(language)]
        assert set(concepts) <= set(keys), (language, sorted(set(concepts) - set(keys)))


@pytest.mark.parametrize("language", PEOPLE)
def test_the_glossary_term_is_used_wherever_the_concept_is(language):
    """A message that says "trusted person" says the glossary's word for it, every time."""
    known = catalogue(language)
    needed = _needed(language)
    inconsistent, checked = [], 0
    for row in glossary(language):
        stem = row["check"].strip().lower()
        if stem in ("", "-"):
            continue
        english = row["english"].split("(")[0].strip().lower()
        pattern = re.compile(rf"\b{re.escape(english)}(?:s|es)?\b", re.I)  # "records", not "recorded"
        for key in needed:
            entry = known.get(key)
            if key[0] in GLOSSARY_CONTEXTS:  # the glossary itself (dmp/glossary.py)
                continue
            if entry is None or not pattern.search(key[1]) or not _translated(entry):
                continue
            forms = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
            checked += 1
            if not all(stem in form.lower() for form in forms):
                inconsistent.append(f"{row['key']} ({stem}): {key[1]!r}")
    assert checked > 100, "the glossary's check stems must cover the common concepts"
    assert not inconsistent, "\n".join(inconsistent[:15])
