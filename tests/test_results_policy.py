"""A report and its values are visible exactly where its document is (DOMAIN.md §4): every
persona, every document of the world, the lists and the single read agree with the document's
own answer; and each rule, named, hides the values where it hides the report."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from dmp.models import AuditEntry, CareAuthorisation, Document
from dmp.policy import Action, Actor, decide
from dmp.selectors.records import documents_visible_to
from dmp.selectors.results import (
    ResultFilters,
    get_lab_observation_for,
    get_lab_report_for,
    latest_results_for,
    reports_for,
    results_for,
)
from tests.personas import user_of
from tests.results_helpers import CREATININE, HBA1C, attach_report
from tests.test_policy_matrix import PERSONAS


def _reports_on_every_document(world) -> dict[int, int]:
    """A report on each of the world's documents: document pk -> report pk."""
    return {doc.pk: attach_report(doc).pk for doc in world.docs.values()}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_values_are_listed_and_read_exactly_where_their_document_is(world, persona):
    reports = _reports_on_every_document(world)
    actor = Actor(user_of(world, persona))
    for record in (world.record, world.leo_record):
        documents = set(documents_visible_to(actor, record, include_archived=True).values_list("pk", flat=True))
        expected = {reports[pk] for pk in documents if pk in reports}
        assert set(reports_for(actor, record).values_list("pk", flat=True)) == expected
        assert {v.report_id for v in results_for(actor, record)} == expected
        assert {v.report_id for s in latest_results_for(actor, record) for v in s.values} <= expected
        for doc in record.documents.all():
            if doc.pk not in reports:
                continue
            readable = decide(actor, Action.VIEW_DOCUMENT, doc).allowed
            try:
                get_lab_report_for(actor, reports[doc.pk], record=record)
                read = True
            except Http404:
                read = False
            assert read == readable, doc.title


def _grant_only_sees(world, doc_key: str, actor_user) -> bool:
    report = attach_report(world.docs[doc_key])
    actor = Actor(actor_user)
    listed = report.pk in set(reports_for(actor, report.record).values_list("pk", flat=True))
    values = {v.report_id for v in results_for(actor, report.record)}
    assert listed == (report.pk in values)
    return listed


