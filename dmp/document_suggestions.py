"""What a professional is about to add, guessed from the file name and their profession, so
that adding a document takes two actions (DOMAIN.md §3: drop the files, confirm) instead of
the "10 clicks" that made GPs give up (002). Everything guessed is shown and can be changed.

Plain functions of their arguments: no database, no request, nothing stored. The portal
calls `suggest()` when files are dropped (to show the guess) and again for any file posted
without an explicit type (the page without JavaScript)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath

from .models.documents import SPACE_OF_TYPE, DocumentType, Space
from .models.people import Profession

T = DocumentType


class Source:
    """Where a suggested type comes from, so the page can say it."""

    FILE_NAME = "file_name"
    PROFESSION = "profession"


# What a profession adds most often, when the file name says nothing.
PROFESSION_DEFAULTS: dict[str, str] = {
    Profession.GP: T.CONSULTATION_REPORT,
    Profession.SPECIALIST: T.CONSULTATION_REPORT,
    Profession.PHARMACIST: T.MEDICATION_DISPENSING,
    Profession.NURSE: T.AUXILIARY_CARE_REPORT,
    Profession.MIDWIFE: T.CONSULTATION_REPORT,
    Profession.PHYSIOTHERAPIST: T.FUNCTIONAL_ASSESSMENT,
    Profession.DENTIST: T.CONSULTATION_REPORT,
}
FALLBACK_TYPE = T.CONSULTATION_REPORT

# Keywords of file names, French and English, lower case and without accents. The first rule
# with a matching keyword wins, so the specific ones come before the general ones ("lettre
# de sortie" before "lettre", "biopsie" before "bio", "ordonnance kine" before "ordonnance").
# A keyword is a whole word or a phrase of whole words; a trailing "*" matches any ending
# ("vaccin*": vaccin, vaccins, vaccination, vaccine).
# A rule may be limited to some professions: a physiotherapist's "bilan" is his functional
# assessment, anyone else's is too vague to guess.
_RULES: tuple[tuple[str, tuple[str, ...], frozenset[str] | None], ...] = (
    (T.DISCHARGE_LETTER, ("lettre de sortie", "lettre de liaison", "courrier de sortie", "discharge*"), None),
    (T.TRANSFER_NOTE, ("lettre de transfert", "fiche de liaison", "transfert", "transfer"), None),
    (T.HOSPITAL_STAY_REPORT, ("crh", "hospitalisation", "hospitalization", "sejour",
                              "hospital stay"), None),
    (T.OPERATIVE_REPORT, ("cro", "operatoire", "operative", "operation", "chirurgie", "surgery"), None),
    (T.PRE_ANAESTHESIA_REPORT, ("cpa", "pre anesthesi*", "preanesthesi*", "consultation d anesthesie",
                                "pre anaesthesi*"), None),
    (T.ANAESTHESIA_REPORT, ("anesthesi*", "anaesthesi*"), None),
    (T.EMERGENCY_REPORT, ("urgence*", "emergency", "sau"), None),
    (T.DELIVERY_REPORT, ("accouchement", "delivery"), None),
    (T.MDT_MEETING_REPORT, ("rcp", "concertation pluridisciplinaire", "mdt"), None),
    (T.TELEMEDICINE_REPORT, ("teleconsultation", "telemedecine", "telemedicine", "teleexpertise"), None),
    (T.MOLECULAR_GENETICS, ("genetique", "genetic*", "genomique", "sequencage"), None),
    (T.PATHOLOGY_REPORT, ("anapath*", "anatomopathologi*", "anatomo pathologi*", "biopsie", "biopsy",
                          "cytologie", "cytology", "histologie", "pathology"), None),
    (T.LAB_REPORT, ("bio", "biolog*", "nfs", "hba1c", "hb a1c", "labo*", "lab", "bilan sanguin",
                    "bilan biologique", "prise de sang", "analyse*", "glycemie", "creatinine", "tsh",
                    "ionogramme", "bilan lipidique", "inr", "crp", "serologie", "blood test", "blood work",
                    "resultats d analyse*"), None),
    (T.IMAGING_REPORT, ("radio*", "irm", "mri", "scanner", "tdm", "ct", "echo*", "ultrasound",
                        "mammographie", "mammography", "xray", "x ray", "imagerie", "imaging", "doppler",
                        "scintigraphie", "pet scan", "tep", "osteodensitometrie", "densitometrie"), None),
    (T.NON_DICOM_IMAGE, ("photo", "photos", "picture", "cliche"), None),
    (T.SCREENING_REPORT, ("depistage", "screening", "frottis", "coloscopie de depistage"), None),
    (T.PREVENTIVE_THERAPY_REPORT, ("vaccin*", "immunisation", "immunization", "rappel dtp"), None),
    (T.CERTIFICATE, ("certificat*", "certificate", "attestation", "declaration", "arret de travail",
                     "sick note"), None),
    (T.CARE_PLAN, ("pps", "plan de soins", "plan personnalise", "care plan"), None),
    (T.ALD_PROTOCOL, ("ald", "protocole de soins", "affection de longue duree"), None),
    (T.CARE_PRESCRIPTION, ("ordonnance kine*", "ordonnance de kine*", "ordonnance de soins",
                           "ordonnance infirmi*", "prescription de kine*", "prescription de soins",
                           "soins infirmiers", "care prescription"), None),
    (T.MEDICATION_DISPENSING, ("dispensation", "delivrance", "dispensing", "dispensed"), None),
    (T.MEDICATION_PRESCRIPTION, ("ordonnance*", "ordo", "prescription*", "traitement", "medicaments",
                                 "medication"), None),
    (T.FUNCTIONAL_ASSESSMENT, ("bilan kine*", "bilan de kine*", "bilan fonctionnel", "bilan orthophoni*",
                               "bilan ergo*", "bilan psychomoteur", "functional assessment"), None),
    (T.FUNCTIONAL_ASSESSMENT, ("bilan*", "assessment"), frozenset({Profession.PHYSIOTHERAPIST})),
    (T.AUXILIARY_CARE_REPORT, ("suivi infirmier", "suivi de soins", "transmissions", "nursing"), None),
    (T.AUTONOMY_ASSESSMENT, ("autonomie", "aggir", "gir", "autonomy"), None),
    (T.SYNTHESIS, ("synthese", "summary"), None),
    (T.CONSULTATION_REPORT, ("cr", "compte rendu", "compterendu", "consultation", "consult", "visite",
                             "report", "courrier", "lettre", "letter"), None),
)


def normalised(text: str) -> str:
    """Lower case, accents off, every separator (_ - . + digits glued to letters) a space."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    # "CR2025" / "IRM3" → "cr 2025" / "irm 3": digits glued to a keyword still let it be found.
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    return " ".join(text.split())


