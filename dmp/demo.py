"""Demo data for `manage.py seed_demo`: a small, believable world to click through.

Everything that the access policy governs is created through the services in dmp/services
(and reads through `access_log.authorise_read`), acting as the person who would really do it — the
counter agent creates the record, the patient designates the médecin traitant, the GP writes
the synthesis — so the demo exercises the same rules and writes the same audit chain as real
use. Only what has no service yet (personal data, legal representatives, the insurer's
reimbursement lines, the hide/archive flags) is written to the models directly, after asking
the policy where a rule exists.

The data is fictional: names, NIRs, RPPS numbers, phone numbers (ARCEP range reserved for
fiction), addresses (example.org). Every demo account shares one documented password.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.hashers import make_password
from django.core.files.storage import default_storage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from . import fhir, pdf
from .access_log import authorise_read
from .accounts import second_factor_required
from .api.fhir.results import lab_bundle_post
from .models import (
    AuditEntry,
    Consent,
    CounterAgent,
    Document,
    DocumentType,
    EmergencyContact,
    LabReport,
    LegalRepresentative,
    Organisation,
    PersonalProfile,
    Profession,
    Professional,
    Record,
    ReimbursementLine,
    SelfDeclaredItem,
    User,
    Vaccination,
)
from .models.people import rpps_with_key
from .models.record import nir_key
from .policy import Action, Actor
from .services import (
    break_glass_open,
    care_authorisation_declare,
    care_authorisation_grant,
    document_add,
    document_deposit,
    document_import,
    permit,
    professional_block,
    record_create,
    require,
    synthesis_write,
    treating_doctor_designate,
)
from .services.administration import ROLES, CommandLine, admin_scope_grant
from .services.synthesis import Problem

DEMO_PASSWORD = "demo-dmp-2026"  # noqa: S105 - public on purpose: the one password of every demo account
# The authenticator-app secret of every demo professional, agent and administrator (base32),
# public on purpose too; `manage.py demo_code` prints its current code.
DEMO_TOTP_SECRET = "DMPDEMODMPDEMODMPDEMODMPDEMO2345"  # noqa: S105
INSURER = "Assurance Maladie"

# Demo usernames, readable so the logins table explains itself.
CHRONIC, MINOR, ASYLUM = "patient.chronique", "patient.mineur", "patient.asile"
PARENT = "parent.mineur"
GP_TREATING, GP_OTHER = "dr.bernard", "dr.lefebvre"
PHARMACIST, PHYSIO = "pharma.dubois", "kine.moreau"
EMERGENCY, REGULATOR = "urgences.roux", "samu.girard"
LABORATORY = "labo.garnier"
CPAM_AGENT, CADA_WORKER = "guichet.cpam", "social.cada"
CPAM_SECOND = "guichet.cpam2"
ADMIN, ADMIN_SECOND = "admin.demo", "admin.second"

# Who adds a document, when it is not a demo account: the record holder, or the insurer's feed.
HOLDER, SYSTEM = "<holder>", "<system>"


class Writer(Protocol):
    """Where progress goes: a command's stdout, a StringIO in tests, or nothing."""

    def write(self, text: str, /) -> object: ...


@dataclass(frozen=True)
class DemoLogin:
    """One row of the logins table printed at the end."""

    username: str
    role: str
    try_this: str


@dataclass(frozen=True)
class DemoSummary:
    """What a run did. `created` is False when the database was already seeded."""

    created: bool
    logins: tuple[DemoLogin, ...]
    records: int = 0
    documents: int = 0
    reimbursement_lines: int = 0
    audit_entries: int = 0


# --- The cast ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _OrgSpec:
    key: str
    name: str
    kind: str
    city: str
    finess: str = ""


ORGANISATIONS: tuple[_OrgSpec, ...] = (
    _OrgSpec("cpam", "CPAM de Lille-Douai – accueil de Lille-Centre", Organisation.Kind.CPAM_COUNTER, "Lille"),
    _OrgSpec("pharmacy", "Pharmacie du Beffroi", Organisation.Kind.PHARMACY, "Lille", "590000012"),
    _OrgSpec("cada", "CADA Les Oliviers", Organisation.Kind.RECEPTION_CENTRE, "Villeneuve-d'Ascq", "590000020"),
    _OrgSpec("hospital", "Centre hospitalier Lille-Métropole", Organisation.Kind.FACILITY, "Lille", "590000038"),
    _OrgSpec("samu", "SAMU 59 – Centre 15", Organisation.Kind.SAMU, "Lille", "590000046"),
    _OrgSpec("laboratory", "Laboratoire de biologie médicale du Vieux-Lille", Organisation.Kind.FACILITY, "Lille",
             "590000053"),
)


@dataclass(frozen=True)
class _AccountSpec:
    """A demo account: its login row, and the address its past accesses come from."""

    username: str
    role: str
    try_this: str
    ip: str

    @property
    def login(self) -> DemoLogin:
        return DemoLogin(self.username, self.role, self.try_this)


@dataclass(frozen=True)
class _PersonSpec(_AccountSpec):
    """An account that is not a record holder: professional, counter agent, parent or administrator."""

    first_name: str
    last_name: str
    profession: str = ""  # set: a health professional
    specialty: str = ""
    rpps10: str = ""
    practice: str = ""  # letterhead of a professional without a facility
    town: str = ""  # where a professional without a facility practises
    organisation: str = ""  # key in ORGANISATIONS: facility of a professional, employer of an agent
    samu_regulator: bool = False
    counter_agent: bool = False
    administrator: bool = False


