"""A record's structured data as HL7 FHIR R4 resources (DOMAIN.md §7).

Built with the models of `fhir.resources` (its R4B module, the closest it ships to R4: the
resources used here are the same in R4 and R4B), so every resource is validated as it is
built. Used by the patient's export (record.fhir.json in the ZIP) and written to be reused by
the practice-software FHIR API: one function per resource, and `record_bundle()` to put them
together.

This module formats; it never decides. The caller passes only what the actor may see (the
documents from `documents_visible_to`, the synthesis if `VIEW_SYNTHESIS` allowed it…).
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from django.utils import timezone
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.composition import Composition, CompositionSection
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference, DocumentReferenceContent
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.narrative import Narrative
from fhir.resources.R4B.observation import Observation, ObservationReferenceRange
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient, PatientCommunication
from fhir.resources.R4B.practitioner import Practitioner, PractitionerQualification
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.resource import Resource

from . import icd10
from .models import (
    Document,
    EmergencyContact,
    LabObservation,
    LabReport,
    Organisation,
    PersonalProfile,
    Professional,
    Record,
    ReimbursementLine,
    SelfDeclaredItem,
    Synthesis,
    Vaccination,
)

# National identifier systems (ANS, CI-SIS).
INS_NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"  # INS-NIR: the 15-character NIR, key included
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # health professionals: "8" + the RPPS number
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"  # facilities: the FINESS number
FR_IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
# International terminologies.
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
BCP47_SYSTEM = "urn:ietf:bcp:47"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CIP13_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
LOINC_SYSTEM = "http://loinc.org"
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
IMMUNIZATION_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"
# This system's own code systems and identifiers: local URIs, stable across installations.
PROVISIONAL_ID_SYSTEM = "urn:dmp:provisional-identifier"
DOCUMENT_TYPE_SYSTEM = "urn:dmp:document-type"
SPACE_SYSTEM = "urn:dmp:space"
DOCUMENT_STATUS_SYSTEM = "urn:dmp:document-status"
PROFESSION_SYSTEM = "urn:dmp:profession"
RELATIONSHIP_SYSTEM = "urn:dmp:relationship"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM_SYSTEM = "http://unitsofmeasure.org"
MEDICINE_CODE_SYSTEM = "urn:dmp:medicine-code"  # a dispensed medicine's code that is not a CIP13

# Bundle entries are named by urn:uuid full URLs derived from the resource type and id, so the
# same object has the same full URL in every bundle (an export, an API answer).
_NAMESPACE = uuid.UUID("7c0b6a52-3f7e-4d3a-9a57-2f4f1f0e8a61")


def full_url(resource_type: str, resource_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{resource_id}')}"


def reference_to(resource: Resource) -> Reference:
    return Reference(reference=full_url(resource.get_resource_type(), resource.id))


def _coding(system: str, code: str, display: str = "") -> Coding:
    return Coding(system=system, code=code, display=str(display) or None)


def _concept(system: str, code: str, display: str = "") -> CodeableConcept:
    return CodeableConcept(coding=[_coding(system, code, display)], text=str(display) or None)


def _text(text: str) -> CodeableConcept:
    return CodeableConcept(text=text)


def _aware(value: datetime) -> datetime:
    # FHIR instants carry a time zone; the database hands back aware datetimes, but a naive
    # one must not make a whole export fail.
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def idnps(rpps: str) -> str:
    """The national professional identifier (IDNPS) of an RPPS number: "8" + the 11 digits."""
    return f"8{rpps}"


def practitioner(professional: Professional) -> Practitioner:
    """A health professional: name, IDNPS (from the RPPS number), profession and specialty."""
    user = professional.user
    qualification = _concept(PROFESSION_SYSTEM, professional.profession, professional.get_profession_display())
    if professional.specialty:
        qualification.text = f"{qualification.text} – {professional.specialty}"
    return Practitioner(
        id=str(professional.pk),
        identifier=[Identifier(
            use="official", system=IDNPS_SYSTEM, value=idnps(professional.rpps),
            type=_concept(FR_IDENTIFIER_TYPES, "IDNPS", "Identifiant National de Professionnel de Santé"),
        )],
        name=[HumanName(family=user.last_name or None, given=[user.first_name] if user.first_name else None,
                        text=user.get_full_name() or None)],
        qualification=[PractitionerQualification(code=qualification)],
    )


def organization(organisation: Organisation) -> Organization:
    """A facility: name, FINESS number and city."""
    return Organization(
        id=str(organisation.pk), name=organisation.name,
        identifier=[Identifier(system=FINESS_SYSTEM, value=organisation.finess)] if organisation.finess else None,
        address=[{"city": organisation.city}] if organisation.city else None,
    )


def practitioner_role(professional: Professional, *, practitioner: Reference,
                      organization: Reference | None) -> PractitionerRole:
    """A professional's role in their facility, as the French profiles link an author to the
    institution they write for (FrPractitionerRole; the XDS authorInstitution): profession,
    specialty, and references the caller gives (urn:uuid in a Bundle, REST in the API)."""
    specialty = [_text(professional.specialty)] if professional.specialty else None
    return PractitionerRole(
        id=str(professional.pk), active=True, practitioner=practitioner, organization=organization,
        code=[_concept(PROFESSION_SYSTEM, professional.profession, professional.get_profession_display())],
        specialty=specialty,
    )


_GENDER = {Record.Sex.FEMALE: "female", Record.Sex.MALE: "male", Record.Sex.OTHER: "unknown"}


def patient(record: Record, *, general_practitioner: Practitioner | None = None) -> Patient:
    """Identity: NIR (INS-NIR) or the provisional identifier, name, birth date, gender,
    telecom, address and the languages the person speaks (the preferred one marked)."""
    identifiers = []
    if record.nir:
        identifiers.append(Identifier(
            use="official", system=INS_NIR_SYSTEM, value=record.nir,
            type=_concept(FR_IDENTIFIER_TYPES, "INS-NIR", "NIR définitif"),
        ))
    # The provisional identifier stays attached after the NIR arrives: papers printed before
    # carry it.
    identifiers.append(Identifier(use="temp" if not record.nir else "secondary", system=PROVISIONAL_ID_SYSTEM,
                                  value=record.provisional_id))
    telecom = []
    if record.phone:
        telecom.append(ContactPoint(system="phone", use="mobile", value=record.phone))
    if record.email:
        telecom.append(ContactPoint(system="email", value=record.email))
    languages = list(dict.fromkeys([*(record.languages or []), record.preferred_language]))
    return Patient(
        id=str(record.pk),
        identifier=identifiers,
        name=[HumanName(use="official", family=record.family_name, given=record.given_names.split() or None)],
        gender=_GENDER.get(record.sex, "unknown"),
        birthDate=record.birth_date,
        telecom=telecom or None,
        address=[{"text": record.postal_address}] if record.postal_address else None,
        communication=[
            PatientCommunication(language=_concept(BCP47_SYSTEM, code), preferred=code == record.preferred_language)
            for code in languages if code
        ] or None,
        generalPractitioner=[reference_to(general_practitioner)] if general_practitioner else None,
    )


def document_reference(
    document: Document, *, subject: Patient, url: str, author: Practitioner | None = None, sha1: bytes | None = None,
) -> DocumentReference:
    """One document: type and space, title, dates, author, and the file as an attachment whose
    `url` says where the file is (a path in the export ZIP, an API address…)."""
    if author is not None:
        authors = [reference_to(author)]
    elif document.author_kind == Document.AuthorKind.PATIENT:
        authors = [reference_to(subject)]
    elif document.system_source:
        authors = [Reference(display=document.system_source)]
    else:
        authors = None
    archived = document.status == Document.Status.ARCHIVED
    return DocumentReference(
        id=str(document.pk),
        meta=Meta(tag=[_coding(DOCUMENT_STATUS_SYSTEM, "archived", "Archived")]) if archived else None,
        # Archived by the patient is not superseded: the document stays valid, out of sight.
        status="current",
        type=_concept(DOCUMENT_TYPE_SYSTEM, document.doc_type, document.get_doc_type_display()),
        category=[_concept(SPACE_SYSTEM, document.space, document.get_space_display())],
        subject=reference_to(subject),
        date=_aware(document.added_at),
        author=authors,
        description=document.title,
        content=[DocumentReferenceContent(attachment=Attachment(
            contentType=document.mime_type, url=url, size=document.size, title=document.title,
            creation=document.act_date,
            hash=base64.b64encode(sha1).decode() if sha1 else None,
        ))],
        context={"period": {"start": document.act_date}},
    )


# --- Coding what was written in words ------------------------------------------------------------
# The synthesis, the patient's declarations and the vaccination record are free text; a doctor
# abroad reads codes. Small tables, matched on whole words once accents and case are gone, code
# a line only when it names exactly one known thing: a line naming two substances, or none we
# know, keeps its words alone in `code.text` (never a guess). The words are always kept as text.


def _folded(text: str) -> str:
    """Lower case, without accents, apostrophes as spaces: "Pénicilline" → "penicilline"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"['’]", " ", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def _named(text: str, names: Iterable[str]) -> bool:
    folded = _folded(text)
    return any(re.search(rf"\b{re.escape(name)}\b", folded) for name in names)


