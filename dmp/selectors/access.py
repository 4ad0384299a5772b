"""Who stands where towards a record, as the patient manages it (DOMAIN.md §3 "patient
management", §4): the médecin traitant, care authorisations, emergency openings, the SAMU
rule, blocks and counter deposit rights. Read from the same stored facts the policy reads."""

from __future__ import annotations

import logging
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from ..access_log import authorise_read
from ..accounts.lockout import professional_search_allowed
from ..models import Block, CareAuthorisation, DepositRight, Profession, Professional, Record, TreatingDoctor
from ..policy import Action, Actor, Standing, decide, professionals_standing_on, standing_rows

security_log = logging.getLogger("dmp.security")


@dataclass
class ProfessionalStanding:
    """A professional who reads the record through a care authorisation: granted by the
    patient, declared by the professional at a consultation, or both."""

    professional: Professional
    granted_at: datetime | None = None
    declared_at: datetime | None = None


@dataclass(frozen=True)
class AccessOverview:
    record: Record
    treating_doctor: TreatingDoctor | None
    authorised: list[ProfessionalStanding]
    emergency_openings: list[CareAuthorisation]  # break-glass in progress, until `expires_at`
    blocked: list[Block]
    deposit_rights: list[DepositRight]
    treating_doctor_blocked: bool = False
    candidates: list[Professional] = field(default_factory=list)

    @property
    def samu_allowed(self) -> bool:
        return self.record.samu_allowed

    @property
    def break_glass_allowed(self) -> bool:
        return self.record.break_glass_allowed


def record_access_overview(actor: Actor, record: Record) -> AccessOverview:
    """Everyone with a standing on the record now, and how they got it, for the patient or
    their representative (Action.MANAGE_ACCESS; Http404 otherwise). Blocked professionals are
    listed apart and nowhere else: a block overrides everything (DOMAIN.md §4)."""
    if not authorise_read(actor, Action.MANAGE_ACCESS, record):
        raise Http404
    now = timezone.now()
    # Every standing below is read from the policy's own rules (`standing_rows`), so this page
    # lists exactly the facts a read is decided on.
    blocked = list(
        standing_rows(record, Standing.BLOCKED, at=now).select_related("professional__user").order_by("-created_at")
    )
    blocked_ids = {b.professional_id for b in blocked}
    treating_doctor = (
        standing_rows(record, Standing.TREATING_DOCTOR, at=now).select_related("professional__user").first()
    )
    standings: dict[int, ProfessionalStanding] = {}
    openings = []
    # Emergency openings are listed even once the patient refused break-glass: the page says
    # such an opening no longer gives access (the rule's consent, `break_glass_allowed`).
    authorisations = (
        standing_rows(record, Standing.AUTHORISED, Standing.DECLARED_CARE, Standing.BREAK_GLASS, at=now)
        .exclude(professional_id__in=blocked_ids)
        .select_related("professional__user", "professional__facility")
        .order_by("created_at")
    )
    kind = CareAuthorisation.Kind
    for grant in authorisations:
        if grant.kind == kind.BREAK_GLASS:
            openings.append(grant)
            continue
        standing = standings.setdefault(grant.professional_id, ProfessionalStanding(grant.professional))
        if grant.kind == kind.GRANTED_BY_PATIENT:
            standing.granted_at = standing.granted_at or grant.created_at
        else:
            standing.declared_at = standing.declared_at or grant.created_at
    authorised = [s for pk, s in standings.items() if treating_doctor is None or pk != treating_doctor.professional_id]
    authorised.sort(key=lambda s: (s.professional.user.last_name, s.professional.user.first_name))
    # The médecin traitant is chosen among general practitioners who already read the record
    # (or found by RPPS number): never a browsable directory of every professional.
    candidates = [s.professional for s in authorised if s.professional.profession == Profession.GP]
    deposit_rights = list(
        DepositRight.objects.active(now).filter(record=record)
        .select_related("agent__user", "agent__organisation").order_by("created_at")
    )
    return AccessOverview(
        record=record,
        treating_doctor=treating_doctor,
        treating_doctor_blocked=treating_doctor is not None and treating_doctor.professional_id in blocked_ids,
        authorised=authorised,
        emergency_openings=openings,
        blocked=blocked,
        deposit_rights=deposit_rights,
        candidates=candidates,
    )


def professional_with_standing(actor: Actor, record: Record, pk: int) -> Professional | None:
    """A professional the patient picked on the management page: only one who has, or had
    until now, a standing on this record (médecin traitant, care authorisation, emergency
    opening, block). Anyone else is reached by RPPS number. The caller's service asks the
    policy (and writes the audit entry); this only refuses to look for anyone else."""
    if not decide(actor, Action.MANAGE_ACCESS, record):
        raise Http404
    return Professional.objects.filter(professionals_standing_on(record), pk=pk).select_related("user").first()