RULES = [
    # (rule, document, who, sees it)
    ("matrix: a physiotherapist reads imaging (default cell)", "imaging", "kine", True),
    ("hidden from professionals", "hidden", "dr_grant", True),  # the author still sees
    ("hidden from professionals", "hidden_imaging", "kine", False),
    ("hidden: the médecin traitant sees", "hidden", "dr_house", True),
    ("hidden: break-glass does not reveal", "hidden", "urgentist", False),
    ("break-glass reads what is not hidden", "consultation", "urgentist", True),
    ("expired break-glass", "consultation", "late_urgentist", False),
    ("blocked professional", "consultation", "blocked_kine", False),
    ("blocked SAMU regulator", "consultation", "blocked_regulator", False),
    ("SAMU regulator", "consultation", "regulator", True),
    ("withheld from the patient", "withheld", "alice", False),
    ("released to the patient", "released", "alice", True),
    ("withheld: the author sees", "withheld", "dr_grant", True),
    ("hidden from representatives", "leo_confidential", "mother", False),
    ("the minor sees his own", "leo_confidential", "leo", True),
    ("representative: withheld too", "leo_withheld", "mother", False),
    ("no relation", "consultation", "stranger", False),
    ("counter agent reads nothing", "consultation", "agent", False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("rule", "doc_key", "persona", "sees"), RULES, ids=[r[0] + "-" + r[2] for r in RULES])
def test_each_rule_hides_values_exactly_where_it_hides_the_report(world, rule, doc_key, persona, sees):
    actor_user = user_of(world, persona)
    document = world.docs[doc_key]
    assert decide(Actor(actor_user), Action.VIEW_DOCUMENT, document).allowed == sees, rule
    assert _grant_only_sees(world, doc_key, actor_user) == sees, rule


@pytest.mark.django_db
def test_the_matrix_cell_of_biology_decides_for_a_lab_report(world):
    from dmp.models import MatrixEntry

    report = attach_report(world.docs["released"])  # a laboratory report
    actor = Actor(world.kine.user)
    seen_before = report.pk in set(reports_for(actor, world.record).values_list("pk", flat=True))
    MatrixEntry.objects.update_or_create(profession="physiotherapist", doc_type="lab_report",
                                         defaults={"allowed": not seen_before})
    actor = Actor(world.kine.user)  # a new request: the matrix is read again
    assert (report.pk in set(reports_for(actor, world.record).values_list("pk", flat=True))) != seen_before


@pytest.mark.django_db
def test_one_report_read_is_logged_as_its_documents_read_and_a_refusal_too(world):
    report = attach_report(world.docs["hidden"])
    before = AuditEntry.objects.count()
    get_lab_report_for(Actor(world.dr_house.user), report.pk, record=world.record)
    entry = AuditEntry.objects.order_by("-seq").first()
    assert (entry.action, entry.object_type, entry.object_id) == (Action.VIEW_DOCUMENT, "document",
                                                                   str(world.docs["hidden"].pk))
    with pytest.raises(Http404):
        get_lab_report_for(Actor(world.urgentist.user), report.pk)
    refused = AuditEntry.objects.order_by("-seq").first()
    assert not refused.allowed and refused.action == Action.VIEW_DOCUMENT
    with pytest.raises(Http404):
        get_lab_observation_for(Actor(world.urgentist.user), report.observations.get().pk)
    assert AuditEntry.objects.count() == before + 3


@pytest.mark.django_db
def test_an_entered_in_error_report_lists_no_value(world):
    report = attach_report(world.docs["consultation"])
    Document.objects.filter(pk=report.document_id).update(status=Document.Status.ENTERED_IN_ERROR)
    actor = Actor(world.dr_house.user)
    assert not results_for(actor, world.record).exists()


@pytest.mark.django_db
def test_latest_values_with_their_trend_in_one_query_whatever_the_number_of_reports(
        world, django_assert_num_queries):
    from tests.personas import make_document

    now = timezone.now()
    for i in range(30):
        doc = make_document(world.record, f"bilan {i}", "lab_report", author=world.dr_grant)
        attach_report(doc, values=((HBA1C, f"{6 + i / 10:.1f}", "%"), (CREATININE, str(80 + i), "umol/L")),
                      at=now - timedelta(days=90 * (30 - i)))
    actor = Actor(world.dr_house.user)
    documents_visible_to(actor, world.record)  # the standing and the matrix, as a page has them already
    with django_assert_num_queries(1):
        series = latest_results_for(actor, world.record, codes=[HBA1C, CREATININE, "2089-1"], length=5)
    assert [s.code for s in series] == [HBA1C, CREATININE]
    assert series[0].latest.quantity == Decimal("8.9") and len(series[0].previous) == 4
    assert [v.effective_at for v in series[0].oldest_first] == sorted(v.effective_at for v in series[0].values)


@pytest.mark.django_db
def test_values_by_code_and_period(world):
    now = timezone.now()
    attach_report(world.docs["consultation"], values=((HBA1C, "7.0", "%"),), at=now - timedelta(days=400))
    attach_report(world.docs["released"], values=((CREATININE, "90", "umol/L"),), at=now - timedelta(days=20),
                  interpretation="H")
    actor = Actor(world.dr_house.user)
    assert [v.code for v in results_for(actor, world.record, ResultFilters(codes=frozenset({HBA1C})))] == [HBA1C]
    recent = ResultFilters(date_from=(now - timedelta(days=90)).date())
    assert [v.code for v in results_for(actor, world.record, recent)] == [CREATININE]
    abnormal = results_for(actor, world.record, ResultFilters(abnormal_only=True))
    assert [v.is_abnormal for v in abnormal] == [True]


@pytest.mark.django_db
def test_break_glass_opened_now_reads_values_of_what_is_not_hidden(world):
    stranger = world.stranger
    CareAuthorisation.objects.create(record=world.record, professional=stranger,
                                     kind=CareAuthorisation.Kind.BREAK_GLASS, justification="Coma",
                                     expires_at=timezone.now() + timedelta(hours=1))
    visible = attach_report(world.docs["consultation"])
    hidden = attach_report(world.docs["hidden"])
    listed = set(reports_for(Actor(stranger.user), world.record).values_list("pk", flat=True))
    assert visible.pk in listed and hidden.pk not in listed
