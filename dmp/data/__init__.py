"""The vocabulary tables shipped with the application (README.md here says where each comes
from), read the same way by dmp/icd10.py and dmp/loinc.py."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from django.utils.translation import get_language

DATA = Path(__file__).resolve().parent


def rows(name: str) -> list[dict]:
    """A table's rows, by file name; lines starting with "#" are its header notes."""
    path = DATA / name
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def names_language(language: str | None = None) -> str:
    """The language of the names a table gives to a reader of `language` (the active one by
    default): French for French screens, English for every other, the tables having no
    checked names in the five other languages of the interface."""
    return "fr" if (language or get_language() or "").startswith("fr") else "en"