def professional_by_rpps(rpps: str) -> Professional | None:
    """The professional with exactly this RPPS number (validated by the caller), or None.
    An exact match only: the directory cannot be browsed from the patient portal."""
    return Professional.objects.filter(rpps=rpps).select_related("user").first()


# --- Finding a professional by name --------------------------------------------------------------

PROFESSIONALS_SHOWN = 10  # more than this: the patient is asked to refine the search
_MAX_WORDS = 4


@dataclass(frozen=True)
class ProfessionalSearch:
    """What a search of the professionals by name found: at most `PROFESSIONALS_SHOWN`, `more`
    when others match too (the patient adds the given name, the profession or the town), or
    `limited` when the hourly search limit is reached (nothing was looked up)."""

    professionals: list[Professional] = field(default_factory=list)
    more: bool = False
    limited: bool = False


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _letter_variants() -> dict[str, str]:
    """Each ASCII letter with every Latin letter that folds to it, both cases (e: eEéÉèÈêÊëË…)."""
    variants: dict[str, set[str]] = {c: {c, c.upper()} for c in string.ascii_lowercase}
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = _folded(char)
        if base in variants:
            variants[base].update({char, char.upper(), char.lower()})
    return {base: "".join(sorted(chars)) for base, chars in variants.items()}


_VARIANTS = _letter_variants()
# A word of a name starts the field or follows a space, a hyphen or an apostrophe.
_WORD_START = "(^|[ '\u2019-])"


def _word_prefix(word: str) -> str:
    """A regular expression finding `word` (folded letters) at the start of any word of a name,
    whatever its accents and case: the same on PostgreSQL and SQLite, without the `unaccent`
    extension (names are stored as typed, the folding is in the pattern)."""
    return _WORD_START + "".join(f"[{_VARIANTS[c]}]" for c in word)


def _words(text: str) -> list[str]:
    # Only letters count: "D'Argent" is "d" and "argent", digits and signs are dropped.
    folded = "".join(c if c in _VARIANTS else " " for c in _folded(text))
    return folded.split()[:_MAX_WORDS]


def name_words_q(text: str, *fields: str) -> Q:
    """Each word of `text` starting a word of one of `fields` (names), accents and case
    ignored, as the professional search reads a name; an empty filter when `text` has no word."""
    q = Q()
    for word in _words(text):
        pattern = _word_prefix(word)
        either = Q()
        for name in fields:
            either |= Q(**{f"{name}__regex": pattern})
        q &= either
    return q


def professional_search_words_valid(name: str) -> bool:
    """At least one word of two letters or more, or an RPPS number: a single letter would list
    the directory page by page."""
    return bool(_rpps_typed(name)) or any(len(word) >= 2 for word in _words(name))


def _rpps_typed(name: str) -> str:
    digits = "".join((name or "").split())
    return digits if digits.isdigit() and len(digits) == 11 else ""


def professionals_matching(actor: Actor, record: Record, name: str, *, profession: str = "", town: str = "",
                           action: str = Action.MANAGE_ACCESS,
                           limit: int = PROFESSIONALS_SHOWN) -> ProfessionalSearch:
    """The professionals known to the system (every one imported from the RPPS registry or
    created on request) whose family or given names start with each word of `name`, accents and
    case ignored, of `profession` and practising in `town` when given; or exactly the one with
    the RPPS number typed. For `actor` acting on `record` (`action`: the patient managing
    access, or the médecin traitant blocking at the patient's request; Http404 otherwise).

    Each search counts on the hourly limit (`PROFESSIONAL_SEARCHES_PER_HOUR`): ten names at a
    time, the directory cannot be copied. A search reads nothing of any record, so it is not in
    the access ledger; reaching the limit is a `dmp.security` line."""
    if not decide(actor, action, record):
        raise Http404
    if not professional_search_allowed(actor.user, actor.ip):
        security_log.warning("professional search limit reached by user %s", actor.user.pk)
        return ProfessionalSearch(limited=True)
    found = Professional.objects.select_related("user")
    rpps = _rpps_typed(name)
    if rpps:
        found = found.filter(rpps=rpps)
    else:
        for word in _words(name):
            pattern = _word_prefix(word)
            found = found.filter(Q(user__last_name__regex=pattern) | Q(user__first_name__regex=pattern))
        if profession:
            found = found.filter(profession=profession)
        for word in _words(town):
            found = found.filter(town__regex=_word_prefix(word))
    rows = list(found.order_by("user__last_name", "user__first_name", "town", "pk")[:limit + 1])
    return ProfessionalSearch(professionals=rows[:limit], more=len(rows) > limit)
