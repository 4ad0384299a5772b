"""Professionals from the national registry (RPPS), the other way than two operators to create
one (DOMAIN.md §4). The format is the public extract of the Annuaire Santé,
"PS_LibreAcces_Personne_activite" (docs/rpps_import.md): UTF-8 text, one activity per line,
fields separated by "|", a first line naming the columns. Columns are found by their name, so
their order and the columns this import does not use do not matter.

Each professional is created through `professional_create()` (no usable password, the
activation link to their e-mail, an audit entry "professional_create" with rule "rpps_import").
A professional already known is left alone, so importing the same file twice changes nothing.
Bad lines are reported with their number and a code, never their content, and skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from ..models import Organisation, Professional
from ..models.people import validate_rpps
from ..policy import Actor
from . import InvalidInput, InvalidInputCode
from .administration import NewProfessional, professional_create

# The columns used, by their name in the extract's first line.
ID_TYPE = "Type d'identifiant PP"
RPPS = "Identifiant PP"
LAST_NAME = "Nom d'exercice"
FIRST_NAME = "Prénom d'exercice"
PROFESSION = "Code profession"
SKILL_CODE = "Code savoir-faire"
SKILL_LABEL = "Libellé savoir-faire"
FINESS_SITE = "Numéro FINESS site"
EMAIL = "Adresse e-mail (coord. structure)"
TOWN = "Libellé commune (coord. structure)"
REQUIRED = (ID_TYPE, RPPS, LAST_NAME, FIRST_NAME, PROFESSION)

RPPS_ID_TYPE = "8"  # 0 is an ADELI number: not an RPPS
# The registry's profession codes this service serves.
PROFESSIONS = {"10": "physician", "21": "pharmacist", "40": "dentist", "50": "midwife", "60": "nurse",
               "70": "physiotherapist"}
GENERAL_PRACTICE = {"SM54"}  # Code savoir-faire of "Médecine générale"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)  # RPPS numbers
    already_known: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, code)


def rpps_import(*, actor: Actor, lines: Iterable[str]) -> ImportReport:
    """Create the professionals of a registry extract who are not known yet."""
    reader = csv.reader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
    header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(f"Not a PS_LibreAcces extract: missing column(s) {', '.join(missing)}.",
                           code=InvalidInputCode.INVALID)
    column = {name: header.index(name) for name in header if name}
    report = ImportReport()
    seen: set[str] = set()
    organisations = {o.finess: o for o in Organisation.objects.exclude(finess="")}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        value = {name: (row[i].strip() if i < len(row) else "") for name, i in column.items()}
        code = _problem(value)
        if code:
            report.problems.append((number, code))
            continue
        rpps = value[RPPS]
        if rpps in seen or Professional.objects.filter(rpps=rpps).exists():
            # One line per activity: the first one of a professional is the one imported.
            report.already_known += rpps not in seen
            seen.add(rpps)
            continue
        seen.add(rpps)
        new = NewProfessional(
            rpps=rpps, first_name=value[FIRST_NAME].title(), last_name=value[LAST_NAME].title(),
            profession=_profession(value), email=_email(value.get(EMAIL, "")),
            specialty=value.get(SKILL_LABEL, "")[:100], facility=organisations.get(value.get(FINESS_SITE, "")),
            town=value.get(TOWN, "").title(),
        )
        try:
            professional_create(actor=actor, new=new, rule="rpps_import")
        except InvalidInput:
            report.problems.append((number, "refused"))
            continue
        report.created.append(rpps)
    return report


def _problem(value: dict[str, str]) -> str:
    if value[ID_TYPE] != RPPS_ID_TYPE:
        return "not_rpps"
    try:
        validate_rpps(value[RPPS])
    except ValidationError:
        return "rpps_invalid"
    if value[PROFESSION] not in PROFESSIONS:
        return "profession_not_served"
    if not value[LAST_NAME] or not value[FIRST_NAME]:
        return "name_missing"
    return ""


def _profession(value: dict[str, str]) -> str:
    profession = PROFESSIONS[value[PROFESSION]]
    if profession == "physician":
        general = value.get(SKILL_CODE, "") in GENERAL_PRACTICE or "générale" in value.get(SKILL_LABEL, "").lower()
        return "gp" if general else "specialist"
    return profession


def _email(text: str) -> str:
    try:
        validate_email(text)
    except ValidationError:
        return ""
    return text
