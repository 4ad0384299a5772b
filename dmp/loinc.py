"""LOINC names of the laboratory analytes the screens show (dmp/data/loinc_analytes.csv), and
their groups (dmp/data/loinc_groups.csv): the same analyte in another unit or by another method
(creatinine in mg/L and in µmol/L; LDL calculated or measured) belongs to one group, so its
values are shown together. A code not in the table is kept by whoever received it and shown
with the text its sender gave (`display(code, fallback=...)`).

Names are French on French screens and English on every other one: no checked source of names
in the five other languages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .data import names_language, rows

ANALYTES = "loinc_analytes.csv"
GROUPS = "loinc_groups.csv"
_CODE = re.compile(r"^(\d{1,7})-(\d)$")


@dataclass(frozen=True)
class Names:
    english: str
    french: str

    def name(self, language: str | None = None) -> str:
        """The name in `language` (the active one by default)."""
        return self.french if names_language(language) == "fr" else self.english


@dataclass(frozen=True)
class Analyte(Names):
    code: str
    group: str
    unit: str  # UCUM, the usual one in France


@dataclass(frozen=True)
class Group(Names):
    group: str


@lru_cache(maxsize=1)
def analytes() -> dict[str, Analyte]:
    """Every analyte of the table, by code, in the table's order."""
    return {row["code"]: Analyte(english=row["en"], french=row["fr"], code=row["code"], group=row["group"],
                                     unit=row["unit"])
            for row in rows(ANALYTES)}


@lru_cache(maxsize=1)
def groups() -> dict[str, Group]:
    """Every group, by name, in the order the screens list them."""
    return {row["group"]: Group(english=row["en"], french=row["fr"], group=row["group"]) for row in rows(GROUPS)}


def check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the dash ("4548" → 4): from the right,
    every other digit starting with the last is doubled, the digits of everything summed,
    and the check digit is what takes the sum to the next multiple of ten."""
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def is_loinc(code: str) -> bool:
    """A well-formed LOINC code whose check digit is right ("4548-4"), known to us or not."""
    match = _CODE.match(code or "")
    return bool(match) and check_digit(match[1]) == int(match[2])


def analyte_of(code: str) -> str:
    """The group of the analyte `code` measures ("14682-9" → "creatinine"), "" if unknown."""
    analyte = analytes().get(code)
    return analyte.group if analyte else ""


def codes_of(group: str) -> tuple[str, ...]:
    """The codes of one group, in the table's order (its usual code first)."""
    return tuple(code for code, analyte in analytes().items() if analyte.group == group)


def display(code: str, language: str | None = None, fallback: str = "") -> str:
    """The analyte's short name in `language` (the active one by default), or for a code we do
    not know the text its sender gave."""
    analyte = analytes().get(code)
    return analyte.name(language) if analyte else fallback


def unit_of(code: str) -> str:
    """The usual UCUM unit of the analyte, "" if unknown."""
    analyte = analytes().get(code)
    return analyte.unit if analyte else ""
