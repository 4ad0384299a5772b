"""What a CDA R2 header says of the document: its type (LOINC), dates, author, confidentiality
and the patient it is about, read once the file check accepted the XML (`dmp/file_safety.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lxml import etree

from ..fhir import IDNPS_SYSTEM, INS_NIR_SYSTEM, PROVISIONAL_ID_SYSTEM
from .hardened import NS, parse

# The identifier systems are the FHIR API's (dmp/fhir.py); a CDA writes an OID bare.
INS_NIR_ROOTS = (INS_NIR_SYSTEM.removeprefix("urn:oid:"), "1.2.250.1.213.1.4.10")  # INS-NIR, and its test range
# Our provisional identifier has no OID of its own: a CDA names it with the FHIR system's URI.
PROVISIONAL_ID_ROOT = PROVISIONAL_ID_SYSTEM
RPPS_ROOT = IDNPS_SYSTEM.removeprefix("urn:oid:")  # the national directory's professionals: "8" + the RPPS number
LOINC_ROOT = "2.16.840.1.113883.6.1"
FR_TYPE_ROOT = "1.2.250.1.213.1.1.4.12"  # TRE_A05-TypeDocComplementaire: the ANS VSM's "SYNTH"


@dataclass(frozen=True)
class CdaAuthor:
    name: str
    rpps: str
    profession: str


@dataclass(frozen=True)
class CdaHeader:
    """The header of a CDA document. `patient_ids`: (root, extension) of the record target."""

    code: str
    code_system: str
    title: str
    doc_type: str  # one of ours, or "" when the code is not in our value set
    act_date: date | None
    authors: tuple[CdaAuthor, ...]
    confidentiality: str
    patient_ids: tuple[tuple[str, str], ...]
    level: int  # 1: an embedded file (nonXMLBody); 3: structured sections
    templates: tuple[str, ...]

    @property
    def nir(self) -> str:
        return next((ext for root, ext in self.patient_ids if root in INS_NIR_ROOTS), "")

    @property
    def provisional_id(self) -> str:
        return next((ext for root, ext in self.patient_ids if root == PROVISIONAL_ID_ROOT), "")

    def is_about(self, record) -> bool:
        """The record target names this record: at least one identifier we know, each matching
        (an INS-NIR the record's NIR, a provisional identifier the record's own)."""
        nir, provisional = self.nir, self.provisional_id
        if not nir and not provisional:
            return False
        return (not nir or nir == (record.nir or "")) and (not provisional or provisional == record.provisional_id)


def hl7_date(value: str | None) -> date | None:
    """The day of an HL7 TS ("20240104073500+0100"), None when it is not one."""
    digits = (value or "")[:8]
    if len(digits) < 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _person_name(person: etree._Element | None) -> str:
    name = person.find("h:name", NS) if person is not None else None
    if name is None:
        return ""
    parts = [_text(part) for tag in ("prefix", "given", "family") for part in name.findall(f"h:{tag}", NS)]
    return " ".join(part for part in parts if part) or _text(name)


def _rpps(assigned: etree._Element) -> str:
    """The RPPS number of an author identified in the national directory ("8" + 11 digits).
    Another identifier under that root (the insurer's "518003502400041/…" in the ANS's CNAM-HR)
    is no RPPS number and is not shown as one."""
    for ident in assigned.findall("h:id", NS):
        extension = (ident.get("extension") or "").strip()
        if ident.get("root") == RPPS_ROOT and len(extension) == 12 and extension.startswith("8") \
                and extension.isdigit():
            return extension[1:]
    return ""


def _device_name(assigned: etree._Element) -> str:
    """Who wrote a document no person wrote: a laboratory's or an insurer's software
    (`assignedAuthoringDevice`), named by its organisation, then the software."""
    organisation = _text(assigned.find("h:representedOrganization/h:name", NS))
    software = _text(assigned.find("h:assignedAuthoringDevice/h:softwareName", NS))
    if organisation and software and software != organisation:
        return f"{organisation} ({software})"
    return organisation or software


def _author(element: etree._Element) -> CdaAuthor:
    assigned = element.find("h:assignedAuthor", NS)
    if assigned is None:
        return CdaAuthor("", "", "")
    code = assigned.find("h:code", NS)
    return CdaAuthor(
        _person_name(assigned.find("h:assignedPerson", NS)) or _device_name(assigned),
        _rpps(assigned),
        (code.get("displayName") or code.get("code") or "") if code is not None else "",
    )


def _act_date(root: etree._Element) -> date | None:
    """When the act took place: the main service event's start, else the document's date."""
    event = root.find("h:documentationOf/h:serviceEvent/h:effectiveTime", NS)
    if event is not None:
        low = event.find("h:low", NS)
        found = hl7_date(low.get("value") if low is not None else event.get("value"))
        if found:
            return found
    effective = root.find("h:effectiveTime", NS)
    return hl7_date(effective.get("value") if effective is not None else None)


def _doc_type(code: str, system: str, loinc_types: dict[str, str], fr_types: dict[str, str]) -> str:
    """Our type for the document's code: a LOINC code of the DMP's value set, or a code of the
    French complement (TRE_A05: the ANS's VSM example is coded "SYNTH" there); else ""."""
    table = {LOINC_ROOT: loinc_types, FR_TYPE_ROOT: fr_types}.get(system, {})
    return table.get(code, "")


def read_header(root: etree._Element) -> CdaHeader:
    """The header of a ClinicalDocument already checked by `hardened.check_structure()`."""
    from ..api.fhir.documents import FR_TYPES, LOINC_TYPES  # the one code → type table (import here: no cycle)

    code = root.find("h:code", NS)
    code_value = code.get("code", "") if code is not None else ""
    code_system = code.get("codeSystem", "") if code is not None else ""
    confidentiality = root.find("h:confidentialityCode", NS)
    patient_ids = tuple(
        (ident.get("root", ""), ident.get("extension", "").strip())
        for ident in root.findall("h:recordTarget/h:patientRole/h:id", NS)
    )
    return CdaHeader(
        code=code_value, code_system=code_system,
        title=_text(root.find("h:title", NS))[:200],
        doc_type=_doc_type(code_value, code_system, LOINC_TYPES, FR_TYPES),
        act_date=_act_date(root),
        authors=tuple(_author(author) for author in root.findall("h:author", NS)),
        confidentiality=confidentiality.get("code", "") if confidentiality is not None else "",
        patient_ids=patient_ids,
        level=1 if root.find("h:component/h:nonXMLBody", NS) is not None else 3,
        templates=tuple(t.get("root", "") for t in root.findall("h:templateId", NS)),
    )


def header_of(content: bytes) -> CdaHeader:
    return read_header(parse(content))
