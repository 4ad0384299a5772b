"""What the clinician portal reads (DOMAIN.md §3, clinician screens): finding a record and how
the professional may open it, and the one-screen patient view.

Finding a record says only whether it exists and how this professional may open it now, never
anything medical; a search that finds a record is logged on it (`Action.FIND_RECORD`), one that
finds nothing is one `dmp.security` line with ids only. The patient screen asks the policy for
each part it shows (personal data, synthesis, reimbursements, documents through
`documents_visible_to`) and loads everything in a fixed number of queries, whatever the size
of the record.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connections
from django.db.models import Count, Max
from django.http import Http404
from django.utils import timezone

from .. import access_log, loinc
from ..accounts.lockout import record_search_allowed
from ..models import (
    CareAuthorisation,
    Document,
    DocumentType,
    EmergencyContact,
    Organisation,
    PersonalProfile,
    Record,
    SelfDeclaredItem,
    Space,
    Synthesis,
    SynthesisProblem,
    Vaccination,
)
from ..models.record import normalise_nir
from ..policy import Action, Actor, Decision, RecordAccess, Standing, decide, record_access
from ..results_relevance import analyte_groups
from ..services.access import _fold  # the same folding as the break-glass identity check
from ..trend import trend_svg
from .patient_data import (
    declared_allergies,
    dispensed_medicines_read,
    emergency_contacts_of,
    personal_profile,
    vaccinations_of,
)
from .personal import declared_in_order
from .records import documents_visible_to
from .results import ResultSeries, results_that_matter_for

security_log = logging.getLogger("dmp.security")

PROVISIONAL_ID_RE = re.compile(r"^P[A-Z0-9]{11}$")

# The patient screen: how much of each list it shows (the rest is one click away).
PER_SPACE = 3
MAX_MEDICINES = 40
MAX_VACCINATIONS = 30
MAX_CONTACTS = 5
MAX_DECLARED_ALLERGIES = 15
MAX_RESULTS = 8
ABNORMAL_WINDOW = timedelta(days=92)  # "an abnormal value of the last three months"


# --- Opening a record ----------------------------------------------------------------------------

@dataclass(frozen=True)
class OpeningOptions:
    """How the professional may open a record now. Nothing medical, and no reason for a refusal
    beyond "not possible": a blocked professional is told no more than that."""

    record_pk: int
    open_now: Decision | None = None  # the standing that opens it already (its reason is shown)
    standing: Standing = Standing.NONE  # the actor's standing now
    declare: bool = False  # "the patient agrees", at a consultation
    team_facility: Organisation | None = None  # the care facility the declaration may be shared with
    break_glass: bool = False
    is_samu_regulator: bool = False
    emergency_refused: bool = False  # emergency access not possible (whatever the reason)

    @property
    def samu(self) -> bool:
        return self.open_now is not None and self.standing is Standing.SAMU

    @property
    def nothing(self) -> bool:
        return self.open_now is None and not self.declare and not self.break_glass


def opening_options(actor: Actor, record: Record) -> OpeningOptions:
    """The ways this professional may open `record` now, as the policy answers them (`decide`,
    no audit entry: the caller logs the search or the opening)."""
    access = record_access(actor, record)
    pro = actor.professional
    if pro is None:
        return OpeningOptions(record.pk)
    open_now = access.decision if access.decision.allowed else None
    # Declaring care is what a professional without a care authorisation does at a consultation
    # (also after an emergency opening, once the patient can agree).
    declare = not access.standing.in_care and decide(actor, Action.DECLARE_CARE, record).allowed
    facility = pro.facility if pro.facility_id is not None else None
    team_facility = facility if declare and facility and facility.kind == Organisation.Kind.FACILITY else None
    # A SAMU regulator's emergency mode is the SAMU one: the policy reads it before any
    # break-glass, so a break-glass would not open a record that refused the SAMU.
    break_glass = (open_now is None and not pro.is_samu_regulator
                   and decide(actor, Action.BREAK_GLASS, record).allowed)
    return OpeningOptions(
        record.pk, open_now=open_now, standing=access.standing, declare=declare, team_facility=team_facility,
        break_glass=break_glass, is_samu_regulator=pro.is_samu_regulator,
        emergency_refused=open_now is None and not break_glass,
    )


def record_for_opening(actor: Actor, pk: int, action: str) -> Record:
    """Record `pk`, for a professional about to open it (`Action.DECLARE_CARE` or
    `Action.BREAK_GLASS`): Http404, logged, if it is missing or the policy refuses; nothing is
    logged when it may, since the service asks the policy again and logs the opening itself."""
    record = Record.objects.filter(pk=pk).first()
    decision = decide(actor, action, record)
    if not decision.allowed:
        access_log.refusal(actor, action, decision, record, record=record, object_id=f"record:{pk}")
        raise Http404
    return record


def opening_options_for(actor: Actor, pk: int) -> OpeningOptions:
    """The options page of record `pk`: Http404 (logged) if it is missing or cannot be opened
    by this professional in any way (blocked, closed), like any refusal."""
    record = Record.objects.filter(pk=pk).first()
    options = opening_options(actor, record) if record is not None else None
    if options is None or options.nothing:
        decision = decide(actor, Action.VIEW_RECORD, record)
        access_log.read(actor, Action.VIEW_RECORD, decision, record, record=record, object_id=f"record:{pk}")
        raise Http404
    return options


@dataclass(frozen=True)
class RecordLookup:
    """The answer to a search: how many open records match (0, 1, or several homonyms born the
    same day) and, for exactly one, how this professional may open it."""

    matches: int = 0
    options: OpeningOptions | None = None
    limited: bool = False  # too many searches in the last hour: nothing was looked up


def record_lookup(actor: Actor, *, identifier: str = "", family_name: str = "", given_names: str = "",
                  birth_date: date | None = None) -> RecordLookup:
    """Find an open record by NIR or provisional identifier (validated by the caller), or by
    family name, given name and date of birth (exact, whatever the accents and the case). Only
    for professionals (the caller is the pro portal)."""
    if _over_search_limit(actor):
        security_log.warning("record search limit reached by user %s", actor.user.pk)
        return RecordLookup(limited=True)
    found = _find_open_records(actor, identifier=identifier, family_name=family_name, given_names=given_names,
                               birth_date=birth_date)
    if not found:
        return RecordLookup()
    if len(found) > 1:
        return RecordLookup(matches=len(found))
    return RecordLookup(matches=1, options=opening_options(actor, found[0]))


def _find_open_records(actor: Actor, *, identifier: str = "", family_name: str = "", given_names: str = "",
                       birth_date: date | None = None) -> list[Record]:
    """The open records matching the search, each found one logged (`Action.FIND_RECORD`), a
    search finding nothing one `dmp.security` line with ids only."""
    records = Record.objects.filter(state=Record.State.OPEN)
    if identifier:
        value = normalise_nir(identifier)  # spaces, dots and dashes dropped, capitals
        found = list(records.filter(nir=value) if not PROVISIONAL_ID_RE.match(value)
                     else records.filter(provisional_id=value))
    else:
        family, given = _fold(family_name), _fold(given_names)
        found = [
            r for r in records.filter(birth_date=birth_date)
            if _fold(r.family_name) == family
            and given in {_fold(r.given_names), _fold(r.given_names.split()[0] if r.given_names.split() else "")}
        ]
    if not found:
        security_log.info("record search by user %s: no match", actor.user.pk)
        return []
    for record in found:
        # A search that finds a record is a probe of its existence: in the record's history.
        access_log.read(actor, Action.FIND_RECORD, decide(actor, Action.FIND_RECORD, record), record, record=record)
    return found


@dataclass(frozen=True)
class RecordSearch:
    """The API's search (FHIR `Patient?…`): the records found that this professional may open
    now — a record found but not open to them is left out, so the answer never tells it exists."""

    records: list[Record] = field(default_factory=list)
    limited: bool = False


def records_found_for(actor: Actor, *, identifier: str = "", family_name: str = "", given_names: str = "",
                      birth_date: date | None = None, human_limit: bool = True) -> RecordSearch:
    """Search as `record_lookup` does (same matching, same search limit, same FIND_RECORD
    entries), then keep the records the professional may read (`Action.VIEW_RECORD`): each
    one returned is a read of its identity, logged as such. `human_limit=False` for practice
    software on an API token, which its own per-token limit bounds instead
    (dmp/api/throttling.py)."""
    if human_limit and _over_search_limit(actor):
        security_log.warning("record search limit reached by user %s", actor.user.pk)
        return RecordSearch(limited=True)
    readable = []
    for record in _find_open_records(actor, identifier=identifier, family_name=family_name,
                                     given_names=given_names, birth_date=birth_date):
        decision = decide(actor, Action.VIEW_RECORD, record)
        if decision.allowed:
            access_log.read(actor, Action.VIEW_RECORD, decision, record, record=record)
            readable.append(record)
    return RecordSearch(records=readable)


def _over_search_limit(actor: Actor) -> bool:
    """Too many searches in the last hour (`RECORD_SEARCHES_PER_HOUR`), on the logins' limiter."""
    return not record_search_allowed(actor.user, actor.ip)


