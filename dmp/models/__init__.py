"""The one shared data model. One module per concept; import from here."""

from .access import Block, CareAuthorisation, DepositRight, MatrixEntry, TreatingDoctor
from .administration import (
    AdminRequest,
    CounterAgentCreationRequest,
    ProfessionalCreationRequest,
    SecondFactorResetRequest,
)
from .audit import AuditChainHead, AuditCheckpoint, AuditEntry, AuditMode
from .counter import CounterReset, PostalLetter
from .credentials import ApiToken
from .documents import SPACE_OF_TYPE, Document, DocumentSearchTerm, DocumentSelection, DocumentType, Space
from .export import RecordExport
from .notifications import Notification
from .people import CounterAgent, Organisation, Profession, Professional, User
from .personal import EmergencyContact, PersonalProfile, SelfDeclaredItem, Vaccination
from .record import Consent, LegalRepresentative, Record
from .reimbursement import ReimbursementLine
from .results import Interpretation, LabObservation, LabReport, ResultStatus
from .synthesis import Synthesis, SynthesisProblem

__all__ = [
    "SPACE_OF_TYPE", "AdminRequest", "ApiToken", "AuditChainHead", "AuditCheckpoint", "AuditEntry", "AuditMode",
    "Block",
    "CareAuthorisation", "Consent", "CounterAgent", "CounterAgentCreationRequest", "CounterReset",
    "DepositRight", "Document", "DocumentSearchTerm", "DocumentSelection", "DocumentType", "EmergencyContact",
    "Interpretation", "LabObservation", "LabReport",
    "LegalRepresentative", "MatrixEntry", "Notification", "Organisation", "PersonalProfile", "PostalLetter",
    "Profession", "Professional", "ProfessionalCreationRequest", "Record", "RecordExport",
    "ReimbursementLine", "ResultStatus", "SecondFactorResetRequest", "SelfDeclaredItem", "Space", "Synthesis",
    "SynthesisProblem", "TreatingDoctor", "User", "Vaccination",
]
