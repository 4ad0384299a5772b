"""The access policy: the one place that answers "may this actor do this action on this
object, and in which mode?" for every rule of DOMAIN.md §4.

Everything that touches medical data asks here — views, forms, the API, exports, tasks —
through `decide()` (a pure answer) or `document_scope()` (the same document rule as a
queryset filter, so lists, counts and search cannot show what a read would refuse). Record
standings are `RECORD_RULES`, read for one record (`record_access()`), as the records an actor
may open (`records_open_to()`) and as the people standing on a record (`standing_rows()`). It decides
and explains only: it writes nothing and imports nothing that records. Recording the answer
(the audit entry, the patient's notice) is `dmp/access_log.py`'s job, done by the selectors and
services at the point of access. It denies by default: an action no rule allows is
refused. Every answer carries the rule that decided it, which is what the audit log stores and
what `who_may_see()` shows the patient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections
from django.db.models import BooleanField, Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from .models import (
    AuditMode,
    Block,
    CareAuthorisation,
    CounterReset,
    DepositRight,
    Document,
    DocumentType,
    LegalRepresentative,
    MatrixEntry,
    Professional,
    Record,
    Synthesis,
    TreatingDoctor,
    User,
)


class Action:
    """Everything the policy can be asked about. Plain strings: they are stored in the audit log."""

    VIEW_RECORD = "view_record"
    VIEW_DOCUMENT = "view_document"
    VIEW_SYNTHESIS = "view_synthesis"
    VIEW_PERSONAL_DATA = "view_personal_data"
    VIEW_REIMBURSEMENTS = "view_reimbursements"
    VIEW_ACCESS_HISTORY = "view_access_history"
    EXPORT_RECORD = "export_record"
    ADD_DOCUMENT = "add_document"
    REPLACE_DOCUMENT = "replace_document"
    RELEASE_DOCUMENT = "release_document"
    # The author withdraws their document as entered in error (kept for the audit log, listed
    # nowhere): the same rule as replacing it.
    WITHDRAW_DOCUMENT = "withdraw_document"
    HIDE_DOCUMENT = "hide_document"
    # Hide a document from the legal representatives, or show it to them again: a minor's
    # secret, so the minor's own (a representative never sets or lifts it).
    HIDE_FROM_REPRESENTATIVES = "hide_from_representatives"
    # Choose whether the legal representatives hear of the record's ordinary life (first
    # accesses, new documents): the same right, the patient's own.
    NOTIFY_REPRESENTATIVES = "notify_representatives"
    ARCHIVE_DOCUMENT = "archive_document"
    EDIT_SYNTHESIS = "edit_synthesis"
    EDIT_PERSONAL_DATA = "edit_personal_data"
    MANAGE_ACCESS = "manage_access"
    BLOCK_PROFESSIONAL = "block_professional"
    CLOSE_RECORD = "close_record"
    DECLARE_CARE = "declare_care"
    BREAK_GLASS = "break_glass"
    CREATE_RECORD = "create_record"
    DEPOSIT_DOCUMENT = "deposit_document"
    VIEW_ADMIN_STATUS = "view_admin_status"
    RESET_CREDENTIALS = "reset_credentials"
    # A second agent of the requesting agent's organisation approves a pending counter reset.
    APPROVE_CREDENTIALS_RESET = "approve_credentials_reset"
    # Not a question anyone asks: the entry written when a counter reset waits for its proofs.
    REQUEST_CREDENTIALS_RESET = "request_credentials_reset"
    # Not a question anyone asks: the entry written when a counter reset moves where the login
    # code goes (under the standing of the reset itself).
    CHANGE_LOGIN_CONTACT = "change_login_contact"
    ATTACH_NIR = "attach_nir"
    # Not a question anyone asks: the name of the tombstone entry written when a record is
    # destroyed at the end of its retention (dmp/services/records.py).
    DESTROY_RECORD = "destroy_record"
    # A professional looks a record up (by identifier, or name and date of birth) to open it.
    FIND_RECORD = "find_record"
    # The International Patient Summary as a PDF, for the person to carry: downloaded by the
    # patient or their representative, or printed by the counter that onboarded them.
    PRINT_PATIENT_SUMMARY = "print_patient_summary"

    READS = frozenset(
        {VIEW_RECORD, VIEW_DOCUMENT, VIEW_SYNTHESIS, VIEW_PERSONAL_DATA, VIEW_REIMBURSEMENTS,
         VIEW_ACCESS_HISTORY, EXPORT_RECORD, PRINT_PATIENT_SUMMARY}
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # stable identifier, stored in the audit log and used by tests
    mode: str = AuditMode.NONE
    reason: str = ""  # human-readable, translatable
    # Below the rule, the precise clause that decided (a `Clause` of the document rule: which
    # of the document's marks refused it, or admitted it). Empty where the rule says it all.
    clause: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def _deny(rule: str, reason: str, mode: str = AuditMode.NONE, *, clause: str = "") -> Decision:
    return Decision(False, rule, mode, reason, clause)


def _allow(rule: str, reason: str, mode: str, *, clause: str = "") -> Decision:
    return Decision(True, rule, mode, reason, clause)


def client_ip(request) -> str | None:
    """The client's address: the reverse proxy's header when CLIENT_IP_HEADER names one,
    REMOTE_ADDR otherwise. Written in the audit log and used by the login rate limits."""
    ip = request.META.get(settings.CLIENT_IP_HEADER) if settings.CLIENT_IP_HEADER else None
    return ip or request.META.get("REMOTE_ADDR")


class Actor:
    """Who is asking: an account and where the request came from. The roles are read from the
    account's profiles once and cached for the lifetime of the actor (one request or task)."""

    def __init__(self, user: User | None, *, ip: str | None = None) -> None:
        self.user = user if user is not None and user.is_authenticated else None
        self.ip = ip
        self._access_cache: dict[int, RecordAccess] = {}
        # Records this actor's reads were already notified for (dmp/notifications.py).
        self.notified_records: set[int] = set()
        # Allowed reads not written yet, inside `access_log.reads_logged_together()` (else None).
        self.pending_reads: list | None = None

    def forget(self, record: Record) -> None:
        """Drop the cached standing towards a record after a write changed it (a care
        authorisation declared, a break-glass opened, a block…)."""
        self._access_cache.pop(record.pk, None)

    @classmethod
    def from_request(cls, request) -> Actor:
        return cls(getattr(request, "user", None), ip=client_ip(request))

    @cached_property
    def professional(self):
        return getattr(self.user, "professional", None) if self.user else None

    @cached_property
    def counter_agent(self):
        return getattr(self.user, "counter_agent", None) if self.user else None

    @property
    def is_administrator(self) -> bool:
        return bool(self.user and (self.user.is_staff or self.user.is_superuser))

    @cached_property
    def _patient_side(self) -> tuple[int | None, frozenset[int]]:
        """The record the account holds and those it represents now, in one query: every page
        of the patient portal asks both (which portal, which records to switch between)."""
        if not self.user:
            return None, frozenset()
        # Two branches, each an index lookup: "holder OR represented" in one WHERE was a filter
        # over every record of the table (44 ms at 10,000 records). Each branch reads its own
        # table alone: compiling a join or a subquery cost more than running the query.
        held = (Record.objects.filter(holder=self.user)
                .annotate(represented=Value(False, output_field=BooleanField())).values_list("pk", "represented"))
        represented_rows = (LegalRepresentative.objects.active().filter(user=self.user)
                            .annotate(represented=Value(True, output_field=BooleanField()))
                            .values_list("record_id", "represented"))
        rows = list(held.union(represented_rows, all=True))
        own = min((pk for pk, is_represented in rows if not is_represented), default=None)
        return own, frozenset(pk for pk, is_represented in rows if is_represented)

    @property
    def own_record_id(self) -> int | None:
        return self._patient_side[0]

    @property
    def represented_record_ids(self) -> frozenset[int]:
        return self._patient_side[1]

    @cached_property
    def matrix_types(self) -> frozenset[str]:
        """Document types the authorisation matrix lets this professional's profession read."""
        if not self.professional:
            return frozenset()
        return frozenset(
            MatrixEntry.objects.filter(profession=self.professional.profession, allowed=True).values_list(
                "doc_type", flat=True
            )
        )

    @property
    def label(self) -> str:
        """Who, as written in the audit log: in the default language whatever the request's,
        since the hashed entry must not depend on who was browsing in which language."""
        if not self.user:
            return "anonymous"
        name = self.user.get_full_name() or self.user.username
        if self.professional:
            with translation.override(settings.LANGUAGE_CODE):
                profession = str(self.professional.get_profession_display())
            return f"{name} ({profession}, RPPS {self.professional.rpps})"
        if self.counter_agent:
            return f"{name} ({self.counter_agent.organisation.name})"
        return name

    @property
    def display(self) -> str:
        """Who, for the person reading the page: the label in the current language (a
        profession is a word of the interface, not of the log)."""
        if self.professional:
            name = self.user.get_full_name() or self.user.username
            return f"{name} ({self.professional.get_profession_display()}, RPPS {self.professional.rpps})"
        return self.label