# --- The patient screen --------------------------------------------------------------------------

@dataclass(frozen=True)
class SpaceDocuments:
    space: str
    label: str
    documents: list[Document]  # the latest PER_SPACE the professional may see
    total: int


@dataclass(frozen=True)
class DispensedMedicine:
    code: str
    label: str
    last_date: date
    times: int


def _dispensed_medicines(lines) -> list[DispensedMedicine]:
    """The lines grouped by medicine (its code), the latest dispensed first. Grouped here, in one
    query: codes and labels are encrypted at rest, the database cannot group or order them."""
    grouped: dict[str, list] = {}
    for line in lines:
        label, last_date, times = grouped.get(line.code, (line.label, line.date, 0))
        grouped[line.code] = [max(label, line.label), max(last_date, line.date), times + 1]
    medicines = [DispensedMedicine(code, *values) for code, values in grouped.items()]
    medicines.sort(key=lambda medicine: (-medicine.last_date.toordinal(), medicine.label))
    return medicines[:MAX_MEDICINES]


@dataclass(frozen=True)
class ResultTile:
    """One analyte on the patient screen: its latest value, and the trend of the values in
    the latest one's unit (a trend never mixes units)."""

    name: str
    series: ResultSeries
    trend: str

    @property
    def latest(self):
        return self.series.latest


