"""The médecin traitant's synthesis as a CDA R2 document along the CI-SIS VSM content model
(volet de synthèse médicale, 2023.01), for software that expects one (docs/cda.md).

Built element by element with lxml: every value (a diagnosis typed by the doctor, a name) is a
text node or an attribute the library escapes, never markup pasted into a string. It says of
the patient only what the synthesis page shows (identifier, name, sex, date of birth) and of
the author what the RPPS directory says. The structure follows the ANS example
`VSM_2023.01.xml`: the problems and history under "Pathologies en cours, antécédents,
allergies et facteurs de risques", then treatments, vaccinations and points of attention; each
section has its narrative, and the problems their coded entries (CIM-10)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.utils import timezone
from lxml import etree

from ..fhir import FINESS_SYSTEM
from ..models import Professional, Record, Synthesis
from ..models.people import Profession
from .hardened import HL7, NS
from .header import FR_TYPE_ROOT, INS_NIR_ROOTS, LOINC_ROOT, PROVISIONAL_ID_ROOT, RPPS_ROOT

XSI = NS["xsi"]
PROFESSION_ROOT = "1.2.250.1.213.1.1.4.5"  # RPPS profession/specialty (G15_10/SM54…)
ICD10_ROOT = "2.16.840.1.113883.6.3"
SNOMED_ROOT = "2.16.840.1.113883.6.96"
FINESS_ROOT = FINESS_SYSTEM.removeprefix("urn:oid:")
# The record's host keeps the document; its identifier, as our other test documents give it.
CUSTODIAN_ROOT = "1.2.250.1.213.4.1"
DOCUMENT_TEMPLATES = (("2.16.840.1.113883.2.8.2.1", None), ("1.2.250.1.213.1.1.1.1", None),
                      ("1.2.250.1.213.1.1.1.13", "2023.01"))
# A document's identifiers: UUIDs derived from the synthesis, so one version always gives the
# same document id and every version of one record the same set id (CDA `setId`).
_ID_SPACE = uuid.UUID("5b1c1e9a-4f3e-4d55-9a0e-8c2f5f1d7a11")
_GENDER = {Record.Sex.FEMALE: "F", Record.Sex.MALE: "M", Record.Sex.OTHER: "U"}


def _e(parent: etree._Element | None, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    """An HL7 element (under `parent` if given) with its attributes and escaped text."""
    qname = f"{{{HL7}}}{tag}"
    element = (etree.Element(qname, nsmap={None: HL7, "xsi": XSI}) if parent is None
               else etree.SubElement(parent, qname))
    for name, value in attributes.items():
        element.set(f"{{{XSI}}}type" if name == "xsi_type" else name, value)
    if text is not None:
        element.text = text
    return element


def _ts(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z")


def _day(day: date) -> str:
    return day.strftime("%Y%m%d")


def _templates(element: etree._Element, *roots: str) -> None:
    for root in roots:
        _e(element, "templateId", root=root)


def _name(parent: etree._Element, given: str, family: str) -> None:
    name = _e(parent, "name")
    _e(name, "given", given)
    _e(name, "family", family)


def _record_target(root: etree._Element, record: Record) -> None:
    """The patient: the INS-NIR when the record holds one (attached once verified), else our
    provisional identifier, which the header reading recognises by its root."""
    role = _e(_e(root, "recordTarget"), "patientRole")
    if record.nir:
        _e(role, "id", root=INS_NIR_ROOTS[0], extension=record.nir)
    else:
        _e(role, "id", root=PROVISIONAL_ID_ROOT, extension=record.provisional_id)
    patient = _e(role, "patient", classCode="PSN")
    _name(patient, record.given_names, record.family_name)
    _e(patient, "administrativeGenderCode", code=_GENDER.get(record.sex, "U"), codeSystem="2.16.840.1.113883.5.1")
    _e(patient, "birthTime", value=_day(record.birth_date))


def _professional(parent: etree._Element, professional: Professional, *, person_tag: str) -> None:
    """The RPPS identifier ("8" + the RPPS number), profession, name and facility."""
    _e(parent, "id", root=RPPS_ROOT, extension=f"8{professional.rpps}")
    code, label = (("G15_10/SM54", "Médecin - Médecine générale (SM)") if professional.profession == Profession.GP
                   else ("G15_10", "Médecin"))
    _e(parent, "code", code=code, displayName=label, codeSystem=PROFESSION_ROOT, codeSystemName="RPPS")
    _name(_e(parent, person_tag), professional.user.first_name, professional.user.last_name)
    facility = professional.facility
    if facility is not None:
        organisation = _e(parent, "representedOrganization")
        if facility.finess:
            _e(organisation, "id", root=FINESS_ROOT, extension=facility.finess)
        _e(organisation, "name", facility.name)


def _header(root: etree._Element, synthesis: Synthesis, record: Record) -> None:
    _e(root, "realmCode", code="FR")
    _e(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for template, extension in DOCUMENT_TEMPLATES:
        _e(root, "templateId", root=template, **({"extension": extension} if extension else {}))
    _e(root, "id", root=str(uuid.uuid5(_ID_SPACE, f"synthesis-{synthesis.pk}")).upper())
    _e(root, "code", code="SYNTH", displayName="Synthèse", codeSystem=FR_TYPE_ROOT)
    _e(root, "title", "Synthèse médicale")
    written = _ts(synthesis.created_at)
    _e(root, "effectiveTime", value=written)
    _e(root, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25", displayName="Normal")
    _e(root, "languageCode", code="fr-FR")
    _e(root, "setId", root=str(uuid.uuid5(_ID_SPACE, f"record-{record.pk}")).upper())
    _e(root, "versionNumber", value=str(synthesis.version))
    _record_target(root, record)
    author = _e(root, "author")
    _e(author, "functionCode", code="PCP", displayName="Médecin traitant", codeSystem="2.16.840.1.113883.5.88")
    _e(author, "time", value=written)
    _professional(_e(author, "assignedAuthor"), synthesis.author, person_tag="assignedPerson")
    custodian = _e(_e(_e(root, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _e(custodian, "id", root=CUSTODIAN_ROOT)
    _e(custodian, "name", "DMP")
    authenticator = _e(root, "legalAuthenticator")
    _e(authenticator, "time", value=written)
    _e(authenticator, "signatureCode", code="S")
    _professional(_e(authenticator, "assignedEntity"), synthesis.author, person_tag="assignedPerson")
    event = _e(_e(root, "documentationOf"), "serviceEvent")
    _e(event, "code", code="34117-2", displayName="Historique et clinique", codeSystem=LOINC_ROOT,
       codeSystemName="LOINC")
    _e(_e(event, "effectiveTime"), "low", value=written)


def _section(parent: etree._Element, templates: tuple[str, ...], code: tuple[str, str] | None,
             title: str) -> etree._Element:
    section = _e(_e(parent, "component"), "section")
    _templates(section, *templates)
    if code:
        _e(section, "code", code=code[0], displayName=code[1], codeSystem=LOINC_ROOT, codeSystemName="LOINC")
    _e(section, "title", title)
    return section


def _free_text(section: etree._Element, text: str) -> None:
    """A narrative block of what the doctor typed: one paragraph per line, "–" when empty
    (CI-SIS sections always carry a narrative)."""
    block = _e(section, "text")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines or ["–"]:
        _e(block, "paragraph", line)


def _problems(parent: etree._Element, synthesis: Synthesis) -> None:
    """Active problems: a table for the reader, then one FR-Liste-des-problemes entry per
    problem whose FR-Probleme carries the CIM-10 code, pointing at its row's text."""
    section = _section(parent, ("2.16.840.1.113883.10.20.1.11", "1.3.6.1.4.1.19376.1.5.3.1.3.6",
                                "1.2.250.1.213.1.1.2.132"), ("11450-4", "Liste des problèmes actifs"),
                       "Problèmes actifs")
    problems = list(synthesis.problems.all())
    block = _e(section, "text")
    if not problems:
        _e(block, "paragraph", "–")
        return
    table = _e(block, "table")
    header = _e(_e(table, "thead"), "tr")
    for heading in ("Depuis", "Problème actif", "CIM-10"):
        _e(header, "th", heading)
    body = _e(table, "tbody")
    for number, problem in enumerate(problems, start=1):
        row = _e(body, "tr")
        _e(row, "td", problem.since.strftime("%d/%m/%Y") if problem.since else "–")
        _e(_e(row, "td"), "content", problem.label, ID=f"probleme-{number}")
        _e(row, "td", problem.icd10)
    for number, problem in enumerate(problems, start=1):
        _problem_entry(section, problem, f"#probleme-{number}")