class Standing(StrEnum):
    """How an actor stands towards one record: the fact the policy found first, which grants
    (or refuses) access. Every right below the record level is a property of the standing, so
    no caller compares strings or reads a flag that silently means "the médecin traitant"."""

    HOLDER = "holder"
    REPRESENTATIVE = "representative"
    BLOCKED = "blocked"  # the patient blocked this professional: overrides everything below
    TREATING_DOCTOR = "treating_doctor"  # médecin traitant
    AUTHORISED = "authorised"  # care authorisation granted by the patient
    DECLARED_CARE = "declared_care"  # care declared by the professional at a consultation
    CARE_TEAM = "care_team"  # a care authorisation shared with the professional's facility
    SAMU = "samu"  # the SAMU regulator (centre 15)
    BREAK_GLASS = "break_glass"  # emergency opening, limited in time
    EXPIRED_BREAK_GLASS = "expired_break_glass"
    PROFESSIONAL = "professional"  # a professional with none of the above
    COUNTER = "counter"  # the counter agents of the organisation that onboarded the person
    ADMINISTRATOR = "administrator"
    NONE = "none"

    @property
    def acts_for_patient(self) -> bool:
        """The holder or their legal representative: the patient's side."""
        return self in (Standing.HOLDER, Standing.REPRESENTATIVE)

    @property
    def is_professional(self) -> bool:
        """Asked as a health professional (a GP reading their own record is its holder)."""
        return self in _PROFESSIONAL_STANDINGS

    @property
    def bypasses_matrix(self) -> bool:
        """Reads every document type, whatever the authorisation matrix says of a profession."""
        return self in (Standing.HOLDER, Standing.REPRESENTATIVE, Standing.TREATING_DOCTOR)

    @property
    def may_write(self) -> bool:
        """Adds documents; the emergency standings only read."""
        return self.acts_for_patient or self.in_care

    @property
    def manages_with_patient(self) -> bool:
        """Reads the access history and blocks a professional: the patient's side and the
        médecin traitant."""
        return self.acts_for_patient or self is Standing.TREATING_DOCTOR

    @property
    def in_care(self) -> bool:
        """Cares for the patient with their agreement (a designation or a care authorisation):
        no declaration of care is offered, and a read is an ordinary one."""
        return self in CARE_STANDINGS

    @property
    def sees_hidden(self) -> bool:
        """Reads, as a professional, the documents the patient hid from professionals: the
        médecin traitant only (the patient's side reads them as its own, see `document_scope`)."""
        return self is Standing.TREATING_DOCTOR


_PROFESSIONAL_STANDINGS = frozenset({
    Standing.BLOCKED, Standing.TREATING_DOCTOR, Standing.AUTHORISED, Standing.DECLARED_CARE, Standing.CARE_TEAM,
    Standing.SAMU, Standing.BREAK_GLASS, Standing.EXPIRED_BREAK_GLASS, Standing.PROFESSIONAL,
})
CARE_STANDINGS = frozenset({Standing.TREATING_DOCTOR, Standing.AUTHORISED, Standing.DECLARED_CARE, Standing.CARE_TEAM})
# What a professional's home lists as "my patients": every allowed professional standing but the
# SAMU regulator's, which opens every record that did not refuse it and follows none.
FOLLOWING_STANDINGS = CARE_STANDINGS | {Standing.BREAK_GLASS}


@dataclass(frozen=True)
class RecordAccess:
    """How an actor stands towards one record, with the rule that put them there. The rights
    follow from the standing, and only while the decision allows."""

    decision: Decision
    standing: Standing = Standing.NONE

    @property
    def mode(self) -> str:
        return self.decision.mode

    @property
    def bypasses_matrix(self) -> bool:
        return self.decision.allowed and self.standing.bypasses_matrix

    @property
    def may_write(self) -> bool:
        return self.decision.allowed and self.standing.may_write

    @property
    def sees_hidden(self) -> bool:
        return self.decision.allowed and self.standing.sees_hidden

    @property
    def manages_with_patient(self) -> bool:
        return self.decision.allowed and self.standing.manages_with_patient


# --- Record-level rules: the record twin of DocumentScope ----------------------------------------
#
# A standing comes from stored facts: rows naming a record (a médecin traitant designation, a
# care authorisation, a block…) or a field of the record itself (its holder). `Facts` reads them
# three ways from one definition: for one actor and one record (`decide`), as the records one
# actor may open (`records_open_to`), and as the people standing on one record (`who_may_see`,
# the access overview). The rules are tried in order; the first whose facts hold decides: it
# allows if the patient's consent flag (if any) is on, and refuses with its own rule otherwise.


@dataclass(frozen=True)
class Facts:
    """Stored facts that give a standing. `rows(at)` are the rows in force at `at`, each naming
    a record by `key`; `who(actor)` narrows them to the actor (a filter), or says they can never
    be the actor's (None). `field` instead reads the record's own column against `who`'s value;
    with neither, the facts hold on every record for any actor `who` accepts."""

    who: Callable[[Actor], Any]
    rows: Callable[[datetime], QuerySet] | None = None
    key: str = "record_id"
    field: str | None = None

    def q(self, actor: Actor, at: datetime) -> Q | None:
        """The records where the facts hold for the actor, as a filter on Record (None: none)."""
        who = self.who(actor)
        if who is None:
            return None
        if self.rows is not None:
            return Q(pk__in=self.ids(actor, at))
        return Q(**{self.field: who}) if self.field else Q(pk__isnull=False)  # every record

    def ids(self, actor: Actor, at: datetime) -> QuerySet | None:
        """The ids of the records where row facts hold for the actor (None: none)."""
        who = self.who(actor)
        if who is None or self.rows is None:
            return None
        return self.rows(at).filter(**who).values(self.key)

    def exists(self, actor: Actor, at: datetime) -> Exists | bool:
        """For one record, as an expression on Record; a bool when no query is needed."""
        who = self.who(actor)
        if who is None:
            return False
        if self.rows is not None:
            return self.exists_for(who, at)
        return True  # a field is read on the record itself (`holds_on`)

    def exists_for(self, who: dict[str, Any], at: datetime) -> Exists:
        """Row facts for one record as an expression on Record, narrowed by `who(actor)`'s filter."""
        return Exists(self.rows(at).filter(**who).filter(**{self.key: OuterRef("pk")}))

    def holds_on(self, actor: Actor, record: Record) -> bool | None:
        """For one record, without a query when the record's fields answer (None: ask `exists`)."""
        if self.rows is not None:
            return None
        who = self.who(actor)
        if who is None:
            return False
        return getattr(record, self.field) == who if self.field else True


