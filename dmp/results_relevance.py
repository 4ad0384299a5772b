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
brand names) → WHO ATC codes (https://atcddd.fhi.no/atc_ddd_index/). ATC codes, when a caller
has them, are used as they are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

# Substances → WHO ATC, by the words a prescription or a dispensing label uses.
SUBSTANCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("A10BA02", ("metformine", "metformin", "glucophage", "stagid")),
    ("A10BB09", ("gliclazide",)),
    ("A10BH01", ("sitagliptine", "sitagliptin")),
    ("A10BK01", ("dapagliflozine", "dapagliflozin")),
    ("A10BK03", ("empagliflozine", "empagliflozin")),
    ("A10A", ("insuline", "insulin")),
    ("C09AA01", ("captopril",)),
    ("C09AA02", ("enalapril",)),
    ("C09AA03", ("lisinopril",)),
    ("C09AA04", ("perindopril", "coversyl")),
    ("C09AA05", ("ramipril", "triatec")),
    ("C09AA06", ("quinapril",)),
    ("C09AA07", ("benazepril",)),
    ("C09AA09", ("fosinopril",)),
    ("C09AA10", ("trandolapril",)),
    ("C09CA01", ("losartan",)),
    ("C09CA03", ("valsartan",)),
    ("C09CA04", ("irbesartan",)),
    ("C09CA06", ("candesartan",)),
    ("C09CA07", ("telmisartan",)),
    ("C09CA08", ("olmesartan",)),
    ("C03AA03", ("hydrochlorothiazide",)),
    ("C03BA11", ("indapamide",)),
    ("C03CA01", ("furosemide", "lasilix")),
    ("C03CA02", ("bumetanide",)),
    ("C03DA01", ("spironolactone",)),
    ("C03DA04", ("eplerenone",)),
    ("C10AA01", ("simvastatine", "simvastatin")),
    ("C10AA03", ("pravastatine", "pravastatin")),
    ("C10AA04", ("fluvastatine", "fluvastatin")),
    ("C10AA05", ("atorvastatine", "atorvastatin", "tahor")),
    ("C10AA07", ("rosuvastatine", "rosuvastatin", "crestor")),
    ("B01AA03", ("warfarine", "warfarin", "coumadine")),
    ("B01AA07", ("acenocoumarol", "sintrom")),
    ("B01AA12", ("fluindione", "previscan")),
    ("H03AA01", ("levothyroxine", "levothyrox", "euthyrox")),
)
_ATC_BY_WORD = {word: atc for atc, words in SUBSTANCES for word in words}


def atc_of(text: str) -> tuple[str, ...]:
    """The ATC codes of every substance a line names ("Valsartan/hydrochlorothiazide 80/12,5 mg"
    → both), in the order written."""
    return tuple(dict.fromkeys(_ATC_BY_WORD[w] for w in normalised_words(text) if w in _ATC_BY_WORD))


def analyte_groups(*, problems: Iterable[str] = (), treatments: Iterable[str] = (),
                   atc: Iterable[str] = ()) -> tuple[str, ...]:
    """The analyte groups to show for a patient with these problems (ICD-10 codes, "E11.9"),
    treatments (lines of words) and ATC codes, in the order of `RULES`."""
    problem_codes = {"".join(code.split()).upper() for code in problems}
    atc_codes = {code.strip().upper() for code in atc} | {code for line in treatments for code in atc_of(line)}
    return tuple(rule.group for rule in RULES if rule.applies(problem_codes, atc_codes))
