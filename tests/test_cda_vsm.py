"""The médecin traitant's synthesis as a CDA R2 VSM document (docs/cda.md "The VSM export"):
downloaded from the synthesis pages of both portals through the policy and logged as a read of
the synthesis; a well-formed document our own parser accepts, whose header names the right
patient and the author's RPPS, whose problems carry their ICD-10 codes, and in which whatever
the doctor typed is escaped, never markup."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from dmp.cda.hardened import NS, check_structure, parse
from dmp.cda.header import INS_NIR_ROOTS, PROVISIONAL_ID_ROOT, header_of
from dmp.cda.reading import read
from dmp.file_safety import check_file
from dmp.models import AuditEntry, DocumentType
from dmp.models.record import nir_key
from dmp.policy import Action, Actor
from dmp.services import synthesis_write
from dmp.services.synthesis import Problem

pytestmark = pytest.mark.django_db

NIR13 = "2700575123456"
NIR = f"{NIR13}{nir_key(NIR13):02d}"
TRICKY = 'Ne pas associer <b>AINS</b> & "anticoagulants" </text><script>alert(1)</script>'


def _write(world, **fields):
    fields.setdefault("problems", [Problem("E11.9", "Diabète de type 2", date(2019, 4, 1)),
                                   Problem("I10", "Hypertension artérielle")])
    return synthesis_write(actor=Actor(world.dr_house.user), record=world.record, **fields)


def _download(client, user, portal, record):
    client.force_login(user)
    return client.get(reverse(f"portal_{portal}:synthesis_cda", args=[record.pk]))


def test_the_treating_doctor_downloads_a_vsm_our_parser_reads_back(client, world):
    world.record.nir = NIR
    world.record.save(update_fields=["nir"])
    _write(world, current_treatments="Metformine 1000 mg\nRamipril 5 mg", vaccinations="DTP 2021")
    response = _download(client, world.dr_house.user, "pro", world.record)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == 'attachment; filename="synthesis-v1.xml"'
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    content = response.content
    checked = check_file(content, scan=False)  # the same check as any CDA sent to a record
    assert checked.mime == "application/xml" and checked.content == content
    assert "Diabète de type 2" in checked.text  # its words for the search
    header = header_of(content)
    assert header.level == 3
    assert header.doc_type == DocumentType.SYNTHESIS  # "SYNTH", as the ANS VSM example codes it
    assert "1.2.250.1.213.1.1.1.13" in header.templates
    assert header.patient_ids == ((INS_NIR_ROOTS[0], NIR),)
    assert header.is_about(world.record)
    assert [(a.rpps, a.name) for a in header.authors] == [
        (world.dr_house.rpps, world.dr_house.user.get_full_name())]
    assert header.act_date == timezone.localdate() and header.confidentiality == "N"
    html = read(content).html
    assert "Ramipril 5 mg" in html and "Vaccinations" in html and "Diabète de type 2" in html


def test_the_problems_carry_their_icd10_codes_in_coded_entries(client, world):
    _write(world)
    root = parse(_download(client, world.dr_house.user, "pro", world.record).content)
    values = root.findall(".//h:entry/h:act/h:entryRelationship/h:observation/h:value", NS)
    assert [(v.get("code"), v.get("codeSystem"), v.get("displayName")) for v in values] == [
        ("E11.9", "2.16.840.1.113883.6.3", "Diabète de type 2"),
        ("I10", "2.16.840.1.113883.6.3", "Hypertension artérielle")]
    assert root.find(".//h:entry/h:act/h:effectiveTime/h:low", NS).get("value") == "20190401"
    # Without vaccinations in the synthesis, no vaccination section.
    assert not [t for t in root.iterfind(".//h:section/h:title", NS) if t.text == "Vaccinations"]


def test_without_a_nir_the_patient_is_named_by_the_provisional_identifier(client, world):
    assert not world.record.nir
    _write(world)
    header = header_of(_download(client, world.dr_house.user, "pro", world.record).content)
    assert header.patient_ids == ((PROVISIONAL_ID_ROOT, world.record.provisional_id),)
    assert header.is_about(world.record)


def test_what_the_doctor_typed_is_text_never_markup(client, world):
    _write(world, points_of_attention=TRICKY, problems=[Problem("I10", 'HTA "sévère" <instable> & suivie')])
    content = _download(client, world.dr_house.user, "pro", world.record).content
    assert b"<script>" not in content and b"<b>AINS" not in content
    assert b"&lt;b&gt;AINS&lt;/b&gt; &amp; \"anticoagulants\" &lt;/text&gt;&lt;script&gt;" in content
    root = parse(content)
    check_structure(root)
    paragraphs = ["".join(p.itertext()) for p in root.iterfind(".//h:section/h:text/h:paragraph", NS)]
    assert TRICKY in paragraphs
    value = root.find(".//h:observation/h:value", NS)
    assert value.get("displayName") == 'HTA "sévère" <instable> & suivie'
    assert "<script>" not in read(content).html


def test_the_patient_downloads_it_from_their_synthesis_page(client, world):
    _write(world)
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:synthesis", args=[world.record.pk])).content.decode()
    url = reverse("portal_patient:synthesis_cda", args=[world.record.pk])
    assert url in page
    response = client.get(url)
    assert response.status_code == 200
    assert header_of(response.content).is_about(world.record)


def test_the_professional_synthesis_page_offers_the_download(client, world):
    _write(world)
    client.force_login(world.dr_house.user)
    page = client.get(reverse("portal_pro:synthesis", args=[world.record.pk])).content.decode()
    assert reverse("portal_pro:synthesis_cda", args=[world.record.pk]) in page


def test_the_download_is_logged_as_a_read_of_the_synthesis(client, world):
    _write(world)
    reads = AuditEntry.objects.filter(action=Action.VIEW_SYNTHESIS, allowed=True, actor=world.dr_house.user,
                                      record_id_ref=world.record.pk)
    before = reads.count()
    assert _download(client, world.dr_house.user, "pro", world.record).status_code == 200
    assert reads.count() == before + 1


@pytest.mark.parametrize(("persona", "portal", "status"), [
    ("stranger", "pro", 404),  # a GP with no standing on the record
    ("agent", "pro", 403),  # a counter agent: not a professional
    ("agent", "patient", 403),  # nor the patient
    ("dr_grant", "patient", 403),  # a professional on the patient's portal
])
def test_those_who_may_not_read_the_synthesis_get_nothing(client, world, persona, portal, status):
    _write(world)
    person = getattr(world, persona)
    response = _download(client, getattr(person, "user", person), portal, world.record)
    assert response.status_code == status
    assert b"ClinicalDocument" not in response.content


def test_a_refusal_is_logged(client, world):
    _write(world)
    _download(client, world.stranger.user, "pro", world.record)
    assert AuditEntry.objects.filter(actor=world.stranger.user, allowed=False, record_id_ref=world.record.pk).exists()


def test_no_synthesis_yet_is_404(client, world):
    assert _download(client, world.dr_house.user, "pro", world.record).status_code == 404
    assert _download(client, world.alice, "patient", world.record).status_code == 404


def test_the_document_is_well_formed_utf8_with_the_vsm_sections(client, world):
    _write(world, allergies="Pénicilline", family_history="Père : infarctus à 50 ans")
    content = _download(client, world.dr_house.user, "pro", world.record).content
    assert content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(content)  # noqa: S320 - our own output
    templates = {t.get("root") for t in root.iterfind(".//h:section/h:templateId", NS)}
    # The sections the ANS VSM schematron requires, and the active problems'.
    assert {"1.2.250.1.213.1.1.2.29", "1.3.6.1.4.1.19376.1.5.3.1.3.27", "1.3.6.1.4.1.19376.1.5.3.1.3.6"} <= templates
    assert root.find("h:author/h:assignedAuthor/h:id", NS).get("extension") == f"8{world.dr_house.rpps}"