def _pro(filter_name: str = "professional_id"):
    return lambda actor: {filter_name: actor.professional.pk} if actor.professional is not None else None


def _care_rows(*kinds: str):
    return lambda at: CareAuthorisation.objects.active(at).filter(kind__in=kinds)


@dataclass(frozen=True)
class StandingRule:
    standing: Standing
    facts: Facts
    decision: Decision  # when the facts hold (and the patient consents)
    consent: str | None = None  # the record's flag by which the patient accepts this standing
    refusal: Decision | None = None  # when the facts hold but the patient refused

    def consents(self, record: Record) -> bool:
        return self.consent is None or bool(getattr(record, self.consent))

    def consent_q(self) -> Q:
        return Q(**{self.consent: True}) if self.consent else Q()

    def answer(self, record: Record) -> RecordAccess:
        return RecordAccess(self.decision if self.consents(record) else self.refusal, self.standing)


RECORD_RULES: tuple[StandingRule, ...] = (
    StandingRule(
        Standing.HOLDER, Facts(lambda a: a.user.pk if a.user else None, field="holder_id"),
        _allow("holder", _("The patient sees their whole record."), AuditMode.PATIENT)),
    StandingRule(
        Standing.REPRESENTATIVE,
        Facts(lambda a: {"user_id": a.user.pk} if a.user else None,
              rows=lambda at: LegalRepresentative.objects.active(at)),
        _allow("legal_representative", _("A legal representative acts for the patient."), AuditMode.REPRESENTATIVE)),
    StandingRule(
        Standing.BLOCKED, Facts(_pro(), rows=lambda at: Block.objects.active(at)),
        _deny("blocked_professional", _("The patient has blocked this professional."))),
    StandingRule(
        Standing.TREATING_DOCTOR, Facts(_pro(), rows=lambda at: TreatingDoctor.objects.active(at)),
        _allow("treating_doctor", _("Médecin traitant designated by the patient."), AuditMode.TREATING_DOCTOR)),
    StandingRule(
        Standing.AUTHORISED, Facts(_pro(), rows=_care_rows(CareAuthorisation.Kind.GRANTED_BY_PATIENT)),
        _allow("care_authorisation_granted", _("Care authorisation for this patient."), AuditMode.NORMAL)),
    StandingRule(
        Standing.DECLARED_CARE, Facts(_pro(), rows=_care_rows(CareAuthorisation.Kind.DECLARED_BY_PROFESSIONAL)),
        _allow("care_authorisation_declared", _("Care authorisation for this patient."), AuditMode.NORMAL)),
    # A facility's care team shares an authorisation granted to or declared by one of its members
    # for the facility: the same standing as its holder (matrix, may add documents), read from the
    # professional's facility at each access, so leaving the facility ends it. Logged under the individual.
    StandingRule(
        Standing.CARE_TEAM,
        Facts(lambda a: {"facility_id": a.professional.facility_id}
              if a.professional is not None and a.professional.facility_id is not None else None,
              rows=_care_rows(*CareAuthorisation.CARE_KINDS)),
        _allow("facility_care_team", _("Care authorisation shared with your facility's care team."),
               AuditMode.NORMAL)),
    StandingRule(
        Standing.SAMU, Facts(lambda a: True if a.professional is not None and a.professional.is_samu_regulator
                             else None),
        _allow("samu_regulator", _("SAMU regulator."), AuditMode.SAMU),
        consent="samu_allowed",
        refusal=_deny("samu_opted_out", _("The patient refused access by the SAMU regulator."))),
    StandingRule(
        Standing.BREAK_GLASS, Facts(_pro(), rows=_care_rows(CareAuthorisation.Kind.BREAK_GLASS)),
        _allow("break_glass", _("Emergency access (break-glass), limited in time."), AuditMode.BREAK_GLASS),
        consent="break_glass_allowed",
        refusal=_deny("break_glass_opted_out", _("The patient refused emergency access."))),
    StandingRule(
        Standing.EXPIRED_BREAK_GLASS,
        Facts(_pro(), rows=lambda at: CareAuthorisation.objects.filter(
            kind=CareAuthorisation.Kind.BREAK_GLASS, expires_at__lte=at)),
        _deny("break_glass_expired", _("The emergency access has expired."))),
)


def _no_standing(actor: Actor, record: Record) -> RecordAccess:
    """What an actor none of RECORD_RULES admits is told: why their kind of account has no access."""
    if actor.user is None:
        return RecordAccess(_deny("not_authenticated", _("You are not logged in.")))
    if not record.is_open:
        return RecordAccess(_deny("record_closed", _("This record is closed: it is kept for legal retention only.")))
    if actor.professional is not None:
        return RecordAccess(_deny("no_care_authorisation", _("No care authorisation for this patient.")),
                            Standing.PROFESSIONAL)
    if actor.counter_agent is not None:
        return RecordAccess(
            _deny("counter_agent_no_medical_access",
                  _("Counter agents create records and deposit papers; they never read medical content."),
                  AuditMode.COUNTER),
            Standing.COUNTER,
        )
    if actor.is_administrator:
        return RecordAccess(
            _deny("administrator_no_medical_access",
                  _("Administrators have no access to medical content."), AuditMode.ADMIN),
            Standing.ADMINISTRATOR,
        )
    return RecordAccess(_deny("no_relation", _("You have no access to this record.")))


def record_access(actor: Actor, record: Record, *, at: datetime | None = None) -> RecordAccess:
    """The actor's standing towards the record: the first question of every rule below.
    Cached per actor for "now" only; a question about another moment is always computed."""
    if at is not None:
        return _record_access(actor, record, at)
    cached = actor._access_cache.get(record.pk)
    if cached is None:
        cached = actor._access_cache[record.pk] = _record_access(actor, record, timezone.now())
    return cached


def _record_access(actor: Actor, record: Record, at: datetime, *, known: dict[str, bool] | None = None) -> RecordAccess:
    """RECORD_RULES for one record: the record's own fields are read without a query, the
    stored facts of all remaining rules in one query (or from `known`, loaded with the record
    by `with_standing_facts`), then the first rule that holds decides."""
    if actor.user is None or not record.is_open:
        return _no_standing(actor, record)
    stored = set(_fact_names(actor))
    for i, rule in enumerate(RECORD_RULES):
        holds = rule.facts.holds_on(actor, record)
        if holds is None:
            name = f"{STANDING_FACT}{i}"
            if name not in stored:
                continue
            if known is None:
                known = _stored_facts(actor, record, at)
            holds = known[name]
        if holds:
            return rule.answer(record)
    return _no_standing(actor, record)


def _fact_names(actor: Actor) -> list[str]:
    """The names of `_fact_expressions()`, without building them."""
    return [f"{STANDING_FACT}{i}" for i, rule in enumerate(RECORD_RULES)
            if rule.facts.rows is not None and rule.facts.who(actor) is not None]


def _stored_facts(actor: Actor, record: Record, at: datetime) -> dict[str, bool]:
    """The actor's stored facts on one record, by name, in one query: `_fact_expressions()`
    read on the record. Asked on every record page and API read, and building and compiling
    that query cost several times what PostgreSQL takes to answer it, so its SQL is compiled
    once per shape (`_FactsQuery`) and only the parameters are bound here."""
    db = Record.objects.all().db
    template, params = _template_for(actor, at, record.pk, db, whole_record=False)
    if template is None:  # a value the template was not proven for: compiled as ever
        expressions = _fact_expressions(actor, at)
        return (Record.objects.filter(pk=record.pk).values(**expressions).first()
                or dict.fromkeys(expressions, False))
    shape = template.shape
    with connections[db].cursor() as cursor:
        cursor.execute(template.sql, params)
        row = cursor.fetchone()
        names = [column.name for column in cursor.description]
    return dict(zip(names, row, strict=True)) if row is not None else {f"{STANDING_FACT}{i}": False for i, _ in shape}