PEOPLE: tuple[_PersonSpec, ...] = (
    _PersonSpec(PARENT, "legal representative",
                f"mother of {MINOR}: acts for her, but one document is hidden from her", "198.51.100.30",
                first_name="Nathalie", last_name="Fontaine"),
    _PersonSpec(GP_TREATING, "GP, medecin traitant",
                f"medecin traitant of {CHRONIC} (sees hidden documents, writes the synthesis, reads the access "
                f"history) and of {MINOR}", "192.0.2.11", first_name="Claire", last_name="Bernard",
                profession=Profession.GP, specialty="Médecine générale", rpps10="1000000101",
                practice="Cabinet médical du Vieux-Lille, 12 rue de la Monnaie, 59000 Lille", town="Lille"),
    _PersonSpec(GP_OTHER, "GP",
                f"care declared for {CHRONIC} and {ASYLUM}; the document {CHRONIC} hid is not listed",
                "192.0.2.12", first_name="Thomas", last_name="Lefebvre",
                profession=Profession.GP, specialty="Médecine générale", rpps10="1000000202",
                practice="Maison de santé de Wazemmes, 4 place de la Nouvelle Aventure, 59000 Lille", town="Lille"),
    _PersonSpec(PHARMACIST, "pharmacist",
                f"authorised by {CHRONIC}; the matrix shows treatments, lab results, reimbursements",
                "192.0.2.13", first_name="Sophie", last_name="Dubois",
                profession=Profession.PHARMACIST, specialty="Pharmacie d'officine", rpps10="1000000303",
                organisation="pharmacy"),
    _PersonSpec(PHYSIO, "physiotherapist",
                f"care declared for {CHRONIC} (the matrix hides consultation reports); blocked on {MINOR}",
                "192.0.2.14", first_name="Julien", last_name="Moreau",
                profession=Profession.PHYSIOTHERAPIST, specialty="Masso-kinésithérapie", rpps10="1000000404",
                practice="Cabinet de kinésithérapie Solférino, 59000 Lille", town="Lille"),
    _PersonSpec(EMERGENCY, "emergency physician (specialist)",
                f"break-glass on {CHRONIC} open for a few hours after seeding; try another patient too",
                "203.0.113.20", first_name="Marc", last_name="Roux",
                profession=Profession.SPECIALIST, specialty="Médecine d'urgence", rpps10="1000000505",
                organisation="hospital"),
    _PersonSpec(REGULATOR, "SAMU regulator",
                "reads any record that allows SAMU access, no justification; logged as SAMU", "203.0.113.15",
                first_name="Nadia", last_name="Girard",
                profession=Profession.GP, specialty="Médecine d'urgence", rpps10="1000000606",
                organisation="samu", samu_regulator=True),
    _PersonSpec(LABORATORY, "medical biologist (laboratory)",
                f"sent {CHRONIC}'s laboratory results as FHIR Bundles, as a laboratory's software does",
                "192.0.2.17", first_name="Hélène", last_name="Garnier",
                profession=Profession.SPECIALIST, specialty="Biologie médicale", rpps10="1000000707",
                organisation="laboratory"),
    _PersonSpec(CPAM_AGENT, "CPAM counter agent",
                f"created {CHRONIC}; sees the administrative status only, no medical content", "198.51.100.10",
                first_name="Isabelle", last_name="Petit", organisation="cpam", counter_agent=True),
    _PersonSpec(CPAM_SECOND, "second CPAM counter agent",
                f"approves the credentials resets {CPAM_AGENT} asks for when the person has no phone or e-mail "
                f"(e.g. {ASYLUM}, onboarded elsewhere): nobody approves their own", "198.51.100.11",
                first_name="Thomas", last_name="Moreau", organisation="cpam", counter_agent=True),
    _PersonSpec(CADA_WORKER, "CADA social worker",
                f"created {ASYLUM} without NIR and deposited scanned papers (write-only)", "198.51.100.20",
                first_name="Karim", last_name="Benali", organisation="cada", counter_agent=True),
    _PersonSpec(ADMIN, "operator (administrator)",
                "Django admin for the demo organisations and the professionals without a facility: accounts, "
                "matrix; files requests (new professional, lost authenticator) that another operator approves",
                "198.51.100.99", first_name="Admin", last_name="Démo", administrator=True),
    _PersonSpec(ADMIN_SECOND, "second operator",
                f"same scope as {ADMIN}: approves or rejects its requests (nobody approves their own)",
                "198.51.100.98", first_name="Camille", last_name="Second", administrator=True),
)


@dataclass(frozen=True)
class _PatientSpec(_AccountSpec):
    """A record holder, created through `record_create` by `created_by`."""

    created_by: str
    family_name: str
    given_names: str
    birth_date: date
    sex: str
    nir13: str = ""  # the 13 characters without the key; empty: provisional identifier only
    email: str = ""
    phone: str = ""
    languages: tuple[str, ...] = ("fr",)
    preferred_language: str = "fr"
    given_by: str = Consent.GivenBy.PERSON

    @property
    def nir(self) -> str:
        return f"{self.nir13}{nir_key(self.nir13):02d}" if self.nir13 else ""


PATIENTS: tuple[_PatientSpec, ...] = (
    _PatientSpec(CHRONIC, "patient (type 2 diabetes, hypertension)",
                 "full record: 9 spaces, synthesis, 24 months of reimbursements, access history with an "
                 "emergency and a SAMU access", "198.51.100.41", created_by=CPAM_AGENT,
                 family_name="Lambert", given_names="Michel André", birth_date=date(1961, 4, 12),
                 sex=Record.Sex.MALE, nir13="1610459350123", email="michel.lambert@example.org",
                 phone="06 39 98 00 11"),
    _PatientSpec(MINOR, "patient, minor (15)", f"one document hidden from her mother ({PARENT})",
                 "198.51.100.42", created_by=GP_TREATING, family_name="Fontaine", given_names="Léa",
                 birth_date=date(2010, 9, 3), sex=Record.Sex.FEMALE, nir13="2100959512045",
                 email="lea.fontaine@example.org", given_by=Consent.GivenBy.REPRESENTATIVE),
    _PatientSpec(ASYLUM, "patient, asylum seeker",
                 "no NIR, phone or e-mail: cannot log in alone (the page says where to get help); reads Persian",
                 "198.51.100.43", created_by=CADA_WORKER, family_name="Karimi", given_names="Ahmad",
                 birth_date=date(1993, 3, 21), sex=Record.Sex.MALE, languages=("prs", "ru"),
                 preferred_language="fa"),
)

DEMO_LOGINS: tuple[DemoLogin, ...] = tuple(p.login for p in PATIENTS) + tuple(p.login for p in PEOPLE)
DEMO_USERNAMES: frozenset[str] = frozenset(login.username for login in DEMO_LOGINS)


# --- What goes into the records ----------------------------------------------------------------

