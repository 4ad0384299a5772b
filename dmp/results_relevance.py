"""Which laboratory results matter for this patient: from the record's current problems (ICD-10
codes of the synthesis) and treatments, the analyte groups of dmp/loinc.py a clinician should
see first, in the order the screens show them. HbA1c for diabetes; creatinine and eGFR under
metformin, an ACE inhibitor, an angiotensin II receptor blocker or with kidney disease; LDL for
dyslipidaemia or under a statin; potassium under an ACE inhibitor, an ARB or a diuretic, or with
kidney disease; INR under a vitamin K antagonist; TSH under levothyroxine or with a thyroid
disorder.

A pure function over codes and words: the caller reads the record (through its selectors) and
passes what it read. Treatments are stored as words — the synthesis' free text, the dispensed
medicines' labels (their CIP13 codes name a box, not a substance, and no CIP → ATC table ships
with the application) — so the words are matched, accents and case aside, against a small
table of substances (French and English international non-proprietary names and a few French
brand names) → WHO ATC codes (dmp/data/atc_substances.csv). ATC codes, when a caller
has them, are used as they are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .data import rows
from .search_index import normalised_words

DIABETES = ("E10", "E11", "E12", "E13", "E14")
KIDNEY_DISEASE = ("N18",)
DYSLIPIDAEMIA = ("E78",)
THYROID = ("E03", "E05")
METFORMIN = ("A10BA02",)
ANTIDIABETICS = ("A10",)
ACE_INHIBITORS_AND_ARBS = ("C09A", "C09B", "C09C", "C09D")
DIURETICS = ("C03",)
STATINS = ("C10AA",)
VITAMIN_K_ANTAGONISTS = ("B01AA",)
LEVOTHYROXINE = ("H03AA01",)


@dataclass(frozen=True)
class Rule:
    """Show `group` when a problem's code starts with one of `problems` or a treatment's ATC
    code with one of `treatments`."""

    group: str
    problems: tuple[str, ...] = ()
    treatments: tuple[str, ...] = ()

    def applies(self, problems: set[str], atc: set[str]) -> bool:
        return any(code.startswith(self.problems) for code in problems) or any(
            code.startswith(self.treatments) for code in atc)


# In the order the screens list the groups.
RULES: tuple[Rule, ...] = (
    Rule("hba1c", DIABETES, ANTIDIABETICS),
    Rule("creatinine", KIDNEY_DISEASE, METFORMIN + ACE_INHIBITORS_AND_ARBS),
    Rule("egfr", KIDNEY_DISEASE, METFORMIN + ACE_INHIBITORS_AND_ARBS),
    Rule("potassium", KIDNEY_DISEASE, ACE_INHIBITORS_AND_ARBS + DIURETICS),
    Rule("ldl", DYSLIPIDAEMIA, STATINS),
    Rule("inr", (), VITAMIN_K_ANTAGONISTS),
    Rule("tsh", THYROID, LEVOTHYROXINE),
)

SUBSTANCES = "atc_substances.csv"


@lru_cache(maxsize=1)
def _atc_by_word() -> dict[str, str]:
    return {word: row["atc"] for row in rows(SUBSTANCES) for word in row["names"].split()}


def atc_of(text: str) -> tuple[str, ...]:
    """The ATC codes of every substance a line names ("Valsartan/hydrochlorothiazide 80/12,5 mg"
    → both), in the order written."""
    by_word = _atc_by_word()
    return tuple(dict.fromkeys(by_word[w] for w in normalised_words(text) if w in by_word))


def analyte_groups(*, problems: Iterable[str] = (), treatments: Iterable[str] = (),
                   atc: Iterable[str] = ()) -> tuple[str, ...]:
    """The analyte groups to show for a patient with these problems (ICD-10 codes, "E11.9"),
    treatments (lines of words) and ATC codes, in the order of `RULES`."""
    problem_codes = {"".join(code.split()).upper() for code in problems}
    atc_codes = {code.strip().upper() for code in atc} | {code for line in treatments for code in atc_of(line)}
    return tuple(rule.group for rule in RULES if rule.applies(problem_codes, atc_codes))