def _template_for(actor: Actor, at: datetime, record_id: Any, db: str, *,
                  whole_record: bool) -> tuple[_FactsQuery | None, list]:
    """The template of the actor's shape and its parameters for this call (None: no template)."""
    who = {i: RECORD_RULES[i].facts.who(actor) for i in _FACT_RULES}
    shape = tuple((i, tuple(sorted(filter_))) for i, filter_ in who.items() if filter_ is not None)
    values = {(i, key): value for i, filter_ in who.items() if filter_ is not None for key, value in filter_.items()}
    if not _bindable(values, at, record_id):
        return None, []
    template = _FactsQuery.of(shape, db, whole_record=whole_record)
    if template is None:
        return None, []
    values.update(_moment_and_record(at, record_id))
    return template, [values[slot] if slot is not None else constant for slot, constant in template.params]


def record_with_standing_facts(actor: Actor, pk: Any) -> Record | None:
    """`with_standing_facts(actor, Record.objects.all()).filter(pk=pk).first()`: the record
    loaded with the actor's stored facts, for `remember_standing()`, from the same kind of
    template as `_stored_facts()` (every record page starts here)."""
    if actor.user is not None:
        db = Record.objects.all().db
        template, params = _template_for(actor, timezone.now(), pk, db, whole_record=True)
        if template is not None:
            return next(iter(Record.objects.using(db).raw(template.sql, params)), None)
    return with_standing_facts(actor, Record.objects.all()).filter(pk=pk).first()


# The rules whose facts are stored rows, and the values every such query reads besides the
# actor's own (`who`): the moment asked about, its day where the rows keep a date (a legal
# representation's end, `LegalRepresentativeQuerySet.active`) and the record.
_FACT_RULES = tuple(i for i, rule in enumerate(RECORD_RULES) if rule.facts.rows is not None)
_AT, _DAY, _RECORD = "at", "day", "record"


def _moment_and_record(at: datetime, record_id: int) -> dict[str, Any]:
    return {_AT: at, _DAY: timezone.localdate(at), _RECORD: record_id}


def _bindable(who: dict, at: datetime, record_id: Any) -> bool:
    """Values of the kinds a template was proven with (`_FactsQuery.of`): ids and an aware
    moment. Anything else (None, a naive datetime…) could change the SQL Django writes."""
    return (isinstance(at, datetime) and timezone.is_aware(at)
            and all(type(value) is int for value in (*who.values(), record_id)))


@dataclass(frozen=True)
class _FactsQuery:
    """The SQL of `_stored_facts()` for one shape: which rules' facts may be the actor's and by
    which fields (`who`'s keys), on one database. It holds no actor's value: every parameter
    is either a constant of the rules or a slot bound per call from the asking actor, the
    moment and the record. `of()` proves it by compiling the query twice with two different
    sets of impossible values: the SQL must be the same, and each parameter either the same
    constant in both or the slot's own value in each; otherwise there is no template."""

    shape: tuple
    sql: str
    params: tuple[tuple[Any, Any], ...]  # (slot, None) bound per call, or (None, constant)

    _cache: ClassVar[dict[tuple, _FactsQuery | None]] = {}

    @classmethod
    def of(cls, shape: tuple, db: str, *, whole_record: bool) -> _FactsQuery | None:
        """`whole_record`: the record's row with the facts (`record_with_standing_facts`), else
        the facts alone (`_stored_facts`)."""
        key = (shape, db, whole_record)
        if key not in cls._cache:
            cls._cache[key] = cls._prove(shape, db, whole_record)
        return cls._cache[key]

    @classmethod
    def _prove(cls, shape: tuple, db: str, whole_record: bool) -> _FactsQuery | None:
        one, another = cls._sentinels(shape, 0), cls._sentinels(shape, 1)
        sql, params = cls._compile(shape, db, one, whole_record)
        other_sql, other_params = cls._compile(shape, db, another, whole_record)
        if sql != other_sql or len(params) != len(other_params):
            return None
        slots = []
        for value, other in zip(params, other_params, strict=True):
            if type(value) is type(other) and value == other:
                slots.append((None, value))
                continue
            slot = next((s for s, v in one.items() if v == value and another[s] == other), None)
            if slot is None:
                return None
            slots.append((slot, None))
        return cls(shape, sql, tuple(slots))

    @staticmethod
    def _sentinels(shape: tuple, offset: int) -> dict:
        # Negative ids (no row has one), distinct per slot, and a moment no one asks about. The
        # two sets differ in every part of the moment (year to microsecond), so that a value
        # Django derives from it (its day…) differs too and cannot pass for a constant.
        slots = [(i, key) for i, keys in shape for key in keys]
        values = {slot: -2_000_000_000 - 2 * n - offset for n, slot in enumerate(slots)}
        n = 1 + offset
        return values | _moment_and_record(datetime(1900 + n, n, n, n, n, n, n, tzinfo=UTC), -1_000_000_000 - offset)

    @staticmethod
    def _compile(shape: tuple, db: str, values: dict, whole_record: bool) -> tuple[str, tuple]:
        expressions = {
            f"{STANDING_FACT}{i}": RECORD_RULES[i].facts.exists_for({key: values[(i, key)] for key in keys},
                                                                     values[_AT])
            for i, keys in shape
        }
        if whole_record:  # as `record_with_standing_facts` says it
            query = Record.objects.all().annotate(**expressions).filter(pk=values[_RECORD])
        else:
            query = Record.objects.filter(pk=values[_RECORD]).values(**expressions)
        query = (query if query.ordered else query.order_by("pk"))[:1]  # as `.first()` writes it
        sql, params = query.query.get_compiler(db).as_sql()
        return sql, tuple(params)


def _fact_expressions(actor: Actor, at: datetime) -> dict[str, Exists]:
    """The rules' stored facts (rows naming a record) that may be the actor's, as expressions
    on Record, by name."""
    expressions = {}
    for i, rule in enumerate(RECORD_RULES):
        if rule.facts.rows is None:
            continue
        expression = rule.facts.exists(actor, at)
        if expression is not False:
            expressions[f"{STANDING_FACT}{i}"] = expression
    return expressions


STANDING_FACT = "standing_fact_"


def with_standing_facts(actor: Actor, records: QuerySet[Record]) -> QuerySet[Record]:
    """`records` with the stored facts of the actor's standing loaded in the same query, for
    `remember_standing()`: loading a record and answering how the actor stands towards it is
    then one query, not two. The facts are read now."""
    if actor.user is None:
        return records
    return records.annotate(**_fact_expressions(actor, timezone.now()))


def remember_standing(actor: Actor, record: Record) -> None:
    """Answer the actor's standing towards a record loaded through `with_standing_facts()` from
    what was loaded with it, into the actor's cache (for "now", like `record_access`), and take
    the facts off the record: another actor asking about the same object asks its own."""
    known = {name: value for name, value in vars(record).items() if name.startswith(STANDING_FACT)}
    for name in known:
        delattr(record, name)
    if actor.user is None or record.pk in actor._access_cache:
        return
    if set(_fact_names(actor)) <= set(known):
        actor._access_cache[record.pk] = _record_access(actor, record, timezone.now(), known=known)