def _only_match(text: str, table: Iterable[tuple[tuple[str, ...], str, str]]) -> tuple[str, str] | None:
    found = {(code, display) for names, code, display in table if _named(text, names)}
    return found.pop() if len(found) == 1 else None


# Active substances → WHO ATC (WHO Collaborating Centre, ATC/DDD Index, https://atcddd.fhi.no/atc_ddd_index/):
# the medicines of the insurer's feed and common long-term treatments, by their French and English
# international non-proprietary names. Salbutamol is coded as the inhaled form (R03AC02), the one
# dispensed in France for asthma.
MEDICINE_ATC: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("metformine", "metformin"), "A10BA02", "metformin"),
    (("ramipril",), "C09AA05", "ramipril"),
    (("atorvastatine", "atorvastatin"), "C10AA05", "atorvastatin"),
    (("simvastatine", "simvastatin"), "C10AA01", "simvastatin"),
    (("paracetamol", "acetaminophen"), "N02BE01", "paracetamol"),
    (("amoxicilline", "amoxicillin"), "J01CA04", "amoxicillin"),
    (("levothyroxine",), "H03AA01", "levothyroxine sodium"),
    (("salbutamol", "albuterol"), "R03AC02", "salbutamol"),
    (("amlodipine",), "C08CA01", "amlodipine"),
    (("bisoprolol",), "C07AB07", "bisoprolol"),
    (("furosemide",), "C03CA01", "furosemide"),
    (("omeprazole",), "A02BC01", "omeprazole"),
)