@dataclass(frozen=True)
class _DocSpec:
    """One document: who adds it (a demo username, HOLDER or SYSTEM), its type and content, and
    what the holder does with it afterwards (hide, archive)."""

    by: str
    doc_type: str
    title: str
    days_ago: int
    paragraphs: tuple[str, ...]
    issuer: str = ""  # letterhead, when it is not the author's own (scanned papers, reports received)
    hidden_from_professionals: bool = False
    hidden_from_representatives: bool = False
    archived: bool = False
    withheld_days: int = 0  # a result the author announces in consultation first
    table: tuple[tuple[str, ...], ...] = field(default=(), repr=False)  # header row, then rows


_T = DocumentType

SYNTHESIS_FIELDS: dict[str, str] = {
    "personal_history": "Diabète de type 2 diagnostiqué en 2012. Hypertension artérielle depuis 2015. "
                        "Hypercholestérolémie depuis 2016. Appendicectomie en 1978. Ancien fumeur "
                        "(20 paquets-années, sevré en 2010).",
    "family_history": "Père : infarctus du myocarde à 58 ans. Mère : diabète de type 2.",
    "current_treatments": "Metformine 1000 mg : 1 comprimé matin, midi et soir. Ramipril 5 mg : 1 comprimé "
                          "le matin. Atorvastatine 20 mg : 1 comprimé le soir.",
    "allergies": "Pénicilline : urticaire généralisée (1995).",
    "vaccinations": "dTP à jour (2021). Grippe saisonnière chaque automne. Pneumocoque (2024). COVID-19 (2024).",
    "points_of_attention": "Surveillance de la fonction rénale sous metformine et IEC. Examen des pieds et "
                           "fond d'œil annuels. Directives anticipées rédigées ; personne de confiance : "
                           "son épouse.",
}
SYNTHESIS_PROBLEMS: tuple[Problem, ...] = (
    Problem("E11.9", "Diabète de type 2 sans complication", date(2012, 3, 1)),
    Problem("I10", "Hypertension artérielle essentielle", date(2015, 6, 1)),
    Problem("E78.0", "Hypercholestérolémie pure", date(2016, 1, 1)),
)
_SYNTHESIS_LABELS = {
    "personal_history": "Antécédents personnels", "family_history": "Antécédents familiaux",
    "current_treatments": "Traitements en cours", "allergies": "Allergies et intolérances",
    "vaccinations": "Vaccinations", "points_of_attention": "Points de vigilance",
}

@dataclass(frozen=True)
class _Analyte:
    """A test the demo laboratory reports: LOINC code, its French words, UCUM unit, usual range."""

    code: str
    text: str
    unit: str
    low: str = ""
    high: str = ""
    reference_text: str = ""

    def flag(self, value: str) -> str:
        """The laboratory's flag, from its usual range (H above, L below, none inside)."""
        if self.high and Decimal(value) > Decimal(self.high):
            return "H"
        if self.low and Decimal(value) < Decimal(self.low):
            return "L"
        return ""


ANALYTES: dict[str, _Analyte] = {
    "hba1c": _Analyte("4548-4", "Hémoglobine glyquée (HbA1c)", "%",
                      reference_text="Objectif fixé par le médecin ; chez le non-diabétique 4,0 – 6,0 %"),
    "creatinine": _Analyte("2160-0", "Créatinine", "umol/L", "59", "104"),
    "egfr": _Analyte("62238-1", "Débit de filtration glomérulaire estimé (CKD-EPI)", "mL/min/{1.73_m2}", low="60"),
    "potassium": _Analyte("2823-3", "Potassium", "mmol/L", "3.5", "5.0"),
    "ldl": _Analyte("13457-7", "LDL-cholestérol (calculé)", "g/L", high="1.60"),
}
# patient.chronique's quarterly check over two years, oldest first (days ago, values): a type 2
# diabetic on metformin and ramipril (HbA1c; creatinine, eGFR and potassium for the kidneys
# under both; LDL every six months on atorvastatin). The eGFR follows the creatinine (CKD-EPI
# 2021, a man in his sixties). One abnormal value: the last potassium, high under ramipril.
LAB_RESULTS: tuple[tuple[int, dict[str, str]], ...] = tuple(
    (20 + 91 * (7 - i), {k: v for k, v in zip(ANALYTES, row, strict=True) if v})
    for i, row in enumerate((
        ("7.6", "80", "95", "4.3", "1.32"),
        ("7.4", "83", "91", "4.5", ""),
        ("7.1", "82", "93", "4.4", "1.05"),
        ("6.9", "86", "87", "4.6", ""),
        ("7.0", "88", "85", "4.7", "0.98"),
        ("6.8", "87", "86", "4.5", ""),
        ("6.9", "91", "81", "4.8", "0.92"),
        ("7.1", "94", "78", "5.4", "0.97"),
    ))
)