def records_open_to(actor: Actor, *, at: datetime | None = None,
                    standings: Iterable[Standing] | None = None) -> QuerySet[Record]:
    """The open records the actor may open, each annotated with `standing` (a Standing value):
    RECORD_RULES as one queryset, so a list cannot offer a record a read would refuse, nor miss
    one it would allow. `standings` keeps only those (e.g. FOLLOWING_STANDINGS)."""
    at = at or timezone.now()
    if actor.user is None:
        return Record.objects.none()
    whens, admitting = [], Q(pk__in=[])
    for rule in RECORD_RULES:
        q = rule.facts.q(actor, at)
        if q is None:
            continue
        allowed = rule.decision.allowed and (standings is None or rule.standing in standings)
        whens.append(When(q & rule.consent_q(), then=Value(rule.standing.value if allowed else "")))
        whens.append(When(q, then=Value("")))  # the facts hold, the patient refused: the rule ends here
        if allowed:
            admitting |= q
    # `admitting` narrows the scan to records where some admitting fact holds; the Case, in the
    # rules' order, keeps the first rule that holds, so an earlier block or refusal wins.
    return (Record.objects.filter(admitting, state=Record.State.OPEN)
            .annotate(standing=Case(*whens, default=Value(""), output_field=CharField()))
            .exclude(standing=""))


def standing_rule(standing: Standing) -> StandingRule:
    return next(rule for rule in RECORD_RULES if rule.standing is standing)


def holds(actor: Actor, record: Record, standing: Standing, *, at: datetime | None = None) -> bool:
    """Whether the facts of one standing's rule hold for the actor on the record, whatever an
    earlier rule decides (e.g. "is this professional blocked?" before any opening)."""
    facts = standing_rule(standing).facts
    answer = facts.holds_on(actor, record)
    if answer is not None:
        return answer
    expression = facts.exists(actor, at or timezone.now())
    if expression is False:
        return False
    return Record.objects.filter(pk=record.pk).filter(expression).exists()


def standing_rows(record: Record, *standings: Standing, at: datetime | None = None) -> QuerySet:
    """The stored facts giving these standings on this record now (care authorisations,
    designations, blocks…; standings stored in the same table, in one query): who stands there,
    read from the same definitions as the two answers above."""
    at = at or timezone.now()
    combined = None
    for standing in standings:
        facts = standing_rule(standing).facts
        rows = facts.rows(at).filter(**{facts.key: record.pk})
        combined = rows if combined is None else combined | rows
    return combined


# The professionals who stand on a record through a stored fact about them (not the SAMU regulator,
# whose standing is their role, nor a care team's members, who stand through a colleague's row).
PROFESSIONAL_ROWS = (Standing.BLOCKED, Standing.TREATING_DOCTOR, Standing.AUTHORISED, Standing.DECLARED_CARE,
                     Standing.BREAK_GLASS)


def professionals_standing_on(record: Record, *, at: datetime | None = None) -> Q:
    """A filter on Professional: everyone a stored fact puts on the record now, refused
    (blocked) or not."""
    q = Q(pk__in=[])
    for standing in PROFESSIONAL_ROWS:
        q |= Q(pk__in=standing_rows(record, standing, at=at).values("professional_id"))
    return q


# The counter's standing is administrative only: the organisation that onboarded the person (one of
# its agents created the record, or holds or held a deposit right on it) sees its status and acts on
# it; nothing medical. Read two ways like the rules above (`_onboarded_by_organisation`, `records_onboarded_page`).
def _organisation(actor: Actor):
    return actor.counter_agent.organisation_id if actor.counter_agent is not None else None


ONBOARDING_FACTS: tuple[Facts, ...] = (
    Facts(lambda a: {"created_by__counter_agent__organisation_id": _organisation(a)} if _organisation(a) else None,
          rows=lambda at: Record.objects.all(), key="pk"),
    Facts(lambda a: {"agent__organisation_id": _organisation(a)} if _organisation(a) else None,
          rows=lambda at: DepositRight.objects.all()),
)


def records_onboarded_q(actor: Actor, *, at: datetime | None = None) -> Q:
    """The records the actor's organisation onboarded, as a filter on Record."""
    at = at or timezone.now()
    # One `pk IN (… UNION ALL …)`: each branch an index lookup from the organisation. The same
    # branches OR-ed made PostgreSQL filter every record of the table (the scale harness's plans).
    ids = [part for facts in ONBOARDING_FACTS if (part := facts.ids(actor, at)) is not None]
    if not ids:
        return Q(pk__in=[])
    return Q(pk__in=ids[0].union(*ids[1:], all=True) if len(ids) > 1 else ids[0])


class Clause(StrEnum):
    """The clauses of the document rule, in the order `DocumentScope` reads them: which one
    refused a document, or admitted it. Carried by the decision (`Decision.clause`) so that an
    explanation ("hidden from professionals", "not for their profession") never re-derives it."""

    NO_STANDING = "no_standing"  # refused: the record is not open to the actor
    WITHHELD = "withheld_from_patient"  # refused: a result not announced to the patient yet
    HIDDEN_FROM_REPRESENTATIVES = "hidden_from_representatives"  # refused: a minor's confidential care
    AUTHOR = "author"  # admitted: a professional always reads their own documents
    MATRIX = "profession_matrix"  # refused: the profession may not read this type
    HIDDEN_FROM_PROFESSIONALS = "hidden_from_professionals"  # refused: hidden by the patient
    VISIBLE = "visible"  # admitted

    @property
    def admits(self) -> bool:
        return self in (Clause.AUTHOR, Clause.VISIBLE)


@dataclass(frozen=True)
class DocumentScope:
    """The document rule for one actor on one record, as data. `q()` filters a queryset and
    `clause()` answers for one document (with the clause that decided); both read the same
    fields, so a list never shows what a read would refuse (tests/test_policy_agreement.py
    checks the two agree on every case)."""

    at: datetime
    types: frozenset[str] | None = None  # None: every type (no matrix)
    sees_hidden: bool = False
    sees_withheld: bool = True
    sees_hidden_from_representatives: bool = True
    author_id: int | None = None  # a professional always sees their own documents
    nothing: bool = False

    def q(self) -> Q:
        if self.nothing:
            return Q(pk__in=[])
        q = Q()
        if not self.sees_withheld:
            q &= Q(withheld_from_patient_until__isnull=True) | Q(withheld_from_patient_until__lte=self.at)
        if not self.sees_hidden_from_representatives:
            q &= Q(hidden_from_representatives=False)
        professional = Q()
        if self.types is not None:
            professional &= Q(doc_type__in=sorted(self.types))
        if not self.sees_hidden:
            professional &= Q(hidden_from_professionals=False)
        if self.author_id is not None and professional:
            professional |= Q(author_professional_id=self.author_id)
        return q & professional

    def clause(self, doc: Document) -> Clause:
        """The first clause that decides for this document, in the order of `q()`."""
        if self.nothing:
            return Clause.NO_STANDING
        if not self.sees_withheld and doc.is_withheld_from_patient(self.at):
            return Clause.WITHHELD
        if not self.sees_hidden_from_representatives and doc.hidden_from_representatives:
            return Clause.HIDDEN_FROM_REPRESENTATIVES
        if self.author_id is not None and doc.author_professional_id == self.author_id:
            return Clause.AUTHOR
        if self.types is not None and doc.doc_type not in self.types:
            return Clause.MATRIX
        if not self.sees_hidden and doc.hidden_from_professionals:
            return Clause.HIDDEN_FROM_PROFESSIONALS
        return Clause.VISIBLE

    def matches(self, doc: Document) -> bool:
        return self.clause(doc).admits


def document_scope(actor: Actor, record: Record, *, at: datetime | None = None) -> DocumentScope:
    """Which of the record's documents the actor may read."""
    return _document_scope_of(actor, record_access(actor, record, at=at), at)


def _document_scope_of(actor: Actor, access: RecordAccess, at: datetime | None) -> DocumentScope:
    """`document_scope` from a standing already answered: a question about another moment than
    now is not cached, and `decide()` would otherwise ask the database for it twice."""
    # The matrix is read only for a standing it governs (not the patient's side nor the médecin
    # traitant's): a query the others never need.
    types = None if access.bypasses_matrix or access.standing.acts_for_patient else actor.matrix_types
    return _document_scope_for(access, at or timezone.now(), types=types,
                               author_id=actor.professional.pk if actor.professional else None)