# Allergens → SNOMED CT substances (International Edition, https://browser.ihtsdotools.org/; the
# penicillin code is the one the HL7 IPS 2.0.0 examples use), members of the IPS allergy value set.
ALLERGEN_SNOMED: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("penicilline", "penicillines", "penicillin", "penicillins"), "764146007", "Penicillin"),
    (("amoxicilline", "amoxicillin"), "372687004", "Amoxicillin"),
    (("latex",), "111088007", "Latex"),
    (("arachide", "arachides", "cacahuete", "cacahuetes", "peanut", "peanuts"), "762952008", "Peanut"),
    (("aspirine", "aspirin"), "387458008", "Aspirin"),
    (("ibuprofene", "ibuprofen"), "387207008", "Ibuprofen"),
    (("codeine",), "387494007", "Codeine"),
    (("sulfamide", "sulfamides", "sulfonamide", "sulfonamides"), "387406002", "Sulfonamide"),
    (("oeuf", "oeufs", "egg", "eggs"), "102263004", "Eggs (edible)"),
    (("lait de vache", "cow s milk"), "3718001", "Cow's milk"),
    (("venin d abeille", "bee venom"), "288328004", "Bee venom"),
)

# Vaccines → WHO ATC (J07, the IPS 2.0.0 "vaccines-whoatc-uv-ips" value set). Most specific first:
# a line is coded by the first row whose every group of words it names (one word of each group).
VACCINE_ATC: tuple[tuple[tuple[tuple[str, ...], ...], str, str], ...] = (
    ((("diphterie", "diphtheria"), ("tetanos", "tetanus"), ("coqueluche", "pertussis"), ("polio", "poliomyelite",
      "poliomyelitis")), "J07CA02", "diphtheria-pertussis-poliomyelitis-tetanus"),
    ((("dtcapolio", "dtpca", "dtcap"),), "J07CA02", "diphtheria-pertussis-poliomyelitis-tetanus"),
    ((("diphterie", "diphtheria"), ("tetanos", "tetanus"), ("polio", "poliomyelite", "poliomyelitis")), "J07CA01",
     "diphtheria-poliomyelitis-tetanus"),
    ((("dtp", "dtpolio"),), "J07CA01", "diphtheria-poliomyelitis-tetanus"),
    ((("tetanos", "tetanus"),), "J07AM01", "tetanus toxoid"),
    ((("grippe", "grippal", "influenza", "flu"),), "J07BB", "influenza vaccines"),
    ((("covid", "covid 19", "sars cov 2"),), "J07BN", "Covid-19 vaccines"),
    ((("pneumocoque", "pneumococcique", "pneumococcal"),), "J07AL", "pneumococcal vaccines"),
    ((("meningocoque", "meningococcique", "meningococcal"),), "J07AH", "meningococcal vaccines"),
    ((("ror", "mmr"),), "J07BD52", "measles, combinations with mumps and rubella, live attenuated"),
    ((("rougeole", "measles"), ("oreillons", "mumps"), ("rubeole", "rubella")), "J07BD52",
     "measles, combinations with mumps and rubella, live attenuated"),
    ((("hepatite a", "hepatitis a"),), "J07BC02", "hepatitis A, inactivated, whole virus"),
    ((("hepatite b", "hepatitis b"),), "J07BC01", "hepatitis B, purified antigen"),
    ((("papillomavirus", "hpv"),), "J07BM", "papillomavirus vaccines"),
    ((("bcg", "tuberculose", "tuberculosis"),), "J07AN01", "tuberculosis, live attenuated"),
    ((("fievre jaune", "yellow fever"),), "J07BL01", "yellow fever, live attenuated"),
    ((("zona", "zoster", "shingles"),), "J07BK", "varicella zoster vaccines"),
    ((("rage", "rabies"),), "J07BG01", "rabies, inactivated, whole virus"),
    ((("typhoide", "typhoid"),), "J07AP", "typhoid vaccines"),
)


