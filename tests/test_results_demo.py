"""The demo patient's results as dr.bernard opens them (issue 18, "Done means"): on the patient
screen, the latest HbA1c and creatinine with their dates and trends and the one abnormal value
flagged; on its one-page PDF, the same rows. One seed for every check: seeding renders a few
dozen PDFs, doing it per check would multiply the file's run time for nothing."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import formats, timezone, translation
from pypdf import PdfReader

from dmp import demo
from dmp.models import Record, User
from tests.test_pro_patient_screen import SCREEN_QUERIES

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
def test_dr_bernard_sees_the_demo_patients_latest_results_on_the_screen_and_its_pdf(
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

    response = client.get(reverse("portal_pro:record_pdf", args=[record.pk]))
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    text = " ".join(reader.pages[0].extract_text().split())
    assert "Derniers résultats" in text
    assert f"HbA1c {_fr(LAST['hba1c'])} % {_last_day()} avant : {_fr(BEFORE['hba1c'])}" in text
    assert f"Créatinine {_fr(LAST['creatinine'])} µmol/L {_last_day()}" in text
    assert f"{_fr(LAST['potassium'])} mmol/L ↑" in text