def _document_scope_for(access: RecordAccess, at: datetime, *, types: frozenset[str] | None,
                        author_id: int | None) -> DocumentScope:
    """The documents a standing reads: `types`, the profession's matrix cells (None: any type)."""
    if not access.decision.allowed:
        return DocumentScope(at=at, nothing=True)
    if access.standing is Standing.HOLDER:
        # Everything, hidden documents included, except results not yet announced.
        return DocumentScope(at=at, sees_hidden=True, sees_withheld=False)
    if access.standing is Standing.REPRESENTATIVE:
        return DocumentScope(at=at, sees_hidden=True, sees_withheld=False, sees_hidden_from_representatives=False)
    return DocumentScope(
        at=at,
        types=None if access.bypasses_matrix else types,
        sees_hidden=access.sees_hidden,
        author_id=author_id,
    )


def decide(
    actor: Actor,
    action: str,
    obj: Record | Document | Synthesis | CounterReset | None = None,
    *,
    doc_type: str | None = None,
    at: datetime | None = None,
) -> Decision:
    """Answer one question, without side effects. Deny by default: an action no table below
    names is refused with `no_rule`. The object says which table (a document, a counter reset,
    a record or its synthesis); the action says which rule function of it answers."""
    # `at` stays None for "now", so the actor's cached standing is used.
    if action == Action.CREATE_RECORD:
        return _decide_create(actor)
    if obj is None:
        return _deny("no_object", _("Nothing to act on."))
    if isinstance(obj, Document):
        return _decide_document(actor, action, obj, at)
    if isinstance(obj, CounterReset):
        return _decide_reset_approval(actor, action, obj, at or timezone.now())
    record = obj.record if isinstance(obj, Synthesis) else obj
    return RECORD_ACTIONS.get(action, _standing_rule(_no_rule))(actor, action, record, doc_type, at)


# A rule function of the record table: (actor, action, record, doc_type, at) -> Decision.
RecordActionRule = Callable[[Actor, str, Record, "str | None", "datetime | None"], Decision]
# A check made once the actor's standing allows opening the record: (actor, action, access, doc_type).
StandingCheck = Callable[[Actor, str, RecordAccess, "str | None"], Decision]


def _standing_rule(check: StandingCheck) -> RecordActionRule:
    """The record's standing first (RECORD_RULES: a refusal there is the answer), then `check`."""
    def rule(actor: Actor, action: str, record: Record, doc_type: str | None, at: datetime | None) -> Decision:
        access = record_access(actor, record, at=at)
        if not access.decision.allowed:
            return access.decision
        return check(actor, action, access, doc_type)
    return rule


