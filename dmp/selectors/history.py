"""The record's access history as the patient reads it (DOMAIN.md §3 "patient access history"):
a summary first — who, how often, emergency and SAMU accesses and counter actions apart,
refusals — then every entry on demand, in plain words. Built on `access_history_for()`, which
asks the policy (Action.VIEW_ACCESS_HISTORY) and leaves out the patient's own actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.paginator import Page
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import AuditEntry, AuditMode, CareAuthorisation, Profession, Record
from ..paging import page_of
from ..policy import Action, Actor, document_scope
from .records import access_history_for

EMERGENCY_MODES = (AuditMode.BREAK_GLASS, AuditMode.SAMU)
TOP_LIST_SIZE = 20  # emergency, counter and refused entries shown in the summary

# What was done, in plain words. An action missing here is shown by its stored name.
ACTION_WORDS = {
    Action.VIEW_RECORD: _("Opened the record"),
    Action.VIEW_DOCUMENT: _("Read a document"),
    Action.VIEW_SYNTHESIS: _("Read the medical summary"),
    Action.VIEW_PERSONAL_DATA: _("Read the personal information"),
    Action.VIEW_REIMBURSEMENTS: _("Read the reimbursement history"),
    Action.VIEW_ACCESS_HISTORY: _("Read the access history"),
    Action.EXPORT_RECORD: _("Downloaded the record"),
    Action.ADD_DOCUMENT: _("Added a document"),
    Action.REPLACE_DOCUMENT: _("Replaced a document with a new version"),
    Action.RELEASE_DOCUMENT: _("Made a result visible to the patient"),
    Action.WITHDRAW_DOCUMENT: _("Withdrew a document entered in error"),
    Action.HIDE_DOCUMENT: _("Hid or showed a document"),
    Action.HIDE_FROM_REPRESENTATIVES: _("Hid or showed a document to the legal representatives"),
    Action.NOTIFY_REPRESENTATIVES: _("Chose what the legal representatives are told"),
    Action.ARCHIVE_DOCUMENT: _("Archived a document"),
    Action.EDIT_SYNTHESIS: _("Wrote the medical summary"),
    Action.EDIT_PERSONAL_DATA: _("Changed the personal information"),
    Action.MANAGE_ACCESS: _("Managed who can see the record"),
    Action.BLOCK_PROFESSIONAL: _("Blocked or unblocked a professional"),
    Action.CLOSE_RECORD: _("Closed the record"),
    Action.DECLARE_CARE: _("Declared caring for the patient, at a consultation"),
    Action.BREAK_GLASS: _("Opened the record in an emergency"),
    Action.CREATE_RECORD: _("Created the record"),
    Action.DEPOSIT_DOCUMENT: _("Deposited a paper into the record"),
    Action.VIEW_ADMIN_STATUS: _("Checked the record's administrative status"),
    Action.RESET_CREDENTIALS: _("Handed over new login credentials"),
    Action.REQUEST_CREDENTIALS_RESET: _("Asked for new login credentials (waiting for proof)"),
    Action.APPROVE_CREDENTIALS_RESET: _("Approved new login credentials, as a second agent"),
    Action.CHANGE_LOGIN_CONTACT: _("Changed where the login code is sent"),
    Action.FIND_RECORD: _("Looked the record up, to open it"),
    Action.ATTACH_NIR: _("Attached the social-security number (NIR)"),
    Action.PRINT_PATIENT_SUMMARY: _("Printed the patient summary"),
}

# How the access happened: the mode the policy gave it.
MODE_WORDS = {
    AuditMode.NORMAL: _("Care authorisation"),
    AuditMode.TREATING_DOCTOR: _("Médecin traitant"),
    AuditMode.BREAK_GLASS: _("Emergency access"),
    AuditMode.SAMU: _("SAMU (centre 15)"),
    AuditMode.COUNTER: _("Counter"),
    AuditMode.REPRESENTATIVE: _("Legal representative"),
    AuditMode.ADMIN: _("Administration"),
    AuditMode.NONE: _("No access"),
}

ROLE_WORDS = {
    **dict(Profession.choices),
    "samu_regulator": _("SAMU regulator"),
    "counter_agent": _("Counter agent"),
    "representative": _("Legal representative"),
    "administrator": _("Administrator"),
    "holder": _("Patient"),
}


@dataclass(frozen=True)
class HistoryFilters:
    """GET filters: none of them is medical (an account id and dates)."""

    actor_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    def apply(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        if self.actor_id is not None:
            entries = entries.filter(actor_id=self.actor_id)
        # Days in the current time zone, as bounds on `at` itself (not `at__date`, which the
        # database computes row by row): the index on (record, at) can then serve the period.
        if self.date_from is not None and self.date_from > date.min:  # nothing is older than the first day
            entries = entries.filter(at__gte=_start_of(self.date_from))
        if self.date_to is not None and self.date_to < date.max:  # the last day has no day after it
            entries = entries.filter(at__lt=_start_of(self.date_to + timedelta(days=1)))
        return entries


def _start_of(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class HistoryRow:
    """One entry, said in plain words."""

    entry: AuditEntry
    document_title: str = ""
    # The reason a professional typed when they opened the record in an emergency (break-glass
    # entries only): medical free text, decrypted for the page, never put in a URL or a log.
    justification: str = ""

    @property
    def at(self) -> datetime:
        return self.entry.at

    @property
    def who(self) -> str:
        return self.entry.actor_label

    @property
    def profession(self) -> str:
        return str(ROLE_WORDS.get(self.entry.role, ""))

    @property
    def how(self) -> str:
        return str(MODE_WORDS.get(self.entry.mode, self.entry.mode))

    @property
    def what(self) -> str:
        return str(ACTION_WORDS.get(self.entry.action, self.entry.action))

    @property
    def refused(self) -> bool:
        return not self.entry.allowed

    @property
    def is_emergency(self) -> bool:
        return self.entry.mode in EMERGENCY_MODES

    @property
    def is_samu(self) -> bool:
        return self.entry.mode == AuditMode.SAMU

    @property
    def is_counter(self) -> bool:
        return self.entry.mode == AuditMode.COUNTER


@dataclass(frozen=True)
class Doing:
    """One kind of thing a person did within a line, and how many times."""

    what: str
    document_title: str
    count: int


@dataclass(frozen=True)
class HistoryLine(HistoryRow):
    """Entries of the same person on the same day, in the same capacity and with the same
    outcome, said in one line with a count: opening a record and reading five of its documents
    is one visit, not six lines. Refusals and emergency or SAMU accesses are never merged into
    ordinary accesses (the outcome and the mode are part of what makes a line), and nothing is
    left out: each thing done is listed with its count, each break-glass with its reason. Who,
    how and the flags are those of its newest entry (`entry`), the same for all of them."""

    rows: tuple[HistoryRow, ...] = ()  # newest first

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def first_at(self) -> datetime:
        return self.rows[-1].at

    @property
    def doings(self) -> list[Doing]:
        """What was done, each distinct thing once with its count, newest first."""
        counts: dict[tuple[str, str], int] = {}
        for row in self.rows:
            key = (row.what, row.document_title)
            counts[key] = counts.get(key, 0) + 1
        return [Doing(what, title, count) for (what, title), count in counts.items()]

    @property
    def justifications(self) -> list[str]:
        return list(dict.fromkeys(row.justification for row in self.rows if row.justification))


def _line_key(row: HistoryRow) -> tuple:
    entry = row.entry
    return (entry.actor_id, entry.actor_label, timezone.localdate(entry.at), entry.allowed, entry.mode)


def history_lines(rows: list[HistoryRow], *, consecutive: bool = True) -> list[HistoryLine]:
    """`rows` (newest first) grouped into lines: the same person, day, capacity and outcome.
    `consecutive`: only rows next to each other are grouped, so the detail stays a true
    timeline; otherwise each person's day is one line, placed at its latest entry (a short
    list of who came)."""
    groups: dict[tuple, list[HistoryRow]] = {}
    lines: list[list[HistoryRow]] = []
    for row in rows:
        key = _line_key(row)
        if consecutive:
            if lines and _line_key(lines[-1][0]) == key:
                lines[-1].append(row)
            else:
                lines.append([row])
        elif key in groups:
            groups[key].append(row)
        else:
            groups[key] = [row]
            lines.append(groups[key])
    return [HistoryLine(line[0].entry, line[0].document_title, line[0].justification, rows=tuple(line))
            for line in lines]


@dataclass(frozen=True)
class PersonSummary:
    """How often one person acted on the record over the period."""

    actor_id: int | None
    who: str
    role: str
    accesses: int
    refusals: int
    emergencies: int
    counter: int
    first_at: datetime
    last_at: datetime

    @property
    def profession(self) -> str:
        return str(ROLE_WORDS.get(self.role, ""))


@dataclass(frozen=True)
class AccessHistory:
    filters: HistoryFilters
    total: int
    refusals_count: int
    people: list[PersonSummary]
    emergencies: list[HistoryRow]
    emergencies_count: int
    counter: list[HistoryRow]
    counter_count: int
    refusals: list[HistoryRow]
    page: Page  # of HistoryRow
    who_choices: list[tuple[int, str]]  # everyone present in the whole history, for the filter

    # As shown: the same lists in lines (`HistoryLine`), a person's repeated accesses of one day
    # grouped. The page of detail is grouped within itself (a line may continue on the next page).
    @property
    def emergency_lines(self) -> list[HistoryLine]:
        return history_lines(self.emergencies)

    @property
    def counter_lines(self) -> list[HistoryLine]:
        return history_lines(self.counter)

    @property
    def refusal_lines(self) -> list[HistoryLine]:
        return history_lines(self.refusals)

    @property
    def page_lines(self) -> list[HistoryLine]:
        return history_lines(list(self.page))


def access_history(
    actor: Actor, record: Record, *, filters: HistoryFilters | None = None, page: int | str = 1
) -> AccessHistory:
    """The history page of `record` for the patient (or their representative, or anyone the
    policy lets read the history): Http404 if refused. A fixed number of queries whatever the
    number of entries: aggregates for the summary, short top lists, one page of detail, and
    the documents' titles in one query."""
    filters = filters or HistoryFilters()
    everything = access_history_for(actor, record)
    entries = filters.apply(everything)

    people = [
        PersonSummary(
            actor_id=p["actor_id"], who=p["actor_label"], role=p["role"], accesses=p["accesses"],
            refusals=p["refusals"], emergencies=p["emergencies"], counter=p["counter"], first_at=p["first_at"],
            last_at=p["last_at"],
        )
        for p in entries.order_by().values("actor_id", "actor_label", "role").annotate(
            accesses=Count("pk", filter=Q(allowed=True)),
            refusals=Count("pk", filter=Q(allowed=False)),
            emergencies=Count("pk", filter=Q(allowed=True, mode__in=EMERGENCY_MODES)),
            counter=Count("pk", filter=Q(mode=AuditMode.COUNTER)),
            first_at=Min("at"),
            last_at=Max("at"),
        ).order_by("-last_at")
    ]
    emergency_q = Q(allowed=True, mode__in=EMERGENCY_MODES)
    emergencies = list(entries.filter(emergency_q)[:TOP_LIST_SIZE])
    counter = list(entries.filter(mode=AuditMode.COUNTER)[:TOP_LIST_SIZE])
    refusals = list(entries.filter(allowed=False)[:TOP_LIST_SIZE])
    detail = page_of(entries, page)
    shown = [*emergencies, *counter, *refusals, *detail.object_list]
    titles = _document_titles(actor, record, shown)
    reasons = break_glass_justifications(record, shown)
    rows = [_row(e, titles, reasons) for e in detail.object_list]
    detail.object_list = rows

    seen: dict[int, str] = {}
    labels = everything.filter(actor_id__isnull=False).order_by().values("actor_id", "actor_label")
    for label in labels.annotate(last=Max("seq")).order_by("-last"):
        seen.setdefault(label["actor_id"], label["actor_label"])  # each person's latest label
    return AccessHistory(
        filters=filters,
        total=detail.paginator.count,
        refusals_count=sum(p.refusals for p in people),
        people=people,
        emergencies=[_row(e, titles, reasons) for e in emergencies],
        emergencies_count=sum(p.emergencies for p in people),
        counter=[_row(e, titles, reasons) for e in counter],
        counter_count=sum(p.counter for p in people),
        refusals=[_row(e, titles, reasons) for e in refusals],
        page=detail,
        who_choices=sorted(seen.items(), key=lambda item: item[1].casefold()),
    )