def _results_that_matter(actor: Actor, record: Record, problems: list[SynthesisProblem],
                         treatments: list[str], today: date) -> list[ResultTile]:
    """The analytes that matter for this patient (`analyte_groups` over the problems and the
    treatments the screen shows), then any other with a value flagged in the last three months,
    the most recent first: one tile each, from the group's code measured last. One query."""
    groups = analyte_groups(problems=[p.icd10 for p in problems], treatments=treatments)
    found = results_that_matter_for(actor, record, codes=[c for g in groups for c in loinc.codes_of(g)],
                                    abnormal_since=today - ABNORMAL_WINDOW)
    by_key: dict[str, ResultSeries] = {}
    for code, series in found.items():
        key = loinc.analyte_of(code) or code
        if key not in by_key or series.latest.effective_at > by_key[key].latest.effective_at:
            by_key[key] = series
    flagged = sorted((k for k in by_key if k not in groups), key=lambda k: by_key[k].latest.effective_at, reverse=True)
    tiles = []
    for key in [g for g in groups if g in by_key] + flagged:
        series = by_key[key]
        group = loinc.groups().get(key)
        name = group.name() if group else loinc.display(series.code, fallback=series.latest.text)
        same_unit = [v for v in series.oldest_first if v.unit == series.latest.unit]
        tiles.append(ResultTile(name, series, trend_svg(name, same_unit)))
    return tiles[:MAX_RESULTS]


@dataclass(frozen=True)
class PatientScreen:
    """Everything the one-screen patient view shows, each part as the policy allows it."""

    record: Record
    access: RecordAccess
    age: int
    emergency_until: datetime | None
    profile: PersonalProfile
    emergency_contacts: list[EmergencyContact]
    declared_allergies: list[SelfDeclaredItem]
    vaccinations: list[Vaccination]
    directives_document: Document | None
    synthesis_allowed: bool
    synthesis: Synthesis | None
    reimbursements_allowed: bool
    medicines: list[DispensedMedicine]
    spaces: list[SpaceDocuments]
    may_add_documents: bool
    problems: list[SynthesisProblem] = field(default_factory=list)
    results: list[ResultTile] = field(default_factory=list)

    @property
    def document_count(self) -> int:
        return sum(s.total for s in self.spaces)

    @property
    def has_advance_directives(self) -> bool:
        return bool(self.profile.advance_directives.strip() or self.directives_document)

    @property
    def allergies_known(self) -> bool:
        return bool((self.synthesis and self.synthesis.allergies.strip()) or self.declared_allergies)

    @property
    def points_of_attention(self) -> str:
        return self.synthesis.points_of_attention if self.synthesis else ""