def _opens_record(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    return access.decision


# The two checks below answer in both tables: their last argument (a record action's doc_type,
# a document action's document) is not read.
def _holder_only(actor: Actor, action: str, access: RecordAccess, _subject: object) -> Decision:
    """The patient's side: the holder or a legal representative acting for them."""
    if access.standing.acts_for_patient:
        return access.decision
    return _deny("holder_only", _("Only the patient or their legal representative can do this."), access.mode)


# The synthesis and the reimbursement history follow the matrix cells of their document types.
_MATRIX_TYPE = {
    Action.VIEW_SYNTHESIS: DocumentType.RECORD_SYNTHESIS,
    Action.VIEW_REIMBURSEMENTS: DocumentType.REIMBURSEMENT_DATA,
}


def _matrix_cell(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    if access.bypasses_matrix or _MATRIX_TYPE[action] in actor.matrix_types:
        return access.decision
    return _deny("matrix_refuses", _("Your profession may not read this kind of information."), access.mode)


def _with_patient(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    if access.manages_with_patient:
        return access.decision
    return _deny("holder_or_treating_doctor_only",
                 _("Only the patient and their médecin traitant can do this."), access.mode)


def _holder_themselves(actor: Actor, action: str, access: RecordAccess, _subject: object) -> Decision:
    """What the patient keeps from their legal representatives (a document hidden from them,
    whether they hear of the record's ordinary life) is decided by the patient, never by a
    representative acting for them (003: "le mineur pourra continuer à cacher un certain nombre
    d'informations à ses ayants droit"): a representative acts for the patient in everything
    else, never in this."""
    if access.standing is Standing.HOLDER:
        return access.decision
    return _deny("holder_themselves_only", _("Only the patient themselves can do this."), access.mode)


def _treating_doctor_only(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    if access.standing is Standing.TREATING_DOCTOR:
        return access.decision
    return _deny("treating_doctor_only", _("Only the médecin traitant writes the synthesis."), access.mode)


def _adds_document(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    if access.standing.acts_for_patient:
        if doc_type is not None and doc_type in _PERSONAL_TYPES:
            return access.decision
        return _deny("patient_adds_to_personal_space",
                     _("Patients add documents to their personal space."), access.mode)
    if not access.may_write:
        return _deny("emergency_access_is_read_only", _("Emergency access only reads the record."), access.mode)
    if doc_type in _PERSONAL_TYPES:
        return _deny("personal_space_is_the_patients", _("The personal space is the patient's."), access.mode)
    return access.decision


def _patient_attaches_nir(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    if access.standing.acts_for_patient:
        return access.decision
    return _deny("holder_or_onboarding_counter_only",
                 _("Only the patient or the counter that created the record can do this."), access.mode)


def _no_rule(actor: Actor, action: str, access: RecordAccess, doc_type: str | None) -> Decision:
    return _deny("no_rule", _("No rule allows this."), access.mode)


def _counter(actor: Actor, action: str, record: Record, doc_type: str | None, at: datetime | None) -> Decision:
    return _decide_counter(actor, action, record, at or timezone.now())


def _counter_or(other: RecordActionRule) -> RecordActionRule:
    """The counter's channel when a counter agent asks; `other` for everyone else."""
    def rule(actor: Actor, action: str, record: Record, doc_type: str | None, at: datetime | None) -> Decision:
        return (_counter if actor.counter_agent is not None else other)(actor, action, record, doc_type, at)
    return rule


def _opening(actor: Actor, action: str, record: Record, doc_type: str | None, at: datetime | None) -> Decision:
    return _decide_opening(actor, action, record, at or timezone.now())


def _find(actor: Actor, action: str, record: Record, doc_type: str | None, at: datetime | None) -> Decision:
    return _decide_find(actor, record, at)


_HOLDER_ONLY = _standing_rule(_holder_only)
_MATRIX_CELL = _standing_rule(_matrix_cell)
_WITH_PATIENT = _standing_rule(_with_patient)
_OPENS_RECORD = _standing_rule(_opens_record)

# Every question about a record (or its synthesis), and the rule function that answers it. An
# action missing here is refused (`no_rule`) once the actor's standing is known.
RECORD_ACTIONS: dict[str, RecordActionRule] = {
    Action.VIEW_RECORD: _OPENS_RECORD,
    Action.VIEW_PERSONAL_DATA: _OPENS_RECORD,
    Action.EDIT_PERSONAL_DATA: _HOLDER_ONLY,
    Action.MANAGE_ACCESS: _HOLDER_ONLY,
    Action.NOTIFY_REPRESENTATIVES: _standing_rule(_holder_themselves),
    Action.CLOSE_RECORD: _HOLDER_ONLY,
    Action.EXPORT_RECORD: _HOLDER_ONLY,
    Action.PRINT_PATIENT_SUMMARY: _counter_or(_HOLDER_ONLY),
    Action.VIEW_SYNTHESIS: _MATRIX_CELL,
    Action.VIEW_REIMBURSEMENTS: _MATRIX_CELL,
    Action.VIEW_ACCESS_HISTORY: _WITH_PATIENT,
    Action.BLOCK_PROFESSIONAL: _WITH_PATIENT,
    Action.EDIT_SYNTHESIS: _standing_rule(_treating_doctor_only),
    Action.ADD_DOCUMENT: _standing_rule(_adds_document),
    Action.ATTACH_NIR: _counter_or(_standing_rule(_patient_attaches_nir)),
    Action.DEPOSIT_DOCUMENT: _counter,
    Action.VIEW_ADMIN_STATUS: _counter,
    Action.RESET_CREDENTIALS: _counter,
    Action.BREAK_GLASS: _opening,
    Action.DECLARE_CARE: _opening,
    Action.FIND_RECORD: _find,
}


_PERSONAL_TYPES = frozenset({DocumentType.ADVANCE_DIRECTIVES, DocumentType.PATIENT_DOCUMENT})


def _decide_document(actor: Actor, action: str, doc: Document, at: datetime | None) -> Decision:
    """The record's standing, then the document rule (`document_scope`: a document the actor
    may not read is not found, whatever the action), then DOCUMENT_ACTIONS."""
    record = doc.record
    access = record_access(actor, record, at=at)
    if not access.decision.allowed:
        return access.decision
    clause = _document_scope_of(actor, access, at).clause(doc)
    if not clause.admits:
        return _deny("document_not_visible", _("This document is not visible to you."), access.mode, clause=clause)
    decision = DOCUMENT_ACTIONS.get(action, _document_no_rule)(actor, action, access, doc)
    return replace(decision, clause=clause) if decision.allowed else decision


DocumentActionRule = Callable[[Actor, str, RecordAccess, Document], Decision]


def _reads_document(actor: Actor, action: str, access: RecordAccess, doc: Document) -> Decision:
    return access.decision


# Replacing and withdrawing act on the current, latest version only.
_CHANGES_VERSION = frozenset({Action.REPLACE_DOCUMENT, Action.WITHDRAW_DOCUMENT})


def _author_changes_document(actor: Actor, action: str, access: RecordAccess, doc: Document) -> Decision:
    is_author = actor.professional is not None and doc.author_professional_id == actor.professional.pk
    if not (is_author and access.may_write):
        return _deny("author_only", _("Only the document's author can do this."), access.mode)
    if action in _CHANGES_VERSION and doc.status != Document.Status.CURRENT:
        return _deny("archived_document_is_frozen", _("An archived document cannot be replaced."), access.mode)
    if action in _CHANGES_VERSION and hasattr(doc, "replaced_by"):
        return _deny("already_replaced", _("This version has already been replaced."), access.mode)
    return access.decision


def _document_no_rule(actor: Actor, action: str, access: RecordAccess, doc: Document) -> Decision:
    return _deny("no_rule", _("No rule allows this."), access.mode)


# Every question about a document the actor may read, and the rule function that answers it.
DOCUMENT_ACTIONS: dict[str, DocumentActionRule] = {
    Action.VIEW_DOCUMENT: _reads_document,
    Action.HIDE_DOCUMENT: _holder_only,
    Action.HIDE_FROM_REPRESENTATIVES: _holder_themselves,
    Action.ARCHIVE_DOCUMENT: _holder_only,
    Action.REPLACE_DOCUMENT: _author_changes_document,
    Action.RELEASE_DOCUMENT: _author_changes_document,
    Action.WITHDRAW_DOCUMENT: _author_changes_document,
}


def _decide_create(actor: Actor) -> Decision:
    if actor.counter_agent is not None:
        return _allow("counter_agent_creates", _("Counter agents create records with the person."), AuditMode.COUNTER)
    if actor.professional is not None:
        return _allow("professional_creates", _("Health professionals create records with the patient."),
                      AuditMode.NORMAL)
    if actor.is_administrator:
        return _deny("administrator_no_medical_access", _("Administrators have no access to medical content."),
                     AuditMode.ADMIN)
    return _deny("no_rule", _("No rule allows this."))


def _decide_counter(actor: Actor, action: str, record: Record, at: datetime) -> Decision:
    agent = actor.counter_agent
    if agent is None:
        return _deny("counter_agent_only", _("This is the counter agents' channel."))
    if action == Action.VIEW_ADMIN_STATUS:
        if _onboarded_by_organisation(actor, record):
            return _allow("counter_agent_onboarded", _("Your organisation onboarded this record."), AuditMode.COUNTER)
        return _deny("not_onboarded_here", _("Your organisation did not onboard this record."), AuditMode.COUNTER)
    if not record.is_open:
        return _deny("record_closed", _("This record is closed: it is kept for legal retention only."))
    if action == Action.ATTACH_NIR:
        # The counter that onboarded a person without a carte vitale adds the NIR once it
        # exists: an administrative act, even if the patient withdrew the deposit right.
        if _onboarded_by_organisation(actor, record):
            return _allow("counter_agent_onboarded", _("Your organisation onboarded this record."), AuditMode.COUNTER)
        return _deny("not_onboarded_here", _("Your organisation did not onboard this record."), AuditMode.COUNTER)
    if action == Action.PRINT_PATIENT_SUMMARY:
        # The counter that onboarded the person prints their summary and hands it over, for
        # someone with no printer, or no phone to log in with: the summary goes out as a PDF
        # download, never a page, and the read is in the person's access history. Any other
        # counter does not know them; and once the person withdrew the organisation's deposit
        # right, it no longer handles anything medical of theirs (unlike the NIR above).
        if not _onboarded_by_organisation(actor, record):
            return _deny("not_onboarded_here", _("Your organisation did not onboard this record."), AuditMode.COUNTER)
        rights = DepositRight.objects.filter(record=record, agent__organisation_id=agent.organisation_id)
        if rights.exists() and not rights.active(at).exists():
            return _deny("deposit_right_withdrawn", _("The patient withdrew your organisation's deposit right."),
                         AuditMode.COUNTER)
        return _allow("counter_prints_summary", _("Your organisation onboarded this person: it prints their "
                                                  "patient summary for them."), AuditMode.COUNTER)
    if action == Action.RESET_CREDENTIALS:
        # Any counter may start a reset (people go to the counter nearest to them), but the
        # standing differs: the organisation that onboarded the person knows them and holds
        # their paper file; any other counter must have the person prove they are present
        # (`counter_reset_requirements`). Nothing medical is read either way.
        if _onboarded_by_organisation(actor, record):
            return _allow("counter_reset_onboarding_organisation",
                          _("Your organisation onboarded this record: it resets the credentials after checking "
                            "the person's identity."), AuditMode.COUNTER)
        return _allow("counter_reset_person_present",
                      _("Another counter resets the credentials only once the person proved they are present."),
                      AuditMode.COUNTER)
    # The deposit right is the organisation's (issue 6): any agent of the organisation whose
    # agent onboarded the person deposits while one of its rights is active; the patient's
    # withdrawal ends them all (`deposit_right_withdraw`).
    rights = DepositRight.objects.filter(record=record, agent__organisation_id=agent.organisation_id)
    if rights.active(at).exists():
        return _allow("deposit_right", _("Deposit into a record your organisation onboarded."), AuditMode.COUNTER)
    if rights.exists():
        return _deny("deposit_right_withdrawn", _("The patient withdrew your organisation's deposit right."),
                     AuditMode.COUNTER)
    return _deny("no_deposit_right", _("Your organisation did not onboard this record."), AuditMode.COUNTER)


@dataclass(frozen=True)
class ResetRequirements:
    """What a counter reset waits for before it changes anything on the account."""

    presence_code: bool  # a code to the account's current phone or e-mail, read back by the person
    contact_code: bool  # a code to the new phone or e-mail, read back by the person
    approval: bool  # a second agent of the organisation approves

    @property
    def immediate(self) -> bool:
        return not (self.presence_code or self.contact_code or self.approval)


def counter_reset_requirements(
    decision: Decision, *, has_channel: bool, channel_lost: bool, new_contact: bool
) -> ResetRequirements:
    """The proofs a counter reset needs, from the standing `decide(RESET_CREDENTIALS)` gave:

    - the onboarding organisation resets on its own agent's identity check;
    - any other counter needs the person present: the code sent to the account's current phone
      or e-mail read back in front of the agent; when the account has none, or the person lost
      it, a second agent of the organisation approves instead;
    - a new phone or e-mail takes effect only once the code sent to it is read back (it is the
      person's, and it is here), and the former channel is told;
    - an account with no channel at all gets its first one only with a second agent's approval
      (a letter is posted too): a lone agent typing their own number never gets a working login.
    """
    onboarding = decision.rule == "counter_reset_onboarding_organisation"
    presence_by_code = not onboarding and has_channel and not channel_lost
    approval = (not onboarding and not presence_by_code) or (new_contact and not has_channel)
    return ResetRequirements(presence_code=presence_by_code, contact_code=new_contact, approval=approval)


def _decide_reset_approval(actor: Actor, action: str, reset: CounterReset, at: datetime) -> Decision:
    """Four eyes: a counter agent of the organisation whose agent asked approves, never the one
    who asked; only a pending, unexpired request that needs it; only an open record."""
    if action != Action.APPROVE_CREDENTIALS_RESET:
        return _deny("no_rule", _("No rule allows this."))
    agent = actor.counter_agent
    if agent is None:
        return _deny("counter_agent_only", _("This is the counter agents' channel."))
    if agent.organisation_id != reset.organisation_id:
        return _deny("not_this_organisation", _("Only an agent of the organisation that took the request approves "
                                                "it."), AuditMode.COUNTER)
    if actor.user.pk == reset.requested_by_id:
        return _deny("approver_is_requester", _("A second agent must approve: you asked for this reset."),
                     AuditMode.COUNTER)
    if not reset.record.is_open:
        return _deny("record_closed", _("This record is closed: it is kept for legal retention only."))
    if reset.state != CounterReset.State.PENDING or reset.is_expired(at) or not reset.approval_required \
            or reset.approved_at is not None:
        return _deny("reset_not_pending", _("This request is no longer waiting for an approval."), AuditMode.COUNTER)
    return _allow("counter_reset_second_agent", _("A second agent of the organisation approves the reset."),
                  AuditMode.COUNTER)


def _onboarded_by_organisation(actor: Actor, record: Record) -> bool:
    """The record was created by an agent of the organisation, or one of its agents holds (or
    held) a deposit right on it: "an organisation's agents see the records it onboarded"
    (ONBOARDING_FACTS, the same filter as the counter's list)."""
    return Record.objects.filter(records_onboarded_q(actor), pk=record.pk).exists()


def _decide_opening(actor: Actor, action: str, record: Record, at: datetime) -> Decision:
    """Break-glass and declared care open a record to a professional who has no access yet."""
    pro = actor.professional
    if pro is None:
        return _deny("professionals_only", _("Only health professionals can do this."))
    if not record.is_open:
        return _deny("record_closed", _("This record is closed: it is kept for legal retention only."))
    if holds(actor, record, Standing.BLOCKED, at=at):
        return standing_rule(Standing.BLOCKED).decision
    emergency = standing_rule(Standing.BREAK_GLASS)
    if action == Action.BREAK_GLASS and not emergency.consents(record):
        return emergency.refusal
    mode = AuditMode.BREAK_GLASS if action == Action.BREAK_GLASS else AuditMode.NORMAL
    return _allow(action, _("Any professional may do this unless blocked or refused."), mode)


def _decide_find(actor: Actor, record: Record, at: datetime | None) -> Decision:
    """A professional's search that finds a record: the answer says only that it exists and how
    they may open it, nothing medical. Any professional may search (a blocked one learns only
    that it cannot be opened); the search is logged on the record because finding a record is a
    probe of its existence, which the patient may want to know about. The mode is the searcher's
    standing ("none" for a professional with no access yet). A closed record is not found."""
    if actor.professional is None:
        return _deny("professionals_only", _("Only health professionals can do this."))
    if not record.is_open:
        return _deny("record_closed", _("This record is closed: it is kept for legal retention only."))
    standing = record_access(actor, record, at=at)
    return _allow("professional_search", _("Health professionals look a record up to open it."),
                  standing.mode if standing.decision.allowed else AuditMode.NONE)


PORTALS = ("patient", "pro", "counter")


def portal_allowed(actor: Actor, portal: str) -> Decision:
    """Which portal an account may enter: one of PORTALS. A coarse gate in
    front of the per-record rules above, so the portals never test roles themselves."""
    if actor.user is None:
        return _deny("not_authenticated", _("You are not logged in."))
    if portal == "pro" and actor.professional is not None:
        return _allow("professional", _("Health professional."), AuditMode.NORMAL)
    if portal == "counter" and actor.counter_agent is not None:
        return _allow("counter_agent", _("Counter agent."), AuditMode.COUNTER)
    if portal == "patient" and (actor.own_record_id is not None or actor.represented_record_ids):
        return _allow("holder_or_representative", _("Patient or legal representative."), AuditMode.PATIENT)
    return _deny("wrong_portal", _("This space is not for your account."))


@dataclass(frozen=True)
class Viewer:
    """One line of "who can see this document, and why"."""

    label: str
    role: str
    decision: Decision
    user_id: int | None = None
    display: str = ""  # the label in the reader's language; empty: the label says it


def who_may_see(document: Document, *, at: datetime | None = None) -> list[Viewer]:
    """Everyone who may read the document now, and everyone with a standing on the record who
    may not, each with the rule that decides. Asked through `decide()` and RECORD_RULES, so it
    cannot disagree with what a read does."""
    at = at or timezone.now()
    record = document.record
    people: list[tuple[User, str]] = []
    if record.holder is not None:
        people.append((record.holder, "holder"))
    people += [(r.user, "representative")
               for r in standing_rows(record, Standing.REPRESENTATIVE, at=at).select_related("user")]
    standing = professionals_standing_on(record, at=at)
    if document.author_professional_id:
        standing |= Q(pk=document.author_professional_id)
    people += [
        (u, "professional")
        for u in User.objects.filter(professional__in=Professional.objects.filter(standing))
        .select_related("professional")
    ]
    viewers = []
    for user, role in people:
        actor = Actor(user)
        viewers.append(Viewer(actor.label, role, decide(actor, Action.VIEW_DOCUMENT, document, at=at), user.pk,
                              display=actor.display))
    viewers += _emergency_viewers(document, record, at)
    return viewers


# The standings anyone may come to hold on the record without a stored fact naming them yet, as the
# patient sees them: any professional through a break-glass, the SAMU regulator.
EMERGENCY_STANDINGS = (
    (Standing.BREAK_GLASS, _("Any health professional, in an emergency")),
    (Standing.SAMU, _("The SAMU regulator (centre 15)")),
)


def _emergency_viewers(document: Document, record: Record, at: datetime) -> Iterable[Viewer]:
    """The two emergency modes, described for any professional who might use them: the rule's
    answer on this record (the patient's consent) and the document rule for that standing, for a
    profession whose matrix lets it read the document's type."""
    if not record.is_open:
        return []
    rows = []
    for standing, label in EMERGENCY_STANDINGS:
        access = standing_rule(standing).answer(record)
        clause = _document_scope_for(access, at, types=None, author_id=None).clause(document)
        if not access.decision.allowed:
            decision = _deny(access.decision.rule, _("You refused this access."), access.mode)
        elif not clause.admits:
            decision = _deny("document_not_visible", _("Hidden documents stay hidden in an emergency."), access.mode,
                             clause=clause)
        else:
            decision = _allow(access.decision.rule, _("If their profession may read this type of document."),
                              access.mode, clause=clause)
        rows.append(Viewer(str(label), standing.value, decision))
    return rows