def _document_titles(actor: Actor, record: Record, entries: list[AuditEntry]) -> dict[str, str]:
    """Titles of the documents these entries are about, in one query — only those the reader
    may see now: a result not yet announced to the patient, or a document hidden from legal
    representatives, shows as "a document" without its title."""
    ids = {e.object_id for e in entries if e.object_type == "document" and e.object_id.isdigit()}
    if not ids:
        return {}
    visible = record.documents.filter(document_scope(actor, record).q()).filter(pk__in=sorted(int(i) for i in ids))
    return {str(pk): title for pk, title in visible.values_list("pk", "title")}


def break_glass_justifications(record: Record, entries: list[AuditEntry]) -> dict[str, str]:
    """The reasons typed at the break-glass openings these entries record, by authorisation id,
    in one query (none when there is no opening among them). For whoever the policy lets read
    the history (the patient's side and the médecin traitant, `access_history_for()`), like the
    openings in force on the patient's access page: it is their record's emergency."""
    ids = {e.object_id for e in entries
           if e.allowed and e.action == Action.BREAK_GLASS and e.object_type == "careauthorisation"
           and e.object_id.isdigit()}
    if not ids:
        return {}
    openings = CareAuthorisation.objects.filter(
        record=record, kind=CareAuthorisation.Kind.BREAK_GLASS, pk__in=sorted(int(i) for i in ids))
    return {str(pk): justification for pk, justification in openings.values_list("pk", "justification")}


def _row(entry: AuditEntry, titles: dict[str, str], reasons: dict[str, str]) -> HistoryRow:
    title = titles.get(entry.object_id, "") if entry.object_type == "document" else ""
    reason = reasons.get(entry.object_id, "") if entry.object_type == "careauthorisation" else ""
    return HistoryRow(entry, title, reason)