CHRONIC_DOCUMENTS: tuple[_DocSpec, ...] = (
    _DocSpec(GP_TREATING, _T.RECORD_SYNTHESIS, "Volet de synthèse médicale", 20,
             tuple(f"{_SYNTHESIS_LABELS[k]} : {v}" for k, v in SYNTHESIS_FIELDS.items())
             + ("Problèmes en cours : " + " ; ".join(f"{p.label} ({p.icd10})" for p in SYNTHESIS_PROBLEMS),)),
    _DocSpec(GP_TREATING, _T.ALD_PROTOCOL, "Protocole de soins ALD – diabète de type 2", 400,
             ("Affection de longue durée n° 8 : diabète de type 2.",
              "Soins et traitements pris en charge à 100 % : antidiabétiques oraux, antihypertenseurs, "
              "hypolipémiants, HbA1c trimestrielle, bilan rénal et lipidique annuel, fond d'œil annuel, "
              "consultation podologique.")),
    _DocSpec(GP_TREATING, _T.MEDICATION_PRESCRIPTION, "Ordonnance – traitement de fond pour 3 mois", 20,
             ("Metformine 1000 mg : 1 comprimé matin, midi et soir, pendant 3 mois.",
              "Ramipril 5 mg : 1 comprimé le matin, pendant 3 mois.",
              "Atorvastatine 20 mg : 1 comprimé le soir, pendant 3 mois.")),
    _DocSpec(PHARMACIST, _T.MEDICATION_DISPENSING, "Dispensation – renouvellement mensuel", 15,
             ("Délivrance de metformine 1000 mg (1 boîte de 90), ramipril 5 mg (1 boîte de 30) et "
              "atorvastatine 20 mg (1 boîte de 30) sur ordonnance du Dr Claire Bernard.",
              "Pas d'interaction relevée. Conseils hygiéno-diététiques rappelés.")),
    _DocSpec(GP_TREATING, _T.CONSULTATION_REPORT, "Consultation de suivi du diabète", 20,
             ("Patient vu pour le suivi trimestriel. Bonne observance. Pas d'hypoglycémie rapportée.",
              "Poids 86 kg, TA 134/82 mmHg, pieds sans lésion. HbA1c 7,1 % (objectif < 7 %).",
              "Renouvellement du traitement. Renforcement de l'activité physique (marche nordique).")),
    _DocSpec(GP_OTHER, _T.CONSULTATION_REPORT, "Consultation en remplacement du médecin traitant", 75,
             ("Consultation pour rhinopharyngite. Apyrétique. Examen ORL et pulmonaire sans particularité.",
              "Traitement symptomatique. Pas de modification du traitement de fond.")),
    _DocSpec(GP_TREATING, _T.CONSULTATION_REPORT, "Consultation – trouble anxieux, orientation psychiatrique",
             130, ("Anxiété et troubles du sommeil depuis la retraite. Pas d'idée suicidaire.",
                   "Orientation vers un psychiatre de secteur ; thérapie de soutien proposée."),
             hidden_from_professionals=True),
    _DocSpec(PHYSIO, _T.FUNCTIONAL_ASSESSMENT, "Bilan kinésithérapique initial – lombalgie", 60,
             ("Lombalgie commune sans signe neurologique. Raideur du rachis lombaire, Schober 13/10.",
              "Objectifs : antalgie, renforcement des muscles du tronc. 10 séances prévues.")),
    _DocSpec(GP_TREATING, _T.IMAGING_REPORT, "Échographie-doppler des troncs supra-aortiques", 210,
             ("Surcharge athéromateuse modérée des bifurcations carotidiennes, sans sténose significative.",
              "Conclusion : pas de sténose hémodynamique. Contrôle dans 3 ans."),
             issuer="Cabinet de radiologie Liberté, 59000 Lille"),
    _DocSpec(GP_TREATING, _T.LAB_REPORT, "Bilan biologique trimestriel – HbA1c", 25,
             ("HbA1c : 7,1 % (précédent : 7,3 %). Glycémie à jeun : 1,32 g/L.",
              "Créatininémie : 88 µmol/L, DFG (CKD-EPI) : 82 mL/min/1,73 m². Kaliémie : 4,4 mmol/L."),
             issuer="Laboratoire de biologie médicale du Vieux-Lille"),
    _DocSpec(GP_TREATING, _T.LAB_REPORT, "Bilan biologique annuel de l'an dernier", 480,
             ("HbA1c : 7,6 %. LDL-cholestérol : 1,18 g/L. Microalbuminurie négative.",),
             issuer="Laboratoire de biologie médicale du Vieux-Lille", archived=True),
    _DocSpec(GP_TREATING, _T.LAB_REPORT, "Bilan lipidique de contrôle", 2,
             ("LDL-cholestérol : 0,92 g/L. HDL-cholestérol : 0,48 g/L. Triglycérides : 1,45 g/L.",
              "Résultat à commenter lors de la prochaine consultation."),
             issuer="Laboratoire de biologie médicale du Vieux-Lille", withheld_days=7),
    _DocSpec(PHARMACIST, _T.PREVENTIVE_THERAPY_REPORT, "Vaccination antigrippale en officine", 100,
             ("Vaccin grippal quadrivalent, 1 dose IM deltoïde gauche. Pas de réaction immédiate.",)),
    _DocSpec(GP_TREATING, _T.SCREENING_REPORT, "Dépistage organisé du cancer colorectal", 300,
             ("Test immunologique fécal : négatif. Prochain dépistage dans 2 ans.",)),
    _DocSpec(GP_TREATING, _T.CERTIFICATE, "Certificat de non contre-indication à la marche nordique", 150,
             ("Je soussignée certifie avoir examiné M. Michel Lambert et n'avoir pas constaté de "
              "contre-indication apparente à la pratique de la marche nordique en loisir.",)),
    _DocSpec(HOLDER, _T.ADVANCE_DIRECTIVES, "Mes directives anticipées", 90,
             ("Si je ne suis plus en mesure d'exprimer ma volonté, je refuse toute obstination "
              "déraisonnable et tout maintien artificiel en vie sans espoir d'amélioration.",
              "Je souhaite que l'on soulage mes douleurs, même si cela doit abréger ma vie.",
              "Ma personne de confiance est mon épouse, Anne Lambert.")),
    _DocSpec(HOLDER, _T.PATIENT_DOCUMENT, "Carnet d'autosurveillance glycémique", 10,
             ("Relevés des quatre dernières semaines : glycémies à jeun entre 1,18 et 1,41 g/L.",)),
)

MINOR_DOCUMENTS: tuple[_DocSpec, ...] = (
    _DocSpec(GP_TREATING, _T.CERTIFICATE, "Certificat de vaccination – rappel dTcaP", 200,
             ("Rappel diphtérie, tétanos, coqueluche, poliomyélite effectué à l'âge de 11-13 ans. "
              "Vaccinations à jour selon le calendrier vaccinal.",)),
    _DocSpec(GP_TREATING, _T.CONSULTATION_REPORT, "Consultation – asthme de l'enfant", 120,
             ("Asthme intermittent bien contrôlé. Salbutamol à la demande avant le sport.",
              "Technique d'inhalation vérifiée avec la chambre d'inhalation.")),
    _DocSpec(GP_TREATING, _T.CONSULTATION_REPORT, "Consultation confidentielle", 30,
             ("Consultation demandée par la patiente seule, au titre du secret médical dû aux mineurs.",
              "Information et prescription remises. Revoir dans 3 mois."),
             hidden_from_representatives=True),
)

