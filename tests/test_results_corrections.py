"""A laboratory's correction (docs/results.md, "Corrections"): the same report identifier sent
again as `corrected` or `amended` with other values is a new version of the report's document
and of the report; the values it corrects are no longer the latest, nor in the trend. The same
correction twice makes nothing new; a `final` report sent again stays a duplicate; only the
report's author corrects it; the patient's choices on the report carry over."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from dmp.models import AuditEntry, Document, LabObservation, LabReport, ResultStatus
from dmp.policy import Action, Actor
from dmp.services import document_archive_set, document_visibility_set, synthesis_write
from dmp.services.synthesis import Problem
from tests.results_helpers import CREATININE, HBA1C, lab_bundle, quantity
from tests.test_results_api import _get, _post

pytestmark = pytest.mark.django_db
# One sampling time for every copy: the time is part of what a report says.
EFFECTIVE = (timezone.now() - timedelta(days=30)).isoformat(timespec="seconds")


def _bundle(world, hba1c: str, status: str = "final") -> dict:
    """Report CR-0001, its HbA1c and creatinine, as `status` (the report and its values)."""
    bundle = lab_bundle(world.record.pk, [quantity(HBA1C, hba1c, "%", display="HbA1c"),
                                          quantity(CREATININE, "88", "umol/L")], effective=EFFECTIVE)
    for entry in bundle["entry"]:
        entry["resource"]["status"] = status
    return bundle


def _send(client, world, hba1c: str, status: str = "final", pro=None) -> list[str]:
    response = _post(client, pro or world.dr_grant, _bundle(world, hba1c, status))
    assert response.status_code == 200, response.content[:800]
    return [(e.response.status, e.response.location) for e in Bundle.model_validate(response.json()).entry]


def _hba1c_values(client, world, pro) -> list[float]:
    found = _get(client, pro, f"/fhir/Observation?patient={world.record.pk}&code={HBA1C}").json()
    return [e["resource"]["valueQuantity"]["value"] for e in found.get("entry", [])]


@pytest.mark.parametrize("status", [ResultStatus.CORRECTED, ResultStatus.AMENDED])
def test_a_correction_is_a_new_version_whose_values_replace_the_old_ones(client, world, status):
    [(_, first), *_rest] = _send(client, world, "9.4")
    answers = _send(client, world, "6.4", status)
    assert [s for s, _location in answers] == ["201 Created"] * 3
    old, new = LabReport.objects.order_by("version")
    assert answers[0][1] == f"DiagnosticReport/{new.pk}" != first
    assert (old.version, new.version, new.status) == (1, 2, status)
    assert new.document.replaces == old.document and not Document.objects.get(pk=old.document_id).is_latest_version
    assert AuditEntry.objects.filter(action=Action.REPLACE_DOCUMENT, object_id=str(old.document_id),
                                     allowed=True).count() == 1
    # Through the API: only the corrected value; the old report stays readable by its id, as
    # an old version of a document does.
    assert _hba1c_values(client, world, world.dr_house) == [6.4]
    found = _get(client, world.dr_house, f"/fhir/DiagnosticReport?patient={world.record.pk}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [str(new.pk)]
    assert _get(client, world.dr_house, f"/fhir/DiagnosticReport/{old.pk}").status_code == 200


def test_the_screen_and_its_trend_show_the_corrected_value_only(client, world):
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, problems=[Problem("E11.9", "Diabetes")])
    _send(client, world, "9.4")
    _send(client, world, "6.4", ResultStatus.CORRECTED)
    client.force_login(world.dr_house.user)
    page = html.unescape(client.get(reverse("portal_pro:record", args=[world.record.pk])).content.decode())
    block = page.split('class="ps-box ps-results"')[1].split("</section>")[0]
    row = block.split("HbA1c</th>")[1].split("</tr>")[0]
    assert "6.4 %" in row and "9.4" not in row  # neither the latest nor a point of the trend
    page = html.unescape(client.get(reverse("portal_pro:results", args=[world.record.pk])).content.decode())
    assert "6.4 %" in page and "9.4" not in page


def test_the_same_correction_twice_makes_nothing_new(client, world):
    _send(client, world, "9.4")
    corrected = _send(client, world, "6.4", ResultStatus.CORRECTED)
    again = _send(client, world, "6.4", ResultStatus.CORRECTED)
    assert [s for s, _location in again] == ["200 OK"] * 3 and again[0][1] == corrected[0][1]
    assert LabReport.objects.count() == 2 and LabObservation.objects.count() == 4
    assert AuditEntry.objects.filter(action=Action.REPLACE_DOCUMENT).count() == 1


def test_a_final_report_sent_again_with_other_values_stays_a_duplicate(client, world):
    first = _send(client, world, "9.4")
    again = _send(client, world, "6.4")
    assert again == [("200 OK", location) for _status, location in first]
    assert LabReport.objects.count() == 1
    assert LabObservation.objects.get(code=HBA1C).quantity == Decimal("9.4")
    # After a correction, a late `final` copy of the first one changes nothing either.
    _send(client, world, "6.4", ResultStatus.CORRECTED)
    _send(client, world, "9.4")
    assert _hba1c_values(client, world, world.dr_house) == [6.4]


def test_only_the_reports_author_corrects_it(client, world):
    _send(client, world, "9.4")
    response = _post(client, world.dr_house, _bundle(world, "6.4", ResultStatus.CORRECTED))
    assert response.status_code == 403, response.content[:400]
    assert LabReport.objects.count() == 1 and _hba1c_values(client, world, world.dr_house) == [9.4]
    assert AuditEntry.objects.filter(action=Action.REPLACE_DOCUMENT, allowed=False).exists()


def test_a_correction_keeps_what_the_patient_hid(client, world):
    _send(client, world, "9.4")
    document_visibility_set(actor=Actor(world.alice), document=LabReport.objects.get().document, hidden=True)
    _send(client, world, "6.4", ResultStatus.CORRECTED)
    corrected = LabReport.objects.get(version=2).document
    assert corrected.hidden_from_professionals
    assert _hba1c_values(client, world, world.urgentist) == []  # a break-glass never shows hidden documents
    assert _hba1c_values(client, world, world.dr_house) == [6.4]  # the médecin traitant still sees


def test_a_correction_without_an_identifier_is_a_new_report(client, world):
    """Nothing names what it corrects: it is another report (with other values)."""
    for hba1c, status in (("9.4", "final"), ("6.4", ResultStatus.CORRECTED)):
        bundle = _bundle(world, hba1c, status)
        del bundle["entry"][0]["resource"]["identifier"]
        assert _post(client, world.dr_grant, bundle).status_code == 200
    assert list(LabReport.objects.values_list("version", flat=True)) == [1, 1]
    assert sorted(_hba1c_values(client, world, world.dr_house)) == [6.4, 9.4]


def test_a_correction_of_a_withheld_report_is_withheld_until_the_same_day(client, world):
    _send(client, world, "9.4")
    until = timezone.now() + timedelta(days=7)
    Document.objects.filter(pk=LabReport.objects.get().document_id).update(withheld_from_patient_until=until)
    _send(client, world, "6.4", ResultStatus.CORRECTED)
    assert LabReport.objects.get(version=2).document.withheld_from_patient_until == until
    client.force_login(world.alice)
    response = client.get(reverse("portal_patient:results", args=[world.record.pk]))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "6.4" not in page and "6,4" not in page and "9.4" not in page


def test_a_correction_of_a_report_the_patient_archived_is_refused(client, world):
    """An archived document is frozen (docs/results.md, "Not done yet"): the laboratory is told."""
    _send(client, world, "9.4")
    document_archive_set(actor=Actor(world.alice), document=LabReport.objects.get().document, archived=True)
    response = _post(client, world.dr_grant, _bundle(world, "6.4", ResultStatus.CORRECTED))
    assert response.status_code == 403 and LabReport.objects.count() == 1
