"""Documents, in nine spaces, of the types of annex C of 002 (DOMAIN.md §2)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField, KeyIdField
from .people import Professional
from .record import Record


class Space(models.TextChoices):
    SYNTHESES = "syntheses", _("Summaries")
    TREATMENTS = "treatments", _("Treatments and care")
    REPORTS = "reports", _("Reports")
    IMAGING = "imaging", _("Medical imaging")
    BIOLOGY = "biology", _("Laboratory results")
    PREVENTION = "prevention", _("Prevention")
    CERTIFICATES = "certificates", _("Certificates and declarations")
    REIMBURSEMENT = "reimbursement", _("Reimbursement data")
    PERSONAL = "personal", _("Personal space")


class DocumentType(models.TextChoices):
    # Synthèses
    TRANSFER_NOTE = "transfer_note", _("Transfer note (including admission liaison letter)")
    SYNTHESIS = "synthesis", _("Summary")
    EPISODE_SYNTHESIS = "episode_synthesis", _("Care episode summary")
    RECORD_SYNTHESIS = "record_synthesis", _("Medical record summary")
    # Traitements et soins
    ADMINISTRATION_REPORT = "administration_report", _("Medication administration report")
    AUXILIARY_CARE_REPORT = "auxiliary_care_report", _("Care follow-up by a paramedical professional")
    MEDICATION_DISPENSING = "medication_dispensing", _("Medication dispensing")
    OTHER_DISPENSING = "other_dispensing", _("Dispensing (other)")
    CARE_PLAN = "care_plan", _("Personalised care plan")
    MEDICATION_PRESCRIPTION = "medication_prescription", _("Medication prescription")
    CARE_PRESCRIPTION = "care_prescription", _("Care prescription")
    OTHER_PRESCRIPTION = "other_prescription", _("Prescription (other)")
    ALD_PROTOCOL = "ald_protocol", _("Long-term illness (ALD) care protocol")
    # Comptes rendus
    DELIVERY_REPORT = "delivery_report", _("Delivery report")
    DIAGNOSTIC_ACT_REPORT = "diagnostic_act_report", _("Diagnostic procedure report (other)")
    THERAPEUTIC_ACT_REPORT = "therapeutic_act_report", _("Therapeutic procedure report (other)")
    ADMISSION_REPORT = "admission_report", _("Admission report")
    ANAESTHESIA_REPORT = "anaesthesia_report", _("Anaesthesia report")
    AUTONOMY_ASSESSMENT = "autonomy_assessment", _("Loss-of-autonomy assessment report")
    FUNCTIONAL_ASSESSMENT = "functional_assessment", _("Functional assessment (by a paramedical professional)")
    PRE_ANAESTHESIA_REPORT = "pre_anaesthesia_report", _("Pre-anaesthesia consultation report")
    MOLECULAR_GENETICS = "molecular_genetics", _("Molecular genetics report")
    EMERGENCY_REPORT = "emergency_report", _("Emergency department report")
    MDT_MEETING_REPORT = "mdt_meeting_report", _("Multidisciplinary team meeting report")
    TELEMEDICINE_REPORT = "telemedicine_report", _("Telemedicine report")
    HOSPITAL_STAY_REPORT = "hospital_stay_report", _("Hospital stay report")
    OPERATIVE_REPORT = "operative_report", _("Operative report")
    CONSULTATION_REPORT = "consultation_report", _("Consultation or visit report")
    DISCHARGE_LETTER = "discharge_letter", _("Discharge liaison letter")
    # Imagerie médicale
    IMAGING_REPORT = "imaging_report", _("Imaging report")
    NON_DICOM_IMAGE = "non_dicom_image", _("Illustration image (non-DICOM)")
    # Biologie
    PATHOLOGY_REPORT = "pathology_report", _("Pathology and cytology report")
    LAB_REPORT = "lab_report", _("Laboratory test report")
    # Prévention
    SCREENING_REPORT = "screening_report", _("Preventive or screening procedure report")
    PREVENTIVE_THERAPY_REPORT = "preventive_therapy_report", _("Preventive therapeutic procedure report")
    # Certificats, déclarations
    CERTIFICATE = "certificate", _("Certificate or declaration")
    # Données de remboursement
    REIMBURSEMENT_DATA = "reimbursement_data", _("Reimbursement data")
    # Documents du patient
    ADVANCE_DIRECTIVES = "advance_directives", _("Advance directives")
    PATIENT_DOCUMENT = "patient_document", _("Patient's document")


def _label(choices: type[models.TextChoices], value: str) -> str:
    """The translated label of `value`, or the value itself if it is no longer a choice (as
    Django's `get_<field>_display()` answers)."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


_S, _T = Space, DocumentType
SPACE_OF_TYPE: dict[str, str] = {
    **dict.fromkeys([_T.TRANSFER_NOTE, _T.SYNTHESIS, _T.EPISODE_SYNTHESIS, _T.RECORD_SYNTHESIS], _S.SYNTHESES),
    **dict.fromkeys(
        [_T.ADMINISTRATION_REPORT, _T.AUXILIARY_CARE_REPORT, _T.MEDICATION_DISPENSING, _T.OTHER_DISPENSING,
         _T.CARE_PLAN, _T.MEDICATION_PRESCRIPTION, _T.CARE_PRESCRIPTION, _T.OTHER_PRESCRIPTION,
         _T.ALD_PROTOCOL],
        _S.TREATMENTS,
    ),
    **dict.fromkeys(
        [_T.DELIVERY_REPORT, _T.DIAGNOSTIC_ACT_REPORT, _T.THERAPEUTIC_ACT_REPORT, _T.ADMISSION_REPORT,
         _T.ANAESTHESIA_REPORT, _T.AUTONOMY_ASSESSMENT, _T.FUNCTIONAL_ASSESSMENT,
         _T.PRE_ANAESTHESIA_REPORT, _T.MOLECULAR_GENETICS, _T.EMERGENCY_REPORT, _T.MDT_MEETING_REPORT,
         _T.TELEMEDICINE_REPORT, _T.HOSPITAL_STAY_REPORT, _T.OPERATIVE_REPORT, _T.CONSULTATION_REPORT,
         _T.DISCHARGE_LETTER],
        _S.REPORTS,
    ),
    **dict.fromkeys([_T.IMAGING_REPORT, _T.NON_DICOM_IMAGE], _S.IMAGING),
    **dict.fromkeys([_T.PATHOLOGY_REPORT, _T.LAB_REPORT], _S.BIOLOGY),
    **dict.fromkeys([_T.SCREENING_REPORT, _T.PREVENTIVE_THERAPY_REPORT], _S.PREVENTION),
    _T.CERTIFICATE: _S.CERTIFICATES,
    _T.REIMBURSEMENT_DATA: _S.REIMBURSEMENT,
    **dict.fromkeys([_T.ADVANCE_DIRECTIVES, _T.PATIENT_DOCUMENT], _S.PERSONAL),
}
assert set(SPACE_OF_TYPE) == set(DocumentType.values), "every document type belongs to one space"


def document_upload_to(instance: Document, filename: str) -> str:
    # The stored name says nothing about the content: record pk and the content hash only.
    return f"records/{instance.record_id}/{instance.content_hash}"


def document_thumbnail_to(instance: Document, filename: str) -> str:
    return f"records/{instance.record_id}/{instance.content_hash}.thumb"


class Document(models.Model):
    class Status(models.TextChoices):
        CURRENT = "current", _("Current")
        ARCHIVED = "archived", _("Archived")
        # Withdrawn by its author as published by mistake: kept (the audit log points at it),
        # shown in no list, readable by id by who could read it.
        ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")

    class AuthorKind(models.TextChoices):
        PROFESSIONAL = "professional", _("Health professional")
        PATIENT = "patient", _("Patient")
        SYSTEM = "system", _("System feed")
        COUNTER = "counter", _("Counter deposit")

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="documents")
    space = models.CharField(_("space"), max_length=16, choices=Space.choices, editable=False)
    doc_type = models.CharField(_("type"), max_length=32, choices=DocumentType.choices)
    # Encrypted like the file (a title is medical: "HIV test result"); at most 200 characters,
    # cut by the services (`_store`) since the column holds a longer token.
    title = EncryptedTextField(_("title"))
    act_date = models.DateField(_("date of the act"))
    author_kind = models.CharField(_("author kind"), max_length=16, choices=AuthorKind.choices)
    author_professional = models.ForeignKey(
        Professional, on_delete=models.PROTECT, null=True, blank=True, related_name="authored_documents"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    system_source = models.CharField(_("system source"), max_length=100, blank=True)
    file = models.FileField(_("file"), upload_to=document_upload_to, max_length=200)
    mime_type = models.CharField(_("file type"), max_length=50)
    size = models.PositiveIntegerField(_("size in bytes"))
    content_hash = models.CharField(_("content hash (SHA-256)"), max_length=64)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.CURRENT)
    hidden_from_professionals = models.BooleanField(_("hidden from professionals"), default=False)
    hidden_from_representatives = models.BooleanField(_("hidden from legal representatives"), default=False)
    # Set by the authoring PS for a result to be announced in consultation; null = visible.
    withheld_from_patient_until = models.DateTimeField(_("not visible to the patient until"), null=True, blank=True)
    # When the patient was told of this professional's document (dmp/notifications.py): at once,
    # or once a withheld result became visible. Empty: not told (yet, or not a professional's).
    patient_notified_at = models.DateTimeField(_("patient notified at"), null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(_("version"), default=1)
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by"
    )
    # False once a newer version replaces this one (`_store` in dmp/services/documents.py, in
    # the same transaction). The lists keep to the latest versions through this flag and the
    # partial index below, which PostgreSQL reads for one record alone; the reverse relation
    # (`replaced_by__isnull=True`) is a join it may answer by reading the whole table.
    is_latest_version = models.BooleanField(_("latest version"), default=True, editable=False)
    added_at = models.DateTimeField(_("added at"), default=timezone.now)
    # The last change of the row after it was added (status, visibility, replaced): the API's
    # `meta.lastUpdated` and `Last-Modified`; empty while the row is as it was added.
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True, editable=False)
    # What practice software said of the document (IHE MHD / PDSm), kept as given so that it
    # reads back what it sent: its own unique id of the document (`masterIdentifier`, on which
    # the same push twice is recognised), its other identifiers, and its type and class
    # codings (LOINC, the French value sets). Identifiers and codes, never medical words.
    master_identifier_system = models.CharField(_("master identifier system"), max_length=255, blank=True,
                                                default="", editable=False)
    master_identifier = models.CharField(_("master identifier"), max_length=255, blank=True, default="",
                                         editable=False)
    identifiers = models.JSONField(_("identifiers"), default=list, blank=True, editable=False)
    codings = models.JSONField(_("codings"), default=dict, blank=True, editable=False)
    # The words of the document (a PDF's text layer), encrypted: the search never reads it, it
    # looks up DocumentSearchTerm; the text is read back only to build the index again.
    extracted_text = EncryptedTextField(_("extracted text"), blank=True, default="", editable=False)
    # A small PNG of the first page or of the image, encrypted like the file; empty if none.
    thumbnail = models.FileField(_("thumbnail"), upload_to=document_thumbnail_to, max_length=200, blank=True)
    key_id = KeyIdField()  # which document key encrypted it (dmp.E002)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        constraints = [
            # The same file is never stored twice in a record; a document withdrawn as entered in
            # error no longer counts (`documents_kept_once`): its author may publish it again.
            models.UniqueConstraint(fields=["record", "content_hash"], condition=~models.Q(status="entered_in_error"),
                                    name="document_unique_content_per_record"),
            # The same client document (its masterIdentifier) is never stored twice in a record.
            models.UniqueConstraint(fields=["record", "master_identifier_system", "master_identifier"],
                                    condition=~models.Q(master_identifier="") & ~models.Q(status="entered_in_error"),
                                    name="document_unique_master_identifier_per_record"),
            models.CheckConstraint(
                condition=~models.Q(author_kind="professional") | models.Q(author_professional__isnull=False),
                name="professional_document_has_author",
            ),
        ]
        indexes = [
            models.Index(fields=["record", "space", "status"]),
            # The lists' order (newest act first) over the record's latest versions only: the
            # first page is read from the index, whatever the size of the table or the record.
            models.Index(fields=["record", "-act_date", "-id"], condition=models.Q(is_latest_version=True),
                         name="document_latest_by_date"),
            # The withheld results not told yet, for the periodic `documents_release_due()`:
            # a few rows at any time, where the table holds millions.
            models.Index(fields=["withheld_from_patient_until"], name="document_release_pending",
                         condition=models.Q(withheld_from_patient_until__isnull=False,
                                            patient_notified_at__isnull=True)),
        ]

    def __str__(self) -> str:
        # No title here: titles are medical ("HIV test result") and this string reaches admin and logs.
        return f"Document #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        self.space = SPACE_OF_TYPE[self.doc_type]
        super().save(*args, **kwargs)

    # The labels of a list's rows, by one lookup each. Django's own `get_<field>_display()`
    # hashes every choice to build its dictionary on each call, translating all 49 labels of the
    # types for each row: about 3,000 translations for a page of 50 documents.
    def get_doc_type_display(self) -> str:
        return _label(DocumentType, self.doc_type)

    def get_space_display(self) -> str:
        return _label(Space, self.space)

    def get_status_display(self) -> str:
        return _label(self.Status, self.status)

    def get_author_kind_display(self) -> str:
        return _label(self.AuthorKind, self.author_kind)

    def is_withheld_from_patient(self, at=None) -> bool:
        at = at or timezone.now()
        return self.withheld_from_patient_until is not None and self.withheld_from_patient_until > at

    def last_changed(self):
        """When the row last changed (added, or status and visibility since): the API's
        `meta.lastUpdated`."""
        return self.changed_at or self.added_at