def _problem_entry(section: etree._Element, problem, reference: str) -> None:
    act = _e(_e(section, "entry"), "act", classCode="ACT", moodCode="EVN")
    _templates(act, "2.16.840.1.113883.10.20.1.27", "1.3.6.1.4.1.19376.1.5.3.1.4.5.1",
               "1.3.6.1.4.1.19376.1.5.3.1.4.5.2", "1.2.250.1.213.1.1.3.39")
    _e(act, "id", root=str(uuid.uuid5(_ID_SPACE, f"problem-{problem.pk}")).upper())
    _e(act, "code", nullFlavor="NA")
    _e(act, "statusCode", code="active")
    since = _e(act, "effectiveTime", xsi_type="IVL_TS")
    _since(since, problem.since)
    observation = _e(_e(act, "entryRelationship", typeCode="SUBJ", inversionInd="false"), "observation",
                     classCode="OBS", moodCode="EVN", negationInd="false")
    _templates(observation, "2.16.840.1.113883.10.20.1.28", "1.3.6.1.4.1.19376.1.5.3.1.4.5",
               "1.2.250.1.213.1.1.3.37")
    _e(observation, "id", root=str(uuid.uuid5(_ID_SPACE, f"problem-observation-{problem.pk}")).upper())
    _e(observation, "code", code="282291009", displayName="interprétation diagnostique", codeSystem=SNOMED_ROOT,
       codeSystemName="SNOMED CT")
    _e(_e(observation, "text"), "reference", value=reference)
    _e(observation, "statusCode", code="completed")
    _since(_e(observation, "effectiveTime"), problem.since)
    value = _e(observation, "value", xsi_type="CD", code=problem.icd10, displayName=problem.label,
               codeSystem=ICD10_ROOT, codeSystemName="CIM10")
    _e(_e(value, "originalText"), "reference", value=reference)


