"""The International Patient Summary as a PDF the person carries abroad (DOMAIN.md §7).

Rendered from the IPS document Bundle itself (`fhir.patient_summary`, through
`SummaryContent.bundle()`), section by section and entry by entry, so the paper and the FHIR
`$summary` cannot say different things. One bilingual document (docs/languages.md says why):
every heading, label and explanation in the person's language with the same in English next
to it (in French when the person reads English); the coded content as recorded, its code and
its French label, marked `lang="fr"`. Right to left for Arabic and Persian, fragments isolated,
fonts that shape the Arabic script.

Like dmp/fhir.py it formats and never decides: callers pass a `SummaryContent` that a selector
loaded through the policy (dmp/selectors/summary.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from . import fhir, pdf
from .selectors.summary import SummaryContent

TEMPLATE = "documents/patient_summary.html"

# Every fixed text of the paper, shown in two languages.
LABELS = {
    "title": _("International Patient Summary"),
    "what": _("This paper sums up the main facts of this person's health, from their shared medical record (DMP) "
              "in France, for a doctor who does not know them. It is not the full record."),
    "codes": _("Codes and their labels are written as recorded in France, in French: ICD-10 for problems, CIP13 "
               "for medicines."),
    "identity": _("Identity"),
    "name": _("Name"),
    "birth_date": _("Date of birth"),
    "identifier": _("Record number"),
    "attending_doctor": _("Attending doctor"),
    "prepared_on": _("Prepared on"),
    "author": _("Author"),
    "system": _("Shared medical record"),
    "none": _("No information available."),
    "declared": _("declared by the patient"),
    "batch": _("batch"),
}
SECTION_LABELS = {
    fhir.IPS_PROBLEMS[0]: _("Current problems"),
    fhir.IPS_MEDICATIONS[0]: _("Medicines"),
    fhir.IPS_ALLERGIES[0]: _("Allergies and intolerances"),
    fhir.IPS_IMMUNIZATIONS[0]: _("Vaccinations"),
    fhir.IPS_RESULTS[0]: _("Laboratory results"),
    fhir.IPS_ADVANCE_DIRECTIVES[0]: _("Advance directives"),
}


@dataclass(frozen=True)
class Label:
    first: str
    second: str


@dataclass
class Entry:
    text: str  # as recorded (French, or the words the patient or doctor typed)
    code: str = ""
    system: str = ""  # "ICD-10", "CIP13"
    when: date | datetime | None = None
    declared: bool = False
    batch: str = ""


@dataclass
class Section:
    label: Label
    entries: list[Entry] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # free text (advance directives)


def languages_for(record) -> tuple[str, str]:
    """The person's language, and the second language of the paper: English, the language a
    clinician abroad most likely reads, or French when the person reads English."""
    codes = [code for code, _name in settings.LANGUAGES]
    first = record.preferred_language if record.preferred_language in codes else settings.LANGUAGE_CODE
    return first, ("fr" if first == "en" else "en")


def _label(text, first: str, second: str) -> Label:
    with translation.override(first):
        one = str(text)
    with translation.override(second):
        two = str(text)
    return Label(one, two)


def _system_name(system: str) -> str:
    return {fhir.ICD10_SYSTEM: "ICD-10", fhir.CIP13_SYSTEM: "CIP13"}.get(system, "")


def _entry(resource) -> Entry:
    concept = (getattr(resource, "code", None) or getattr(resource, "medicationCodeableConcept", None)
               or getattr(resource, "vaccineCode", None))
    coding = concept.coding[0] if concept and concept.coding else None
    kind = resource.get_resource_type()
    when = {
        "Condition": getattr(resource, "onsetDateTime", None),
        "MedicationStatement": getattr(resource, "effectiveDateTime", None),
        "Immunization": getattr(resource, "occurrenceDateTime", None),
        "Observation": getattr(resource, "effectiveDateTime", None),
    }.get(kind)
    declared = False
    if kind == "AllergyIntolerance" and resource.verificationStatus is not None:
        declared = resource.verificationStatus.coding[0].code == "unconfirmed"
    if kind == "Immunization":
        declared = resource.primarySource is False
    system = _system_name(coding.system) if coding else ""
    return Entry(
        text=fhir._resource_label(resource), code=coding.code if coding and system else "", system=system,
        when=when, declared=declared, batch=getattr(resource, "lotNumber", None) or "",
    )


def summary_pdf(content: SummaryContent, *, at: datetime | None = None) -> bytes:
    """The PDF of `content`'s International Patient Summary, in the record's language and
    English (or French)."""
    at = at or timezone.now()
    bundle = content.bundle(at=at)
    resources = {entry.fullUrl: entry.resource for entry in bundle.entry}
    composition = bundle.entry[0].resource
    first, second = languages_for(content.record)
    sections = []
    for part in composition.section:
        code = part.code.coding[0].code
        section = Section(label=_label(SECTION_LABELS.get(code, part.title), first, second))
        if code == fhir.IPS_ADVANCE_DIRECTIVES[0]:
            section.lines = fhir._lines(content.advance_directives) or [content.advance_directives.strip()]
        else:
            section.entries = [_entry(resources[ref.reference]) for ref in part.entry or []]
        sections.append(section)
    author = resources.get(composition.author[0].reference)
    author_name = ""
    if author is not None and author.get_resource_type() == "Practitioner":
        author_name = author.name[0].text or ""
    record = content.record
    doctor = content.treating_doctor
    with translation.override(first):
        html = render_to_string(TEMPLATE, {
            "record": record,
            "first": first, "second": second,
            "first_rtl": translation.get_language_info(first)["bidi"],
            "second_rtl": translation.get_language_info(second)["bidi"],
            "labels": {key: _label(text, first, second) for key, text in LABELS.items()},
            "sections": sections,
            "author_name": author_name,
            "doctor_name": doctor.user.get_full_name() if doctor else "",
            "prepared_at": composition.date,
        })
    return pdf.write_pdf(html)