def age_on(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def patient_screen(actor: Actor, record: Record) -> PatientScreen:
    """The one-screen patient view of `record` for a professional. The caller has authorised,
    and so logged, the record read, which covers the identity, the personal data (the policy
    answers VIEW_PERSONAL_DATA with the record's own rule) and the list of documents (through
    `documents_visible_to`, and the laboratory values of those documents). The synthesis and
    the reimbursement history, which the matrix
    governs apart, are shown only where it lets the profession read them, and then logged as
    their own reads (a part the screen does not show is not a refused attempt). A fixed number
    of queries whatever the number of documents, reimbursement lines or synthesis versions."""
    if not decide(actor, Action.VIEW_PERSONAL_DATA, record).allowed:
        raise Http404
    access = record_access(actor, record)
    today = timezone.localdate()

    synthesis = None
    synthesis_decision = decide(actor, Action.VIEW_SYNTHESIS, record)
    if synthesis_decision.allowed:
        synthesis = (record.syntheses.select_related("author__user").prefetch_related("problems")
                     .order_by("-version").first())
        if synthesis is not None:
            access_log.read(actor, Action.VIEW_SYNTHESIS, synthesis_decision, synthesis, record=record)

    reimbursements_decision, lines = dispensed_medicines_read(actor, record)  # asks VIEW_REIMBURSEMENTS, logs
    medicines = _dispensed_medicines(lines)

    visible = documents_visible_to(actor, record)
    by_space: dict[str, list[Document]] = {}
    # How many each space holds: one aggregate. The latest of each space and the latest advance
    # directives: one query of short branches, each reading only its few rows from the index of
    # the record's documents by date; not a ranking of all the record's documents, whose cost
    # grew with the record.
    totals = dict(visible.order_by().values_list("space").annotate(n=Count("pk")))
    # The branches choose ids only, and the documents with their authors are loaded around them
    # in the same statement: compiling each branch's ordering against the dozens of columns of
    # a document and its author cost more than the rest of the screen's SQL.
    newest_first = ("-act_date", "-pk")
    branches = [visible.filter(space=space).order_by(*newest_first).values("pk")[:PER_SPACE] for space in totals]
    branches.append(visible.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES).order_by(*newest_first)
                    .values("pk")[:1])
    if not connections[visible.db].features.supports_slicing_ordering_in_compound:
        # SQLite (the embedded demo) takes no LIMIT in a branch of a UNION: each branch then
        # chooses its ids in a subquery of its own.
        branches = [Document.objects.filter(pk__in=branch).values("pk") for branch in branches]
    chosen = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
    latest = list(visible.filter(pk__in=chosen))
    directives = [d for d in latest if d.doc_type == DocumentType.ADVANCE_DIRECTIVES]
    directives_document = max(directives, key=lambda d: (d.act_date, d.pk)) if directives else None
    seen: set[int] = set()
    for document in latest:
        if document.pk not in seen:
            seen.add(document.pk)
            by_space.setdefault(document.space, []).append(document)
    for documents in by_space.values():
        documents.sort(key=lambda d: (d.act_date, d.pk), reverse=True)
        del documents[PER_SPACE:]
    spaces = [SpaceDocuments(space.value, str(space.label), by_space[space.value], totals[space.value])
              for space in Space if space.value in by_space]

    problems = list(synthesis.problems.all()) if synthesis else []
    treatments = [*(synthesis.current_treatments.splitlines() if synthesis else ()), *(m.label for m in medicines)]

    emergency_until = None
    if access.standing is Standing.BREAK_GLASS:
        emergency_until = CareAuthorisation.objects.active().filter(
            record=record, professional=actor.professional, kind=CareAuthorisation.Kind.BREAK_GLASS,
        ).aggregate(until=Max("expires_at"))["until"]

    return PatientScreen(
        record=record,
        access=access,
        age=age_on(record.birth_date, today),
        emergency_until=emergency_until,
        profile=personal_profile(record) or PersonalProfile(record=record),
        emergency_contacts=emergency_contacts_of(record, limit=MAX_CONTACTS),
        declared_allergies=declared_in_order(declared_allergies(record))[:MAX_DECLARED_ALLERGIES],
        vaccinations=vaccinations_of(record, newest_first=True, limit=MAX_VACCINATIONS),
        directives_document=directives_document,
        synthesis_allowed=synthesis_decision.allowed,
        synthesis=synthesis,
        problems=problems,
        results=_results_that_matter(actor, record, problems, treatments, today),
        reimbursements_allowed=reimbursements_decision.allowed,
        medicines=medicines,
        spaces=spaces,
        may_add_documents=decide(actor, Action.ADD_DOCUMENT, record).allowed,
    )


__all__ = [
    "OpeningOptions", "PatientScreen", "RecordLookup", "RecordSearch", "opening_options", "opening_options_for",
    "patient_screen", "record_for_opening", "record_lookup", "records_found_for",
]
