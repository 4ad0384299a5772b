"""`manage.py seed_demo`: the demo world is complete, went through the policy and the audit
chain, and a second run changes nothing.

One test seeds once and runs every check (seeding renders two dozen PDFs: doing it per check
would multiply the file's run time for nothing)."""

from __future__ import annotations

import shutil
from datetime import date
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from dmp import demo
from dmp.accounts import second_factor_enrolled, second_factor_required
from dmp.accounts.stages import code_destination
from dmp.audit import verify_chain
from dmp.models import (
    AuditEntry,
    AuditMode,
    Block,
    CareAuthorisation,
    CounterAgent,
    Document,
    LegalRepresentative,
    Organisation,
    Professional,
    Record,
    ReimbursementLine,
    Space,
    Synthesis,
    TreatingDoctor,
    User,
)
from dmp.models.people import validate_rpps
from dmp.models.record import validate_nir
from dmp.policy import Action, Actor, decide
from dmp.selectors.administration import administers_unaffiliated, organisations_administered_by

MODELS = (User, Organisation, Professional, CounterAgent, Record, Document, ReimbursementLine, Synthesis,
          CareAuthorisation, TreatingDoctor, Block, LegalRepresentative, AuditEntry)


@pytest.fixture(autouse=True)
def _demo_document_storage(settings, tmp_path):
    """Document files go to a throw-away folder (independent of any conftest)."""
    settings.MEDIA_ROOT = tmp_path / "documents"


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def record_of(username: str) -> Record:
    return Record.objects.get(holder__username=username)


def actor(username: str) -> Actor:
    return Actor(User.objects.get(username=username))


def month_index(day: date) -> int:
    return day.year * 12 + day.month


@pytest.mark.slow
@pytest.mark.django_db
def test_seed_demo_builds_the_demo_world_once():
    seeded = demo.seed_demo(stdout=StringIO())
    check_cast(seeded)
    check_chronic_patient()
    check_reimbursements()
    check_minor_and_asylum_seeker()
    check_access_history_and_audit_chain()
    check_second_run_creates_nothing()


def check_cast(seeded: demo.DemoSummary) -> None:
    assert seeded.created
    assert Record.objects.count() == seeded.records == 3
    expected_documents = (len(demo.CHRONIC_DOCUMENTS) + 1 + len(demo.LAB_RESULTS) + len(demo.MINOR_DOCUMENTS)
                          + len(demo.ASYLUM_DOCUMENTS))
    # +1: the insurer's import; each laboratory report has its document
    assert Document.objects.count() == seeded.documents == expected_documents
    assert seeded.audit_entries == AuditEntry.objects.count() > 0
    assert Professional.objects.count() == 7
    assert CounterAgent.objects.count() == 3
    assert set(Organisation.objects.values_list("kind", flat=True)) == {
        "cpam_counter", "pharmacy", "reception_centre", "facility", "samu"
    }
    for professional in Professional.objects.all():
        validate_rpps(professional.rpps)
    assert Professional.objects.get(is_samu_regulator=True).profession == "gp"
    assert Professional.objects.get(user__username=demo.EMERGENCY).profession == "specialist"
    # Two operators, never a superuser: the two-person flows can be shown, scoped to the demo.
    assert not User.objects.filter(is_superuser=True).exists()
    for username in (demo.ADMIN, demo.ADMIN_SECOND):
        operator = User.objects.get(username=username)
        assert operator.is_staff and not operator.is_superuser
        assert set(organisations_administered_by(operator)) == set(Organisation.objects.all())
        assert administers_unaffiliated(operator) and operator.has_perm("dmp.change_matrixentry")
    # Two agents at the CPAM counter: a reset for someone it did not onboard and who has no
    # phone (the asylum seeker) needs the second one's approval.
    cpam = {User.objects.get(username=name).counter_agent.organisation_id for name in (demo.CPAM_AGENT,
                                                                                       demo.CPAM_SECOND)}
    assert len(cpam) == 1
    for login in seeded.logins:
        user = User.objects.get(username=login.username)
        assert user.check_password(demo.DEMO_PASSWORD), login.username
        assert not user.must_change_password
        # Everyone can finish logging in: a second factor for the staff, a code for patients
        # (but the asylum seeker, who shows the page that says where to get help).
        if second_factor_required(user):
            assert second_factor_enrolled(user), login.username
        else:
            assert (code_destination(user) is None) == (login.username == demo.ASYLUM), login.username
    check_demo_code_command()


def check_demo_code_command() -> None:
    out = StringIO()
    call_command("demo_code", demo.GP_TREATING, stdout=out)
    code = out.getvalue().split()[1]
    totp = TOTP(Authenticator.objects.get(user__username=demo.GP_TREATING, type=Authenticator.Type.TOTP))
    assert totp.validate_code(code)


