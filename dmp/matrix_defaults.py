"""The authorisation matrix as shipped: restrictive. A profession reads only the document
types its work needs (a physiotherapist does not read consultation reports, which carry
psychiatric and other sensitive care). Administrators widen it in Django admin."""

from __future__ import annotations

from .models.documents import DocumentType as T
from .models.people import Profession as P

_SUMMARIES = {T.TRANSFER_NOTE, T.SYNTHESIS, T.EPISODE_SYNTHESIS, T.RECORD_SYNTHESIS}
_ALL = set(T.values)

DEFAULT_MATRIX: dict[str, set[str]] = {
    P.GP: _ALL,
    P.SPECIALIST: _ALL,
    P.MIDWIFE: _ALL - {T.MOLECULAR_GENETICS, T.REIMBURSEMENT_DATA, T.PATIENT_DOCUMENT},
    P.PHARMACIST: _SUMMARIES | {
        T.ADMINISTRATION_REPORT, T.MEDICATION_DISPENSING, T.OTHER_DISPENSING, T.MEDICATION_PRESCRIPTION,
        T.OTHER_PRESCRIPTION, T.ALD_PROTOCOL, T.LAB_REPORT, T.REIMBURSEMENT_DATA, T.PREVENTIVE_THERAPY_REPORT,
    },
    P.NURSE: _SUMMARIES | {
        T.ADMINISTRATION_REPORT, T.AUXILIARY_CARE_REPORT, T.CARE_PLAN, T.MEDICATION_PRESCRIPTION,
        T.CARE_PRESCRIPTION, T.ALD_PROTOCOL, T.LAB_REPORT, T.DISCHARGE_LETTER, T.AUTONOMY_ASSESSMENT,
        T.SCREENING_REPORT, T.PREVENTIVE_THERAPY_REPORT, T.ADVANCE_DIRECTIVES,
    },
    P.PHYSIOTHERAPIST: {
        T.SYNTHESIS, T.RECORD_SYNTHESIS, T.AUXILIARY_CARE_REPORT, T.CARE_PRESCRIPTION, T.CARE_PLAN,
        T.FUNCTIONAL_ASSESSMENT, T.AUTONOMY_ASSESSMENT, T.OPERATIVE_REPORT, T.IMAGING_REPORT, T.DISCHARGE_LETTER,
    },
    P.DENTIST: {
        T.SYNTHESIS, T.RECORD_SYNTHESIS, T.MEDICATION_PRESCRIPTION, T.MEDICATION_DISPENSING, T.IMAGING_REPORT,
        T.NON_DICOM_IMAGE, T.LAB_REPORT, T.ANAESTHESIA_REPORT, T.OPERATIVE_REPORT,
    },
}


def default_cells() -> list[tuple[str, str, bool]]:
    """Every (profession, document type) pair with its default answer: the full grid, so
    administrators see every cell in admin and flip it, rather than add missing rows."""
    return [(str(p), str(t), t in DEFAULT_MATRIX[p]) for p in P.values for t in T.values]