def _compile(keyword: str) -> str:
    """A keyword as a regular expression over a `normalised()` name: the keyword is normalised
    the same way ("hba1c" → "hba 1 c"), so both sides always agree."""
    words = normalised(keyword.rstrip("*")).split()
    tail = r"\w*" if keyword.endswith("*") else ""
    return r"\b" + r"\s+".join(re.escape(w) for w in words) + tail + r"\b"


_PATTERNS = tuple(
    (doc_type, re.compile("|".join(_compile(k) for k in keywords)), professions)
    for doc_type, keywords, professions in _RULES
)
assert all(t in DocumentType.values and SPACE_OF_TYPE[t] != "personal" for t, _k, _p in _RULES), (
    "professionals never add to the patient's personal space"
)

# Dates written in file names: 2025-11-04, 2025_11_04, 20251104, 04-11-2025, 04.11.2025.
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<y>(?:19|20)\d\d)[-_.]?(?P<m>[01]\d)[-_.]?(?P<d>[0-3]\d)(?!\d)"),
    re.compile(r"(?<!\d)(?P<d>[0-3]\d)[-_.](?P<m>[01]\d)[-_.](?P<y>(?:19|20)\d\d)(?!\d)"),
)


@dataclass(frozen=True)
class Suggestion:
    """The guess for one file: the type (and so its space), a title and the date of the act."""

    doc_type: str
    source: str  # Source.FILE_NAME or Source.PROFESSION
    title: str
    act_date: date

    @property
    def space(self) -> str:
        return SPACE_OF_TYPE[self.doc_type]

    @property
    def type_label(self) -> str:
        return str(DocumentType(self.doc_type).label)

    @property
    def space_label(self) -> str:
        return str(Space(self.space).label)

    def as_json(self) -> dict:
        return {
            "doc_type": self.doc_type, "type_label": self.type_label, "space": self.space,
            "space_label": self.space_label, "source": self.source, "title": self.title,
            "act_date": self.act_date.isoformat(),
        }


def profession_default(profession: str | None) -> str:
    return PROFESSION_DEFAULTS.get(profession or "", FALLBACK_TYPE)


def type_from_name(file_name: str, profession: str | None = None) -> str | None:
    """The type a file name names, if it names one."""
    words = normalised(PurePath(file_name).stem)
    for doc_type, pattern, professions in _PATTERNS:
        if professions is not None and profession not in professions:
            continue
        if pattern.search(words):
            return doc_type
    return None


def date_from_name(file_name: str, *, today: date) -> date | None:
    """A date written in the file name, if it is a real date and not in the future."""
    stem = PurePath(file_name).stem
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(stem):
            try:
                found = date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                continue
            if found <= today:
                return found
    return None


def title_from_name(file_name: str, doc_type: str) -> str:
    """The file name without its extension, dates and separators: "2025-11-04_NFS_controle.pdf"
    → "NFS controle". The type's name when nothing is left."""
    stem = PurePath(file_name.replace("\\", "/")).stem
    for pattern in _DATE_PATTERNS:
        stem = pattern.sub(" ", stem)
    stem = re.sub(r"[_\s]+|(?<=\s)[-.]+|[-.]+(?=\s)", " ", f" {stem} ")
    title = " ".join(stem.split()).strip(" -.")
    if not re.search(r"\w", title):
        return str(DocumentType(doc_type).label)
    return title[:1].upper() + title[1:200]


def suggest(file_name: str, *, profession: str | None, today: date) -> Suggestion:
    """Type, title and date for a file a professional is adding: the type named by the file
    name, else the profession's usual one; the title from the name; the date written in the
    name, else today."""
    named = type_from_name(file_name, profession)
    doc_type = named or profession_default(profession)
    return Suggestion(
        doc_type=doc_type,
        source=Source.FILE_NAME if named else Source.PROFESSION,
        title=title_from_name(file_name, doc_type),
        act_date=date_from_name(file_name, today=today) or today,
    )