def _since(effective: etree._Element, since: date | None) -> None:
    if since:
        _e(effective, "low", value=_day(since))
    else:
        _e(effective, "low", nullFlavor="UNK")


def _body(root: etree._Element, synthesis: Synthesis) -> None:
    body = _e(_e(root, "component"), "structuredBody")
    overview = _section(body, ("1.2.250.1.213.1.1.2.29",), ("46612-8", "Conclusions de synthèse"),
                        "Pathologie en cours, antécédents, allergies et facteurs de risques")
    history = _section(overview, ("1.2.250.1.213.1.1.2.30",), ("34117-2", "Historique et physique"),
                       "Pathologies en cours, antécédents et allergies")
    _problems(history, synthesis)
    past = _section(history, ("1.3.6.1.4.1.19376.1.5.3.1.3.8", "1.2.250.1.213.1.1.2.134"),
                    ("11348-0", "Antécédents médicaux"), "Antécédents médicaux")
    _free_text(past, synthesis.personal_history)
    allergies = _section(history, ("2.16.840.1.113883.10.20.1.2", "1.3.6.1.4.1.19376.1.5.3.1.3.13"),
                         ("48765-2", "Allergies et intolérances"), "Allergies et intolérances")
    _free_text(allergies, synthesis.allergies)
    family = _section(overview, ("1.3.6.1.4.1.19376.1.5.3.1.3.15",), ("10157-6", "Antécédents familiaux"),
                      "Facteurs de risque : antécédents familiaux")
    _free_text(family, synthesis.family_history)
    treatments = _section(body, ("2.16.840.1.113883.10.20.1.8", "1.3.6.1.4.1.19376.1.5.3.1.3.19"),
                          ("10160-0", "Traitements"), "Traitements au long cours")
    _free_text(treatments, synthesis.current_treatments)
    if synthesis.vaccinations.strip():
        vaccinations = _section(body, ("2.16.840.1.113883.10.20.1.6", "1.3.6.1.4.1.19376.1.5.3.1.3.23"),
                                ("11369-6", "Vaccinations"), "Vaccinations")
        _free_text(vaccinations, synthesis.vaccinations)
    attention = _section(body, ("1.3.6.1.4.1.19376.1.5.3.1.3.27",), None, "Points de vigilance")
    _free_text(attention, synthesis.points_of_attention)


def vsm_document(synthesis: Synthesis) -> bytes:
    """One version of the synthesis as a CDA R2 VSM document (UTF-8 XML)."""
    record = synthesis.record
    root = _e(None, "ClinicalDocument")
    _header(root, synthesis, record)
    _body(root, synthesis)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