ASYLUM_DOCUMENTS: tuple[_DocSpec, ...] = (
    _DocSpec(CADA_WORKER, _T.CERTIFICATE, "Carnet de vaccination (papier numérisé)", 3,
             ("BCG à la naissance. Poliomyélite : 3 doses. Rougeole : 1 dose. Autres vaccinations non "
              "documentées.",), issuer="Carnet de vaccination d'origine (traduction jointe)"),
    _DocSpec(CADA_WORKER, _T.HOSPITAL_STAY_REPORT, "Compte rendu d'hospitalisation antérieure (papier numérisé)",
             3, ("Hospitalisation de 5 jours en 2023 pour fracture de l'avant-bras droit, traitée par plâtre.",
                 "Consolidation sans séquelle signalée."),
             issuer="Hôpital régional – document d'origine traduit"),
    _DocSpec(GP_OTHER, _T.CONSULTATION_REPORT, "Bilan de santé à l'arrivée", 1,
             ("Examen clinique sans particularité. Dépistages proposés : tuberculose, hépatites B et C, VIH.",
              "Rattrapage vaccinal à prévoir (dTcaP, ROR, hépatite B). Interprète en dari présent.")),
)


# --- Helpers -----------------------------------------------------------------------------------

def _say(stdout: Writer | None, text: str) -> None:
    if stdout is not None:
        stdout.write(text + "\n")


def format_logins_table(logins: Sequence[DemoLogin] = DEMO_LOGINS) -> str:
    """The table printed at the end of the command: username, role, what to try."""
    header = ("username", "role", "what to try")
    rows = [header] + [(x.username, x.role, x.try_this) for x in logins]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"Demo logins (password for every account: {DEMO_PASSWORD})", ""]
    for i, (username, role, hint) in enumerate(rows):
        lines.append(f"  {username:<{widths[0]}}  {role:<{widths[1]}}  {hint}")
        if i == 0:
            lines.append(f"  {'-' * widths[0]}  {'-' * widths[1]}  {'-' * len(header[2])}")
    lines += [
        "",
        "Patients then type the one-time code sent by SMS or e-mail: with the console backends",
        "(`make run`) it is printed in the server's output.",
        "Professionals, counter agents and the administrator then type their authenticator code:",
        f"add the secret {DEMO_TOTP_SECRET} to any authenticator app, or run",
        "`python manage.py demo_code <username>`.",
    ]
    return "\n".join(lines)