def medicine_atc(text: str) -> Coding | None:
    """The ATC coding of the one active substance `text` names, or None."""
    match = _only_match(text, MEDICINE_ATC)
    return _coding(ATC_SYSTEM, *match) if match else None


def allergy_code(text: str) -> CodeableConcept:
    """An allergy as written, with its SNOMED CT substance when it names exactly one we know."""
    match = _only_match(text, ALLERGEN_SNOMED)
    return CodeableConcept(coding=[_coding(SNOMED_SYSTEM, *match)] if match else None, text=text)


def vaccine_code(text: str) -> CodeableConcept:
    """A vaccine as written, with its WHO ATC code when the words say which vaccine it is."""
    for groups, code, display in VACCINE_ATC:
        if all(_named(text, names) for names in groups):
            return CodeableConcept(coding=[_coding(ATC_SYSTEM, code, display)], text=text)
    return CodeableConcept(text=text)


def conditions(synthesis: Synthesis, *, subject: Patient, recorder: Practitioner) -> list[Condition]:
    """The synthesis' current problems, ICD-10 coded, recorded by the médecin traitant. The
    coding's display is the WHO's English title, the one the WHO ICD-10 system defines (the
    French CIM-10 FR title is the ATIH's edition, another system); the label the doctor wrote
    or picked is the concept's text."""
    return [
        Condition(
            id=str(problem.pk),
            clinicalStatus=_concept(CONDITION_CLINICAL, "active", "Active"),
            category=[_concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
            code=CodeableConcept(coding=[_coding(ICD10_SYSTEM, problem.icd10, icd10.label_of(problem.icd10, "en"))],
                                 text=problem.label),
            subject=reference_to(subject),
            onsetDateTime=problem.since,
            recordedDate=_aware(synthesis.created_at),
            recorder=reference_to(recorder),
        )
        for problem in synthesis.problems.all()
    ]


def allergies(
    *, subject: Patient, synthesis: Synthesis | None = None, recorder: Practitioner | None = None,
    declared: Iterable[SelfDeclaredItem] = (),
) -> list[AllergyIntolerance]:
    """Allergies and intolerances: each line of the synthesis' free text (confirmed by the
    médecin traitant) and each allergy the patient declared (unconfirmed, asserted by them)."""
    resources = []
    if synthesis is not None:
        lines = [line.strip(" -•\t") for line in synthesis.allergies.splitlines()]
        for n, line in enumerate(filter(None, lines), start=1):
            resources.append(AllergyIntolerance(
                id=f"synthesis-{synthesis.pk}-{n}",
                clinicalStatus=_concept(ALLERGY_CLINICAL, "active", "Active"),
                verificationStatus=_concept(ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                code=allergy_code(line),
                patient=reference_to(subject),
                recordedDate=_aware(synthesis.created_at),
                recorder=reference_to(recorder) if recorder else None,
            ))
    for item in declared:
        resources.append(AllergyIntolerance(
            id=f"declared-{item.pk}",
            clinicalStatus=_concept(ALLERGY_CLINICAL, "active", "Active"),
            verificationStatus=_concept(ALLERGY_VERIFICATION, "unconfirmed", "Unconfirmed"),
            code=allergy_code(item.label),
            patient=reference_to(subject),
            onsetString=str(item.year) if item.year else None,
            recordedDate=_aware(item.declared_at),
            asserter=reference_to(subject),
        ))
    return resources


def immunization(vaccination: Vaccination, *, subject: Patient) -> Immunization:
    """One vaccination of the vaccination record; declared by the patient = not a primary source."""
    return Immunization(
        id=str(vaccination.pk),
        status="completed",
        vaccineCode=vaccine_code(vaccination.vaccine),
        patient=reference_to(subject),
        occurrenceDateTime=vaccination.date,
        lotNumber=vaccination.batch or None,
        primarySource=not vaccination.declared_by_patient,
        reportOrigin=_concept(IMMUNIZATION_ORIGIN, "recall", "Parent/Guardian/Patient Recall")
        if vaccination.declared_by_patient else None,
    )


def emergency_contact(contact: EmergencyContact, *, subject: Patient) -> RelatedPerson:
    relationship = [_concept(CONTACT_ROLE, "C", "Emergency Contact")]
    if contact.relation:
        relationship.append(_text(contact.relation))
    return RelatedPerson(
        id=f"contact-{contact.pk}",
        patient=reference_to(subject),
        relationship=relationship,
        name=[HumanName(text=contact.name)],
        telecom=[ContactPoint(system="phone", value=contact.phone)],
    )


def trusted_person(profile: PersonalProfile, *, subject: Patient) -> RelatedPerson | None:
    """The trusted person (personne de confiance), if the patient named one."""
    if not profile.trusted_person_name:
        return None
    relationship = [_concept(RELATIONSHIP_SYSTEM, "trusted-person", "Personne de confiance")]
    if profile.trusted_person_relation:
        relationship.append(_text(profile.trusted_person_relation))
    return RelatedPerson(
        id=f"trusted-{profile.record_id}",
        patient=reference_to(subject),
        relationship=relationship,
        name=[HumanName(text=profile.trusted_person_name)],
        telecom=[ContactPoint(system="phone", value=profile.trusted_person_phone)]
        if profile.trusted_person_phone else None,
    )


def record_bundle(
    record: Record,
    *,
    documents: Iterable[Document],
    attachment_url: Callable[[Document], str],
    synthesis: Synthesis | None = None,
    treating_doctor: Professional | None = None,
    personal_data: bool = True,
    sha1: Mapping[int, bytes] | None = None,
    at: datetime | None = None,
) -> Bundle:
    """The record as a FHIR Bundle of type "collection": Patient, Practitioner (médecin
    traitant and authors), DocumentReference per document, Condition per synthesis problem,
    AllergyIntolerance, Immunization, RelatedPerson (emergency contacts, trusted person).

    A collection, not a "document" Bundle: a document Bundle is one attested clinical
    document opened by a Composition (that is what the International Patient Summary will
    be); an export is a set of resources that nobody attests as a whole.

    `documents` and `synthesis` must already be filtered for the actor; `personal_data` says
    whether the actor may read the personal data (contacts, vaccinations, self-declared
    allergies, trusted person)."""
    practitioners: dict[int, Practitioner] = {}

    def practitioner_for(professional: Professional | None) -> Practitioner | None:
        if professional is None:
            return None
        if professional.pk not in practitioners:
            practitioners[professional.pk] = practitioner(professional)
        return practitioners[professional.pk]

    gp = practitioner_for(treating_doctor)
    subject = patient(record, general_practitioner=gp)
    resources: list[Resource] = []
    for document in documents:
        resources.append(document_reference(
            document, subject=subject, url=attachment_url(document),
            author=practitioner_for(document.author_professional), sha1=(sha1 or {}).get(document.pk),
        ))
    if synthesis is not None:
        author = practitioner_for(synthesis.author)
        resources += conditions(synthesis, subject=subject, recorder=author)
    # The same readers as the patient screen, the FHIR API and the printed summary.
    from .selectors.patient_data import declared_allergies, emergency_contacts_of, personal_profile, vaccinations_of

    declared: list[SelfDeclaredItem] = declared_allergies(record) if personal_data else []
    resources += allergies(subject=subject, synthesis=synthesis,
                           recorder=practitioner_for(synthesis.author) if synthesis else None, declared=declared)
    if personal_data:
        resources += [immunization(v, subject=subject) for v in vaccinations_of(record)]
        resources += [emergency_contact(c, subject=subject) for c in emergency_contacts_of(record)]
        profile = personal_profile(record)
        trusted = trusted_person(profile, subject=subject) if profile else None
        if trusted is not None:
            resources.append(trusted)
    everything: list[Resource] = [subject, *practitioners.values(), *resources]
    return Bundle(
        type="collection",
        timestamp=_aware(at or timezone.now()),
        entry=[BundleEntry(fullUrl=full_url(r.get_resource_type(), r.id), resource=r) for r in everything],
    )


def bundle_json(bundle: Bundle) -> str:
    """The bundle as FHIR JSON (empty elements left out, as FHIR requires)."""
    return bundle.model_dump_json(exclude_none=True, indent=1)


def _lines(text: str) -> list[str]:
    """The non-empty lines of a synthesis free-text field, bullets stripped."""
    return [line for line in (raw.strip(" -•\t") for raw in text.splitlines()) if line]


def treatments(text: str) -> list[str]:
    """The treatments of the synthesis' free text: one per line, and one per sentence when a
    line lists several ("Metformine 1000 mg : 1 cp x3. Ramipril 5 mg : 1 cp le matin."), so that
    each can be coded on its own. A sentence starts with a word, not one letter ("Vit. D")."""
    items = []
    for line in _lines(text):
        items += [part.strip().rstrip(".;").strip() for part in re.split(r"(?<=[.;])\s+(?=[^\W\d_]{2})", line)
                  if part.strip().rstrip(".;").strip()]
    return items


def last_dispensings(lines: Iterable[ReimbursementLine]) -> list[ReimbursementLine]:
    """Per medicine (its code), the last time it was dispensed, newest first: a medicine taken
    every month is one medicine, not 24 statements."""
    newest: dict[str, ReimbursementLine] = {}
    for line in sorted(lines, key=lambda line: (line.date, line.pk or 0), reverse=True):
        newest.setdefault(line.code, line)
    return list(newest.values())


def _unknown_since() -> dict:
    # The IPS requires effective[x]; when nobody wrote since when a treatment is taken, the
    # data-absent-reason extension says so (FHIR R4 "Extension: Data Absent Reason").
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}


def medication_statements(
    *, subject: Patient, synthesis: Synthesis | None = None, recorder: Practitioner | None = None,
    dispensed: Iterable[ReimbursementLine] = (),
) -> list[MedicationStatement]:
    """Medicines: each treatment of the synthesis (active, as the médecin traitant wrote it,
    ATC coded when it names one known substance, since an unknown date) and each dispensed
    medicine of the insurer's reimbursement lines (completed on the day it was dispensed, CIP13
    coded when the code is one, and ATC coded when its label names a known substance)."""
    resources = []
    if synthesis is not None:
        for n, item in enumerate(treatments(synthesis.current_treatments), start=1):
            atc = medicine_atc(item)
            resources.append(MedicationStatement(
                id=f"synthesis-{synthesis.pk}-{n}",
                status="active",
                medicationCodeableConcept=CodeableConcept(coding=[atc] if atc else None, text=item),
                subject=reference_to(subject),
                effectiveDateTime__ext=_unknown_since(),
                dateAsserted=_aware(synthesis.created_at),
                informationSource=reference_to(recorder) if recorder else None,
            ))
    for line in dispensed:
        system = CIP13_SYSTEM if len(line.code) == 13 and line.code.isdigit() else MEDICINE_CODE_SYSTEM
        atc = medicine_atc(line.label)
        resources.append(MedicationStatement(
            id=f"dispensed-{line.pk}",
            status="completed",
            medicationCodeableConcept=CodeableConcept(
                coding=[_coding(system, line.code, line.label), *([atc] if atc else [])], text=line.label),
            subject=reference_to(subject),
            effectiveDateTime=line.date,
            informationSource=Reference(display=line.provider) if line.provider else None,
        ))
    return resources


# The International Patient Summary (HL7 IPS): the document's type and its sections' LOINC codes.
# --- laboratory results (dmp/models/results.py) ------------------------------------------------

# FHIR R4's core extension on a Quantity for "the same quantity in another unit" (ISO 21090's
# PQ translation, which a CDA PQ's `translation` is): glucose in mmol/L and in g/L.
PQ_TRANSLATION = "http://hl7.org/fhir/StructureDefinition/iso21090-PQ-translation"


def _quantity(value, unit: str, comparator: str = "", extension: list | None = None) -> Quantity:
    return Quantity(value=value, comparator=comparator or None, unit=unit or None,
                    system=UCUM_SYSTEM if unit else None, code=unit or None, extension=extension)


def _value(value: LabObservation) -> dict:
    """The value[x] of an Observation: a quantity with its UCUM unit (and the laboratory's
    second unit, if it gave one, as a PQ-translation extension: the value stays one quantity
    that every reader understands), a coded value, or text."""
    if value.kind == LabObservation.Kind.QUANTITY:
        alternative = value.alternative_quantity
        translation = ([{"url": PQ_TRANSLATION, "valueQuantity": _quantity(
            alternative, value.alternative_unit, value.comparator)}]
            if alternative is not None and value.alternative_unit else None)
        return {"valueQuantity": _quantity(value.quantity, value.unit, value.comparator, translation)}
    if value.kind == LabObservation.Kind.CODED:
        return {"valueCodeableConcept": CodeableConcept(
            coding=[_coding(value.value_code_system or SNOMED_SYSTEM, value.value_code, value.value)],
            text=value.value or None)}
    return {"valueString": value.value}


def _reference_range(value: LabObservation) -> list[ObservationReferenceRange] | None:
    low, high = value.low, value.high
    if low is None and high is None and not value.reference_text:
        return None
    return [ObservationReferenceRange(
        low=_quantity(low, value.unit) if low is not None else None,
        high=_quantity(high, value.unit) if high is not None else None,
        text=value.reference_text or None)]


def _laboratory(report: LabReport) -> list[Reference]:
    # The IPS wants a performer: the laboratory's name, or what it is when it gave none.
    return [Reference(display=report.laboratory or "Laboratory")]


def lab_observation(value: LabObservation, *, subject: Patient) -> Observation:
    """One laboratory value (its report loaded with it) as an Observation of the IPS results
    profile: the laboratory category, its LOINC code (or the laboratory's words alone when it
    sent no LOINC code), its value, range and flag, the laboratory as performer."""
    report = value.report
    return Observation(
        id=str(value.pk), status=value.status,
        category=[_concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        code=CodeableConcept(coding=[_coding(LOINC_SYSTEM, value.code)] if value.code else None,
                             text=value.text or value.code),
        subject=reference_to(subject), effectiveDateTime=_aware(value.effective_at),
        issued=_aware(report.issued_at) if report.issued_at else None,
        performer=_laboratory(report), **_value(value),
        interpretation=[_concept(INTERPRETATION_SYSTEM, value.interpretation)] if value.interpretation else None,
        referenceRange=_reference_range(value),
    )


def diagnostic_report(report: LabReport, values: Iterable[Observation], *, subject: Patient) -> DiagnosticReport:
    """A laboratory report: its code, times, laboratory, its values (`values`, already built)
    and its document (the legal copy) as `presentedForm`, read at Binary/<document id>."""
    identifier = ([Identifier(system=report.identifier_system or None, value=report.identifier)]
                  if report.identifier else None)
    return DiagnosticReport(
        id=str(report.pk), identifier=identifier, status=report.status,
        category=[_concept(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
        code=CodeableConcept(coding=[_coding(LOINC_SYSTEM, report.code)] if report.code else None,
                             text=report.text or report.code or "Laboratory report"),
        subject=reference_to(subject), effectiveDateTime=_aware(report.effective_at),
        issued=_aware(report.issued_at) if report.issued_at else None,
        performer=_laboratory(report), result=[reference_to(v) for v in values] or None,
        presentedForm=[Attachment(contentType=report.document.mime_type, url=f"Binary/{report.document_id}",
                                  title=report.text or None)],
    )


IPS_DOCUMENT = ("60591-5", "Patient summary Document")
IPS_PROBLEMS = ("11450-4", "Problem list - Reported")
IPS_MEDICATIONS = ("10160-0", "History of Medication use Narrative")
IPS_ALLERGIES = ("48765-2", "Allergies and adverse reactions Document")
IPS_IMMUNIZATIONS = ("11369-6", "History of Immunization Narrative")
IPS_ADVANCE_DIRECTIVES = ("42348-3", "Advance directives")
IPS_RESULTS = ("30954-2", "Relevant diagnostic tests/laboratory data Narrative")


def _narrative(items: Iterable[str]) -> Narrative:
    body = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return Narrative(status="generated", div=f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{body}</ul></div>')


def _resource_label(resource: Resource) -> str:
    concept = (getattr(resource, "code", None) or getattr(resource, "medicationCodeableConcept", None)
               or getattr(resource, "vaccineCode", None))
    return (concept.text or (concept.coding[0].display if concept.coding else "") or "") if concept else ""


def _section(loinc: tuple[str, str], title: str, entries: list[Resource]) -> CompositionSection:
    if not entries:
        return CompositionSection(
            title=title, code=_concept(LOINC_SYSTEM, *loinc),
            text=_narrative(["No information available."]),
            emptyReason=_concept(LIST_EMPTY_REASON, "unavailable", "Unavailable"),
        )
    return CompositionSection(
        title=title, code=_concept(LOINC_SYSTEM, *loinc),
        text=_narrative(_resource_label(r) for r in entries),
        entry=[reference_to(r) for r in entries],
    )


def results_section(results: list[Resource]) -> CompositionSection | None:
    """The results section (Observations, DiagnosticReports): optional in the IPS, so left out
    when the record holds no structured result rather than sent empty."""
    return _section(IPS_RESULTS, "Results", results) if results else None


def _allergy_key(allergy: AllergyIntolerance) -> str:
    """What an allergy is to: its coded substance, else its words before any detail
    ("Pénicilline (urticaire)" and "pénicilline : urticaire, 1995" name the same)."""
    coding = allergy.code.coding[0] if allergy.code.coding else None
    if coding is not None:
        return f"{coding.system}|{coding.code}"
    return _folded(re.split(r"[:(,;\-–]", allergy.code.text or "")[0]).strip()


def distinct_allergies(allergy_list: list[AllergyIntolerance]) -> list[AllergyIntolerance]:
    """Each substance once: the first statement of it is kept (the synthesis', confirmed by the
    médecin traitant, comes before the patient's own declaration of the same allergy)."""
    seen: set[str] = set()
    kept = []
    for allergy in allergy_list:
        key = _allergy_key(allergy)
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(allergy)
    return kept


def system_device() -> Device:
    """This system, as the author of what no professional wrote (a summary without a synthesis)."""
    return Device(id="dmp", deviceName=[{"name": "DMP", "type": "user-friendly-name"}])


def patient_summary(
    record: Record,
    *,
    synthesis: Synthesis | None,
    treating_doctor: Professional | None = None,
    declared_allergies: Iterable[SelfDeclaredItem] = (),
    vaccinations: Iterable[Vaccination] = (),
    dispensed: Iterable[ReimbursementLine] = (),
    results: Iterable[Resource] = (),
    advance_directives: str = "",
    at: datetime | None = None,
) -> Bundle:
    """The synthesis as an International Patient Summary: a Bundle of type "document" opened
    by its Composition (problems, medications, allergies, immunizations, results when there are
    some, and the advance directives when the patient wrote some), every resource it references
    inside the Bundle. Authored by the synthesis' author, or by this system when no synthesis
    was written.

    For a doctor who does not know the patient: the medications are the current treatments
    and, per dispensed medicine, its last dispensing only; an allergy both the synthesis and the
    patient state is said once (the synthesis'). `results` are FHIR Observations already
    built for the summary (`lab_observation`: the recent values).

    Like `record_bundle`, it formats: the caller passes only what the actor may read."""
    at = _aware(at or timezone.now())
    practitioners: dict[int, Practitioner] = {}

    def practitioner_for(professional: Professional | None) -> Practitioner | None:
        if professional is None:
            return None
        if professional.pk not in practitioners:
            practitioners[professional.pk] = practitioner(professional)
        return practitioners[professional.pk]

    gp = practitioner_for(treating_doctor)
    subject = patient(record, general_practitioner=gp)
    author = practitioner_for(synthesis.author) if synthesis is not None else None
    device = system_device() if author is None else None
    problems = conditions(synthesis, subject=subject, recorder=author) if synthesis is not None else []
    medicines = medication_statements(subject=subject, synthesis=synthesis, recorder=author,
                                      dispensed=last_dispensings(dispensed))
    allergy_list = distinct_allergies(
        allergies(subject=subject, synthesis=synthesis, recorder=author, declared=declared_allergies))
    immunizations = [immunization(v, subject=subject) for v in vaccinations]
    result_list = list(results)
    sections = [
        _section(IPS_PROBLEMS, "Problems", problems),
        _section(IPS_MEDICATIONS, "Medication summary", medicines),
        _section(IPS_ALLERGIES, "Allergies and intolerances", allergy_list),
        _section(IPS_IMMUNIZATIONS, "Immunizations", immunizations),
    ]
    if (results_part := results_section(result_list)) is not None:
        sections.append(results_part)
    if advance_directives.strip():
        sections.append(CompositionSection(
            title="Advance directives", code=_concept(LOINC_SYSTEM, *IPS_ADVANCE_DIRECTIVES),
            text=_narrative(_lines(advance_directives) or [advance_directives.strip()]),
        ))
    composition = Composition(
        id=f"summary-{record.pk}",
        status="final",
        type=_concept(LOINC_SYSTEM, *IPS_DOCUMENT),
        subject=reference_to(subject),
        date=at,
        author=[reference_to(author or device)],
        title=f"Patient summary – {record.given_names} {record.family_name}".strip(),
        section=sections,
    )
    everything: list[Resource] = [
        composition, subject, *practitioners.values(), *([device] if device else []),
        *problems, *medicines, *allergy_list, *immunizations, *result_list,
    ]
    return Bundle(
        identifier=Identifier(system="urn:ietf:rfc:3986", value=f"urn:uuid:{uuid.uuid4()}"),
        type="document",
        timestamp=at,
        entry=[BundleEntry(fullUrl=full_url(r.get_resource_type(), r.id), resource=r) for r in everything],
    )
