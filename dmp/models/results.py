"""Laboratory results as values (DOMAIN.md §2 "Results as values"): a report and its
observations, each report bound to the Document that is its legal copy (its PDF).

There is no access rule here: a report and its values are visible exactly where its document
is (dmp/selectors/results.py filters through the document's `document_scope()`), so hiding,
withholding or the matrix cell of biology act on the values with no second rule to keep.

What is stored clear, and why: the LOINC codes, the times, the status and the interpretation
flag are what the screens query ("the latest HbA1c", "an abnormal value of the last three
months", "this period"), like `Document.codings` and `Document.act_date`; a code alone says
which test was done, not its result. The values, the words, the reference ranges and the
laboratory are encrypted at rest like the documents' titles (`EncryptedTextField`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import models
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from .documents import Document
from .fields import EncryptedTextField, KeyIdField
from .record import Record

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"


def _decimal(text: str) -> Decimal | None:
    """A number kept as the text of a Decimal (encrypted columns hold text), or None."""
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


class ResultStatus(models.TextChoices):
    """FHIR's statuses of a report or an observation, the ones a laboratory sends."""

    REGISTERED = "registered"
    PRELIMINARY = "preliminary"
    PARTIAL = "partial"
    FINAL = "final"
    AMENDED = "amended"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"


class Interpretation(models.TextChoices):
    """The laboratory's flag (HL7 v3 ObservationInterpretation, the codes laboratories use)."""

    NORMAL = "N", pgettext_lazy("laboratory flag", "Normal")
    HIGH = "H", pgettext_lazy("laboratory flag", "High")
    LOW = "L", pgettext_lazy("laboratory flag", "Low")
    CRITICAL_HIGH = "HH", pgettext_lazy("laboratory flag", "Critically high")
    CRITICAL_LOW = "LL", pgettext_lazy("laboratory flag", "Critically low")
    ABNORMAL = "A", pgettext_lazy("laboratory flag", "Abnormal")

    @classmethod
    def abnormal(cls) -> tuple[str, ...]:
        return (cls.HIGH, cls.LOW, cls.CRITICAL_HIGH, cls.CRITICAL_LOW, cls.ABNORMAL)


class LabReport(models.Model):
    """One laboratory report (FHIR DiagnosticReport, a CDA CR-BIO): its document is the legal
    copy, its observations the values. Created only by `lab_report_add` (dmp/services/results.py)."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="lab_reports")
    # PROTECT: a report without its document would escape the policy, which reads the document.
    document = models.OneToOneField(Document, on_delete=models.PROTECT, related_name="lab_report")
    code = models.CharField(max_length=32, blank=True, default="")  # LOINC, e.g. 11502-2
    text = EncryptedTextField(blank=True, default="")
    effective_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.FINAL)
    laboratory = EncryptedTextField(blank=True, default="")
    # The laboratory's own id of the report: the same one twice in a record is one report.
    identifier_system = models.CharField(max_length=255, blank=True, default="")
    identifier = models.CharField(max_length=255, blank=True, default="")
    # A keyed hash of what the report says (`results_fingerprint`): the same report sent twice
    # without an identifier is recognised. Keyed, since values are few and a plain hash of
    # them could be guessed back.
    fingerprint = models.CharField(max_length=64)
    # 1, then one more for each correction the laboratory sent (`corrected`, `amended`): each
    # version is bound to its own version of the document, and only the latest is listed.
    version = models.PositiveSmallIntegerField(default=1)
    added_at = models.DateTimeField(default=timezone.now)
    key_id = KeyIdField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "identifier_system", "identifier", "version"],
                                    condition=~models.Q(identifier=""), name="lab_report_unique_identifier"),
            models.UniqueConstraint(fields=["record", "fingerprint", "version"], name="lab_report_unique_content"),
        ]

    def __str__(self) -> str:
        return f"Laboratory report #{self.pk}"  # no words: they are medical and this reaches logs


class LabObservation(models.Model):
    """One value of a report (FHIR Observation): a quantity with its UCUM unit, a coded value,
    or text; its reference range and the laboratory's flag. `record` repeats the report's so
    the screens' "this record's values of this code, newest first" is one index read."""

    class Kind(models.TextChoices):
        QUANTITY = "quantity"
        CODED = "coded"
        TEXT = "text"

    report = models.ForeignKey(LabReport, on_delete=models.CASCADE, related_name="observations")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)  # its order in the report
    # LOINC code (clear: the queries); empty when the laboratory sent only a local code or words.
    code = models.CharField(max_length=32, blank=True, default="")
    text = EncryptedTextField(blank=True, default="")  # the laboratory's name of the test
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = EncryptedTextField(blank=True, default="")  # the quantity (a decimal), or the text
    comparator = models.CharField(max_length=2, blank=True, default="")  # <, <=, >=, >
    unit = models.CharField(max_length=40, blank=True, default="")  # UCUM code
    # The same quantity in a second unit, when the laboratory gave both (a CDA PQ's
    # `translation`: glucose in mmol/L and g/L). One value, so a trend stays in one unit.
    alternative_value = EncryptedTextField(blank=True, default="")
    alternative_unit = models.CharField(max_length=40, blank=True, default="")
    value_code_system = models.CharField(max_length=255, blank=True, default="")
    value_code = EncryptedTextField(blank=True, default="")
    reference_low = EncryptedTextField(blank=True, default="")
    reference_high = EncryptedTextField(blank=True, default="")
    reference_text = EncryptedTextField(blank=True, default="")
    interpretation = models.CharField(max_length=2, choices=Interpretation.choices, blank=True, default="")
    effective_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.FINAL)
    key_id = KeyIdField()

    class Meta:
        indexes = [
            # A record's values of one code, newest first: the trend and the latest value.
            models.Index(fields=["record", "code", "-effective_at"], name="lab_observation_by_code"),
            models.Index(fields=["record", "-effective_at"], name="lab_observation_by_date"),
        ]

    def __str__(self) -> str:
        return f"Laboratory value #{self.pk}"

    @property
    def quantity(self) -> Decimal | None:
        return _decimal(self.value) if self.kind == self.Kind.QUANTITY else None

    @property
    def alternative_quantity(self) -> Decimal | None:
        return _decimal(self.alternative_value)

    @property
    def low(self) -> Decimal | None:
        return _decimal(self.reference_low)

    @property
    def high(self) -> Decimal | None:
        return _decimal(self.reference_high)

    @property
    def is_abnormal(self) -> bool:
        return self.interpretation in Interpretation.abnormal()

    def get_interpretation_display(self) -> str:
        return str(Interpretation(self.interpretation).label) if self.interpretation else ""