def _ean13(first_twelve: str) -> str:
    """Complete a CIP13 (an EAN-13) with its check digit, so the codes look like real ones."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first_twelve))
    return first_twelve + str((10 - total % 10) % 10)


def _month_start(today: date, months_back: int) -> date:
    index = today.year * 12 + today.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def render_pdf(context: dict) -> bytes:
    """One shared French template for every demo document."""
    return pdf.write_pdf(render_to_string("demo/document.html", context))


@dataclass(frozen=True)
class _Medicine:
    cip13: str
    label: str
    amount: Decimal


MEDICINES: tuple[_Medicine, ...] = (
    _Medicine(_ean13("340093000011"), "METFORMINE 1000 mg, comprimé pelliculé, boîte de 90", Decimal("7.62")),
    _Medicine(_ean13("340093000022"), "RAMIPRIL 5 mg, gélule, boîte de 30", Decimal("3.11")),
    _Medicine(_ean13("340093000033"), "ATORVASTATINE 20 mg, comprimé pelliculé, boîte de 30", Decimal("4.37")),
)


def _reimbursement_table(lines: Sequence[ReimbursementLine]) -> tuple[tuple[str, ...], ...]:
    """One row per month, newest first: a statement a reader takes in at a glance (and a PDF
    of one page or two rather than five, which keeps the seeding fast)."""
    months: dict[date, list[ReimbursementLine]] = {}
    for x in sorted(lines, key=lambda x: x.date, reverse=True):
        months.setdefault(x.date.replace(day=1), []).append(x)

    def names(kind: str, group: list[ReimbursementLine]) -> str:
        return ", ".join(x.label.split(",")[0] for x in group if x.kind == kind) or "–"

    return (("Mois", "Médicaments délivrés", "Soins remboursés", "Remboursé (€)"),) + tuple(
        (f"{month:%m/%Y}", names(ReimbursementLine.Kind.MEDICINE, group), names(ReimbursementLine.Kind.CARE, group),
         f"{sum(x.amount for x in group):.2f}".replace(".", ","))
        for month, group in months.items()
    )


# --- The seeding -------------------------------------------------------------------------------

class _Seeder:
    """Builds the demo world in one transaction. Keeps the accounts and records it made, and the
    names of the files it stored so they can be removed if the transaction rolls back."""

    def __init__(self, stdout: Writer | None) -> None:
        self.stdout = stdout
        self.now = timezone.now()
        self.today = timezone.localdate()
        self.users: dict[str, User] = {}
        self.ips: dict[str, str] = {}
        self.signatures: dict[str, tuple[str, str]] = {}  # username -> (letterhead, signature)
        self.organisations: dict[str, Organisation] = {}
        self.records: dict[str, Record] = {}
        self.agents: set[str] = set()  # usernames of counter agents: they deposit, they do not add
        self.stored_files: list[str] = []
        # The first document of each type in each record, for the reads of the access history.
        self.documents: dict[str, dict[str, Document]] = {}
        self._references = itertools.count(1)
        self.password_hash = make_password(DEMO_PASSWORD)

    def actor(self, username: str) -> Actor:
        """A fresh Actor for every step, as each step would be its own request."""
        return Actor(self.users[username], ip=self.ips[username])

    def run(self) -> None:
        self._organisations()
        self._people()
        self._patients()
        self._chronic_patient()
        self._minor()
        self._asylum_seeker()
        _say(self.stdout, f"Added {len(self.stored_files)} documents (PDF) to {len(self.records)} records.")
        self._past_accesses()

    # Accounts

    def _account(self, user: User, ip: str) -> User:
        """Every demo account gets the documented password and no forced change, so the demo
        can be logged into straight away. The password is hashed once and the hash shared:
        Argon2 costs ~0.15 s per hash, which would double the run time for nothing (the
        password is public anyway)."""
        user.password = self.password_hash
        user.must_change_password = False
        user.save()
        self.users[user.username] = user
        self.ips[user.username] = ip
        return user

    def _organisations(self) -> None:
        for spec in ORGANISATIONS:
            self.organisations[spec.key] = Organisation.objects.create(
                name=spec.name, kind=spec.kind, city=spec.city, finess=spec.finess
            )

    def _people(self) -> None:
        for spec in PEOPLE:
            user = self._account(
                User(username=spec.username, first_name=spec.first_name, last_name=spec.last_name,
                     email=f"{spec.username}@example.org"),
                spec.ip,
            )
            organisation = self.organisations.get(spec.organisation)
            if spec.profession:
                professional = Professional(
                    user=user, rpps=rpps_with_key(spec.rpps10), profession=spec.profession,
                    specialty=spec.specialty, facility=organisation, is_samu_regulator=spec.samu_regulator,
                    town=spec.town or (organisation.city if organisation else ""),
                )
                professional.full_clean()
                professional.save()
                title = "Dr " if spec.profession in (Profession.GP, Profession.SPECIALIST) else ""
                self.signatures[spec.username] = (
                    organisation.name if organisation else spec.practice,
                    f"{title}{spec.first_name} {spec.last_name} – {spec.specialty} – RPPS {professional.rpps}",
                )
            elif spec.counter_agent:
                CounterAgent.objects.create(user=user, organisation=organisation)
                self.agents.add(spec.username)
                self.signatures[spec.username] = (organisation.name, f"{spec.first_name} {spec.last_name}")
            if spec.administrator:
                # Operators, never superusers: their scope is every demo organisation and the
                # professionals without a facility, granted as `manage.py admin_scope` would.
                admin_scope_grant(actor=CommandLine("seed_demo"), user=user,
                                  organisations=list(self.organisations.values()), roles=list(ROLES))
            if second_factor_required(user):
                TOTP.activate(user, DEMO_TOTP_SECRET)
        _say(self.stdout, f"Created {len(ORGANISATIONS)} organisations and {len(PEOPLE)} accounts.")

    def _patients(self) -> None:
        for spec in PATIENTS:
            record, _credentials = record_create(
                actor=self.actor(spec.created_by), family_name=spec.family_name, given_names=spec.given_names,
                birth_date=spec.birth_date, consented=True, break_glass_allowed=True, samu_allowed=True,
                nir=spec.nir, sex=spec.sex, email=spec.email, phone=spec.phone, languages=list(spec.languages),
                preferred_language=spec.preferred_language, given_by=spec.given_by,
            )
            # record_create names the account after the NIR or provisional identifier and hands
            # out a temporary password; the demo wants readable names and the shared password.
            holder = record.holder
            holder.username = spec.username
            self._account(holder, spec.ip)
            self.records[spec.username] = record
        _say(self.stdout, f"Created {len(PATIENTS)} records.")

    # Records

    def _chronic_patient(self) -> None:
        record = self.records[CHRONIC]
        treating_doctor_designate(actor=self.actor(CHRONIC), record=record,
                                  professional=self.users[GP_TREATING].professional)
        care_authorisation_grant(actor=self.actor(CHRONIC), record=record,
                                 professional=self.users[PHARMACIST].professional)
        for username in (GP_OTHER, PHYSIO):
            care_authorisation_declare(actor=self.actor(username), record=record)
        self._chronic_personal_data(record)
        synthesis_write(actor=self.actor(GP_TREATING), record=record, problems=list(SYNTHESIS_PROBLEMS),
                        **SYNTHESIS_FIELDS)
        lines = self._reimbursements(record)
        self._add_documents(CHRONIC, CHRONIC_DOCUMENTS)
        self._lab_results(record)
        self._add_document(CHRONIC, _DocSpec(
            SYSTEM, _T.REIMBURSEMENT_DATA, "Historique des remboursements – 24 derniers mois", 0,
            ("Soins remboursés et médicaments délivrés au cours des 24 derniers mois, par mois.",),
            issuer=INSURER, table=_reimbursement_table(lines),
        ))

    def _lab_results(self, record: Record) -> None:
        """The laboratory declares care when it takes the samples, then its software sends each
        report as a FHIR transaction Bundle, through the API's own function: no PDF, so the
        record renders one from the values, as for any laboratory that sends none."""
        actor = self.actor(LABORATORY)
        care_authorisation_declare(actor=actor, record=record)
        for number, (days_ago, values) in enumerate(LAB_RESULTS, start=1):
            response = lab_bundle_post(actor, self._lab_bundle(record, number, days_ago, values))
            if response.status_code != 200:
                raise RuntimeError(f"demo laboratory report {number} refused ({response.status_code})")
        for report in LabReport.objects.filter(record=record).select_related("document"):
            self.stored_files += [name for name in (report.document.file.name, report.document.thumbnail.name) if name]
        _say(self.stdout, f"Sent {len(LAB_RESULTS)} laboratory reports (FHIR) for {CHRONIC}.")

    def _lab_bundle(self, record: Record, number: int, days_ago: int, values: dict[str, str]) -> dict:
        """A laboratory's transaction Bundle: the DiagnosticReport and one Observation per value."""
        sampled = timezone.make_aware(datetime.combine(self.today - timedelta(days=days_ago), time(8, 10)))
        at, patient = sampled.isoformat(), {"reference": f"Patient/{record.pk}"}
        # Decimals, not floats: the values keep the laboratory's precision ("94 µmol/L", never "94,0").
        observations = []
        for key, value in values.items():
            analyte = ANALYTES[key]
            observation = {
                "resourceType": "Observation", "status": "final", "subject": patient, "effectiveDateTime": at,
                "category": [{"coding": [{"system": fhir.OBSERVATION_CATEGORY, "code": "laboratory"}]}],
                "code": {"coding": [{"system": fhir.LOINC_SYSTEM, "code": analyte.code}], "text": analyte.text},
                "valueQuantity": {"value": Decimal(value), "unit": analyte.unit, "system": fhir.UCUM_SYSTEM,
                                  "code": analyte.unit},
                "referenceRange": [{k: v for k, v in (
                    ("low", {"value": Decimal(analyte.low)} if analyte.low else None),
                    ("high", {"value": Decimal(analyte.high)} if analyte.high else None),
                    ("text", analyte.reference_text or None)) if v}],
            }
            if flag := analyte.flag(value):
                observation["interpretation"] = [{"coding": [{"system": fhir.INTERPRETATION_SYSTEM, "code": flag}]}]
            observations.append((f"urn:uuid:{uuid.uuid4()}", observation))
        report = {
            "resourceType": "DiagnosticReport", "status": "final", "subject": patient,
            "identifier": [{"system": "urn:oid:1.2.250.1.999.59.53", "value": f"LBM-VL-{record.pk}-{number:03d}"}],
            "category": [{"coding": [{"system": fhir.DIAGNOSTIC_SERVICE, "code": "LAB"}]}],
            "code": {"coding": [{"system": fhir.LOINC_SYSTEM, "code": "11502-2"}], "text": "Bilan biologique"},
            "effectiveDateTime": at, "issued": (sampled + timedelta(hours=9)).isoformat(),
            "performer": [{"display": self.organisations["laboratory"].name}],
            "result": [{"reference": full_url} for full_url, _observation in observations],
        }
        entries = [(f"urn:uuid:{uuid.uuid4()}", "DiagnosticReport", report)]
        entries += [(full_url, "Observation", observation) for full_url, observation in observations]
        return {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": kind}}
            for full_url, kind, resource in entries]}

    def _holder_edits(self, username: str, record: Record) -> None:
        """Personal data has no service yet: ask the policy the question a service would."""
        permit(self.actor(username), Action.EDIT_PERSONAL_DATA, record)

    def _chronic_personal_data(self, record: Record) -> None:
        self._holder_edits(CHRONIC, record)
        stated = self.now - timedelta(days=90)
        PersonalProfile.objects.filter(record=record).update(
            trusted_person_name="Anne Lambert", trusted_person_phone="06 39 98 00 21",
            trusted_person_relation="Épouse",
            advance_directives="Je refuse toute obstination déraisonnable. Je souhaite être soulagé de mes "
                               "douleurs. Voir le document « Mes directives anticipées ».",
            advance_directives_updated_at=stated, organ_donation=PersonalProfile.OrganDonation.INFORMED,
            organ_donation_stated_at=stated, blood_group=PersonalProfile.BloodGroup.A_POS,
        )
        EmergencyContact.objects.bulk_create([
            EmergencyContact(record=record, name="Anne Lambert", relation="Épouse", phone="06 39 98 00 21"),
            EmergencyContact(record=record, name="Julien Lambert", relation="Fils", phone="06 39 98 00 22"),
        ])
        Vaccination.objects.bulk_create([
            Vaccination(record=record, vaccine=vaccine, date=self.today - timedelta(days=days), batch=batch,
                        declared_by_patient=by_patient)
            for vaccine, days, batch, by_patient in (
                ("Grippe saisonnière (vaccin quadrivalent)", 100, "FLU2531A", False),
                ("COVID-19 (ARNm, dose de rappel)", 470, "CV24118", False),
                ("Pneumocoque (vaccin conjugué 20-valent)", 540, "PN20087", False),
                ("Diphtérie, tétanos, poliomyélite (rappel)", 1700, "", True),
            )
        ])
        SelfDeclaredItem.objects.bulk_create([
            SelfDeclaredItem(record=record, kind=kind, label=label, year=year)
            for kind, label, year in (
                (SelfDeclaredItem.Kind.ALLERGY, "Pénicilline (urticaire)", 1995),
                (SelfDeclaredItem.Kind.HISTORY, "Diabète de type 2", 2012),
                (SelfDeclaredItem.Kind.OPERATION, "Appendicectomie", 1978),
            )
        ])

    def _reimbursements(self, record: Record) -> list[ReimbursementLine]:
        """24 months of the insurer's feed: medicines every month, a GP consultation and a lab
        test every quarter. Dates of the current month are capped at today."""
        pharmacy = self.organisations["pharmacy"].name
        doctor = self.users[GP_TREATING]
        gp = f"Dr {doctor.get_full_name()} ({doctor.professional.rpps})"
        lab = "Laboratoire de biologie médicale du Vieux-Lille"
        lines: list[ReimbursementLine] = []

        def line(month: date, day: int, **values) -> None:
            lines.append(ReimbursementLine(record=record, date=min(month + timedelta(days=day - 1), self.today),
                                           **values))

        for back in range(24):
            month = _month_start(self.today, back)
            for medicine in MEDICINES:
                line(month, 6, kind=ReimbursementLine.Kind.MEDICINE, code=medicine.cip13, label=medicine.label,
                     amount=medicine.amount, provider=pharmacy)
            if back % 3 == 0:
                line(month, 8, kind=ReimbursementLine.Kind.CARE, code="1577",
                     label="Hémoglobine glyquée (HbA1c)", amount=Decimal("8.10"), provider=lab)
                line(month, 12, kind=ReimbursementLine.Kind.CARE, code="G",
                     label="Consultation de médecine générale", amount=Decimal("28.00"), provider=gp)
        created = ReimbursementLine.objects.bulk_create(lines)
        _say(self.stdout, f"Created {len(created)} reimbursement lines.")
        return created

    def _minor(self) -> None:
        record = self.records[MINOR]
        # No service adds a legal representative yet: the GP who created the record with the
        # mother's consent records her as such.
        LegalRepresentative.objects.create(record=record, user=self.users[PARENT],
                                           relationship=LegalRepresentative.Relationship.PARENT,
                                           since=record.birth_date)
        treating_doctor_designate(actor=self.actor(PARENT), record=record,
                                  professional=self.users[GP_TREATING].professional)
        professional_block(actor=self.actor(PARENT), record=record, professional=self.users[PHYSIO].professional)
        self._add_documents(MINOR, MINOR_DOCUMENTS)

    def _asylum_seeker(self) -> None:
        care_authorisation_declare(actor=self.actor(GP_OTHER), record=self.records[ASYLUM])
        self._add_documents(ASYLUM, ASYLUM_DOCUMENTS)

    def _past_accesses(self) -> None:
        """Reads that fill the access history: visits under care authorisations, one
        break-glass and one SAMU read, each written to the audit chain by the policy."""
        record = self.records[CHRONIC]
        documents = self.documents[CHRONIC]
        synthesis = record.syntheses.latest()
        self._read(GP_TREATING, record, (synthesis, documents[_T.LAB_REPORT]))
        self._read(GP_OTHER, record, (documents[_T.MEDICATION_PRESCRIPTION],))
        self._read(PHARMACIST, record, (documents[_T.MEDICATION_PRESCRIPTION], documents[_T.REIMBURSEMENT_DATA]))
        self._read(GP_TREATING, self.records[MINOR], ())
        self._read(GP_OTHER, self.records[ASYLUM], ())
        patient = next(p for p in PATIENTS if p.username == CHRONIC)
        break_glass_open(
            actor=self.actor(EMERGENCY), record=record, family_name=patient.family_name,
            given_names=patient.given_names, birth_date=patient.birth_date, emergency=True,
            justification="Patient inconscient amené par les pompiers, suspicion d'hypoglycémie sévère.",
        )
        self._read(EMERGENCY, record, (synthesis, documents[_T.RECORD_SYNTHESIS]))
        self._read(REGULATOR, record, (synthesis,))
        _say(self.stdout, "Wrote the access history (visits, one break-glass, one SAMU read).")

    def _read(self, username: str, record: Record, objects: Sequence[object]) -> None:
        actor = self.actor(username)
        require(authorise_read(actor, Action.VIEW_RECORD, record))
        for obj in objects:
            action = Action.VIEW_DOCUMENT if isinstance(obj, Document) else Action.VIEW_SYNTHESIS
            require(authorise_read(actor, action, obj))

    # Documents

    def _add_documents(self, holder: str, specs: Sequence[_DocSpec]) -> None:
        for spec in specs:
            self._add_document(holder, spec)

    def _add_document(self, holder: str, spec: _DocSpec) -> Document:
        """Add through the service that fits the author — document_add (patient, professional),
        document_deposit (counter agent) or document_import (insurer feed) — then apply what the
        holder does with it, after asking the policy."""
        record = self.records[holder]
        author = spec.by if spec.by != HOLDER else holder
        content = render_pdf(self._pdf_context(record, spec, author))
        act_date = self.today - timedelta(days=spec.days_ago)
        if spec.by == SYSTEM:
            document = document_import(record=record, content=content, doc_type=spec.doc_type, title=spec.title,
                                       act_date=act_date, source=INSURER)
        elif author in self.agents:
            document = document_deposit(actor=self.actor(author), record=record, content=content,
                                        doc_type=spec.doc_type, title=spec.title, act_date=act_date)
        else:
            withheld = self.now + timedelta(days=spec.withheld_days) if spec.withheld_days else None
            document = document_add(actor=self.actor(author), record=record, content=content,
                                    doc_type=spec.doc_type, title=spec.title, act_date=act_date,
                                    withheld_until=withheld)
        self.stored_files.append(document.file.name)
        self.documents.setdefault(holder, {}).setdefault(spec.doc_type, document)
        changes: dict[str, object] = {}
        if spec.hidden_from_professionals:
            permit(self.actor(holder), Action.HIDE_DOCUMENT, document)
            changes["hidden_from_professionals"] = True
        if spec.hidden_from_representatives:
            permit(self.actor(holder), Action.HIDE_FROM_REPRESENTATIVES, document)
            changes["hidden_from_representatives"] = True
        if spec.archived:
            permit(self.actor(holder), Action.ARCHIVE_DOCUMENT, document)
            changes["status"] = Document.Status.ARCHIVED
        if changes:
            # No hide/archive service yet; the policy has answered above.
            Document.objects.filter(pk=document.pk).update(**changes)
        return document

    def _pdf_context(self, record: Record, spec: _DocSpec, author: str) -> dict:
        """The template's context: letterhead and signature follow who adds the document."""
        scanned = ""
        if spec.by == SYSTEM:
            letterhead, signature = INSURER, ""
        elif spec.by == HOLDER:
            letterhead, signature = "Document personnel", record.full_name
        elif author in self.agents:
            organisation, agent = self.signatures[author]
            letterhead, signature, scanned = "", "", f"{agent}, {organisation}"
        else:
            letterhead, signature = self.signatures[author]
        return {
            "title": spec.title, "issuer": spec.issuer or letterhead, "author": signature, "scanned": scanned,
            "act_date": self.today - timedelta(days=spec.days_ago),
            "reference": f"DEMO-{record.pk:04d}-{next(self._references):03d}",
            "patient_name": record.full_name, "birth_date": record.birth_date, "identifier": record.identifier,
            "paragraphs": spec.paragraphs, "table_header": spec.table[0] if spec.table else (),
            "table_rows": spec.table[1:],
        }