def documents_kept_once(record: Record) -> models.QuerySet[Document]:
    """The record's documents a new one may not repeat (the same file, the same client
    masterIdentifier): all of them but those withdrawn as entered in error, which are kept for
    the audit log only, so that their author can publish the corrected document again."""
    return record.documents.exclude(status=Document.Status.ENTERED_IN_ERROR)


class DocumentSearchTerm(models.Model):
    """One entry of the documents' blind index (`dmp/search_index.py`): a keyed hash of a
    normalised word, or of its stem or prefix, of the document's title or text — never the word."""

    # The key is also the one index the search uses, "does this document hold this hash": no
    # surrogate id, no second index on the document (a page of text makes ~2,000 rows).
    pk = models.CompositePrimaryKey("document", "term")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="search_terms", db_index=False)
    term = models.BigIntegerField(_("term hash"))

    class Meta:
        verbose_name = _("search term")
        verbose_name_plural = _("search terms")

    def __str__(self) -> str:
        return f"Search term of document #{self.document_id}"


class DocumentSelection(models.Model):
    """A document on someone's "my selection" shortlist (each account keeps its own: a minor
    and their parent do not share one)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="document_selection")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="selections")
    added_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        verbose_name = _("selected document")
        verbose_name_plural = _("selected documents")
        constraints = [models.UniqueConstraint(fields=["user", "document"], name="select_a_document_once")]