def check_lab_results(record: Record) -> None:
    """Two years of quarterly results, sent by the laboratory's account through the FHIR path,
    each report with its document; the médecin traitant reads the latest values; one abnormal."""
    from dmp.models import LabObservation, LabReport
    from dmp.selectors.results import latest_results_for

    reports = LabReport.objects.filter(record=record).select_related("document__author_professional__user")
    assert reports.count() == len(demo.LAB_RESULTS)
    assert {r.document.author_professional.user.username for r in reports} == {demo.LABORATORY}
    assert (timezone.now() - min(r.effective_at for r in reports)).days < 730
    assert list(LabObservation.objects.filter(record=record, interpretation__in=["H", "L", "HH", "LL", "A"])
                .values_list("code", flat=True)) == ["2823-3"]
    doctor = Actor(User.objects.get(username=demo.GP_TREATING))
    latest = {s.code: s for s in latest_results_for(doctor, record, codes=["4548-4", "2160-0", "62238-1", "2089-1",
                                                                             "13457-7", "2823-3"])}
    assert set(latest) == {"4548-4", "2160-0", "62238-1", "13457-7", "2823-3"}
    assert len(latest["4548-4"].values) == len(demo.LAB_RESULTS)


def check_chronic_patient() -> None:
    record = record_of(demo.CHRONIC)
    validate_nir(record.nir)
    assert TreatingDoctor.objects.active().get(record=record).professional.user.username == demo.GP_TREATING
    profile = record.profile
    assert profile.trusted_person_name and profile.advance_directives and profile.blood_group
    assert profile.organ_donation != "not_stated"
    assert record.emergency_contacts.exists() and record.vaccinations.exists()
    assert record.self_declared.filter(kind="allergy").exists()
    check_lab_results(record)
    synthesis = record.syntheses.latest()
    assert synthesis.author.user.username == demo.GP_TREATING
    assert {"E11.9", "I10"} <= set(synthesis.problems.values_list("icd10", flat=True))

    documents = record.documents.all()
    assert set(documents.values_list("space", flat=True)) == set(Space.values)
    assert documents.filter(hidden_from_professionals=True).exists()
    assert documents.filter(status=Document.Status.ARCHIVED).exists()
    assert documents.filter(space=Space.REIMBURSEMENT, author_kind="system", system_source="Assurance Maladie").exists()
    assert len(set(documents.values_list("content_hash", flat=True))) == documents.count()
    # Added through the services: every demo PDF is searchable and has its thumbnail.
    assert not documents.filter(extracted_text="").exists()
    assert not documents.filter(thumbnail="").exists() or shutil.which("pdftoppm") is None
    with documents.first().file.open() as stored:  # encrypted at rest, a real PDF once decrypted
        assert stored.read().startswith(b"%PDF-")


def check_reimbursements() -> None:
    dates = list(ReimbursementLine.objects.filter(record=record_of(demo.CHRONIC)).values_list("date", flat=True))
    today = timezone.localdate()
    assert len({month_index(d) for d in dates}) == 24
    assert max(dates) <= today and month_index(max(dates)) == month_index(today)
    assert month_index(today) - month_index(min(dates)) == 23
    assert ReimbursementLine.objects.filter(kind="medicine").count() == 24 * len(demo.MEDICINES)


def check_minor_and_asylum_seeker() -> None:
    minor = record_of(demo.MINOR)
    assert LegalRepresentative.objects.filter(record=minor, user__username=demo.PARENT).exists()
    secret = minor.documents.get(hidden_from_representatives=True)
    assert not decide(actor(demo.PARENT), Action.VIEW_DOCUMENT, secret)
    assert decide(actor(demo.MINOR), Action.VIEW_DOCUMENT, secret)

    asylum = record_of(demo.ASYLUM)
    assert asylum.nir is None and asylum.provisional_id.startswith("P")
    assert asylum.email == "" and asylum.phone == ""
    assert asylum.holder.email == "" and asylum.holder.phone == ""
    assert asylum.languages == ["prs", "ru"] and asylum.preferred_language == "fa"
    assert asylum.created_by.username == demo.CADA_WORKER
    assert asylum.documents.filter(author_kind="counter").exists()


def check_access_history_and_audit_chain() -> None:
    record = record_of(demo.CHRONIC)
    history = AuditEntry.objects.filter(record_id_ref=record.pk, allowed=True)
    assert history.filter(mode=AuditMode.BREAK_GLASS, action=Action.VIEW_RECORD).exists()
    assert history.filter(mode=AuditMode.SAMU).exists()
    assert history.filter(mode=AuditMode.NORMAL, actor__username=demo.PHARMACIST).exists()
    hidden = record.documents.get(hidden_from_professionals=True)
    assert not decide(actor(demo.EMERGENCY), Action.VIEW_DOCUMENT, hidden)
    assert decide(actor(demo.GP_TREATING), Action.VIEW_DOCUMENT, hidden)
    assert verify_chain() is None


def check_second_run_creates_nothing() -> None:
    before = counts()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    again = demo.seed_demo()
    assert counts() == before
    assert not again.created
    assert "already present" in out.getvalue()
    assert all(login.username in out.getvalue() for login in demo.DEMO_LOGINS)
    assert verify_chain() is None


@pytest.mark.django_db
def test_demo_code_prints_nothing_for_a_real_secret_and_never_runs_in_production(world, settings):
    # The personas' secret is not the demo one: their codes are never printed.
    with pytest.raises(CommandError, match="No demo account"):
        call_command("demo_code", world.dr_house.user.username, stdout=StringIO())
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("demo_code", stdout=StringIO())