def seed_demo(*, stdout: Writer | None = None) -> DemoSummary:
    """Create the demo world once. If any demo account already exists the database is taken as
    seeded and nothing is written, so running it twice (e.g. every `make run`) is harmless.
    Everything is written in one transaction: a failure leaves no half-built demo behind."""
    existing = User.objects.filter(username__in=DEMO_USERNAMES).order_by("username").first()
    if existing is not None:
        _say(stdout, f"Demo data already present (account {existing.username!r} exists); nothing created.")
        _say(stdout, format_logins_table())
        return DemoSummary(created=False, logins=DEMO_LOGINS)
    counts_before = _counts()
    seeder = _Seeder(stdout)
    try:
        with transaction.atomic():
            seeder.run()
    except BaseException:
        # The rows are rolled back; the encrypted files already written are not.
        for name in seeder.stored_files:
            default_storage.delete(name)
        raise
    counts = {k: v - counts_before[k] for k, v in _counts().items()}
    _say(stdout, f"Audit log: {counts['audit_entries']} entries written.")
    _say(stdout, "")
    _say(stdout, format_logins_table())
    return DemoSummary(created=True, logins=DEMO_LOGINS, **counts)


def _counts() -> dict[str, int]:
    return {
        "records": Record.objects.count(),
        "documents": Document.objects.count(),
        "reimbursement_lines": ReimbursementLine.objects.count(),
        "audit_entries": AuditEntry.objects.count(),
    }
