"""The demo's chronic patient as dr.bernard, her médecin traitant, opens her: the patient screen
with her latest results (issue 18, "Done means": the latest HbA1c and creatinine with their dates
and trends and the one abnormal value flagged), its one-page PDF with the same rows and what
matters of her synthesis, and her International Patient Summary, valid against the IPS profiles.
One seed for every check: seeding renders a few dozen PDFs, doing it per check would multiply
the run time for nothing."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import formats, timezone, translation

from dmp import demo, fhir
from dmp.models import Record, User
from tests.test_fhir_ips import _codes, _section, _summary, validate
from tests.test_pro_patient_screen import SCREEN_QUERIES, _pdf

LAST_DAYS_AGO, LAST = demo.LAB_RESULTS[-1]
_, BEFORE = demo.LAB_RESULTS[-2]


@pytest.fixture(autouse=True)
def _demo_document_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "documents"


def _fr(value: str) -> str:
    with translation.override("fr"):
        return formats.localize(Decimal(value))


def _last_day() -> str:
    with translation.override("fr"):
        return formats.date_format(timezone.localdate() - timedelta(days=LAST_DAYS_AGO), "SHORT_DATE_FORMAT")


def _rows(page: str) -> dict[str, str]:
    """The screen's results block, row by row, by the analyte's name."""
    block = page.split('class="ps-box ps-results"')[1].split("</section>")[0]
    rows = re.findall(r"<tr[^>]*>\s*<th scope=\"row\">([^<]+)</th>(.*?)</tr>", block, re.S)
    return {name: row for name, row in rows}


@pytest.mark.slow
@pytest.mark.django_db
def test_dr_bernard_reads_the_demo_patient_on_her_screen_its_pdf_and_her_summary(
        client, django_assert_max_num_queries):
    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    doctor = User.objects.get(username=demo.GP_TREATING)
    assert doctor.preferred_language == "fr"
    client.force_login(doctor)
    screen = reverse("portal_pro:record", args=[record.pk])
    client.get(screen)  # the session's renewal and the day's first read: not what is measured
    with django_assert_max_num_queries(SCREEN_QUERIES):
        response = client.get(screen)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    rows = _rows(page)
    hba1c, creatinine = rows["HbA1c"], rows["Créatinine"]
    assert f"{_fr(LAST['hba1c'])} %" in hba1c.split("<svg")[0] and _last_day() in hba1c
    assert f"{_fr(LAST['creatinine'])} µmol/L" in creatinine.split("<svg")[0] and _last_day() in creatinine
    for row, key, unit in ((hba1c, "hba1c", "%"), (creatinine, "creatinine", "µmol/L")):
        trend = row.split('<svg class="trend"')[1]
        assert 'role="img"' in trend and f"{_fr(BEFORE[key])} {unit}" in trend.split("<title>")[1]
    # The one abnormal value of two years, flagged in words and with an arrow; no other.
    flagged = [name for name, row in rows.items() if "flag-result" in row]
    assert flagged == ["Potassium"]
    assert f"{_fr(LAST['potassium'])} mmol/L" in rows["Potassium"] and "↑" in rows["Potassium"]
    assert "flag-result" not in hba1c and "flag-result" not in creatinine

    reader = _pdf(client, record)  # answered as a download of its own, named without her name
    assert len(reader.pages) == 1
    text = " ".join(reader.pages[0].extract_text().split())
    assert "LAMBERT" in text and "E11.9" in text and "Pénicilline" in text
    assert "Derniers résultats" in text
    assert f"HbA1c {_fr(LAST['hba1c'])} % {_last_day()} avant : {_fr(BEFORE['hba1c'])}" in text
    assert f"Créatinine {_fr(LAST['creatinine'])} µmol/L {_last_day()}" in text
    assert f"{_fr(LAST['potassium'])} mmol/L ↑" in text

    # Her summary, as the FHIR API gives it to him.
    bundle = _summary(client, record, doctor.professional)
    assert validate({"chronic": bundle})["chronic"]["errors"] == []
    # 3 treatments of the synthesis and the 3 medicines dispensed every month, each once: not 73.
    medications = _section(bundle, fhir.IPS_MEDICATIONS[0])
    assert len(medications) == 6
    assert {c for m in medications for c in _codes(m["medicationCodeableConcept"]) if c[0] == fhir.ATC_SYSTEM} == {
        (fhir.ATC_SYSTEM, "A10BA02"), (fhir.ATC_SYSTEM, "C09AA05"), (fhir.ATC_SYSTEM, "C10AA05")}
    # The penicillin allergy the synthesis and the patient both state is one allergy, coded.
    [allergy] = _section(bundle, fhir.IPS_ALLERGIES[0])
    assert _codes(allergy["code"]) == {(fhir.SNOMED_SYSTEM, "764146007")}
    assert all(_codes(i["vaccineCode"]) for i in _section(bundle, fhir.IPS_IMMUNIZATIONS[0]))
