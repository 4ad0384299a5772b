"""The médecin traitant's screens, through the views: the synthesis (read by professionals the
policy lets read it, written by the médecin traitant only, each save a new version with its
author and date; problems coded on the real ICD-10 list, with a picker), the record's access
history, and blocking a professional at the patient's request — and every refusal."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from dmp import icd10
from dmp.models import AuditEntry, Block, Synthesis
from dmp.policy import Actor
from dmp.services import synthesis_write
from dmp.services.synthesis import Problem
from tests.personas import user_of

pytestmark = pytest.mark.django_db


def _get(client, name, record, *args):
    return client.get(reverse(f"portal_pro:{name}", args=[record.pk, *args]))


def _page(response) -> str:
    return response.content.decode()


def _latest_version(record) -> int:
    latest = Synthesis.objects.filter(record=record).order_by("-version").first()
    return latest.version if latest else 0


def _edit(client, record, problems=(), base_version=None, **fields):
    """Save the form as if opened just now (from the latest version), unless `base_version`
    says which version the form was opened on."""
    base_version = _latest_version(record) if base_version is None else base_version
    data = {"save": "1", "base_version": str(base_version), "current_treatments": "", "allergies": "",
            "personal_history": "", "family_history": "", "vaccinations": "", "points_of_attention": "", **fields,
            "problem_icd10": [p[0] for p in problems], "problem_label": [p[1] for p in problems],
            "problem_since": [p[2] if len(p) > 2 else "" for p in problems]}
    return client.post(reverse("portal_pro:synthesis_edit", args=[record.pk]), data)


def _write(world, version_text="Metformine 1000 mg x2"):
    return synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                           problems=[Problem("E11", "Diabète de type 2")], current_treatments=version_text)


# -- reading -----------------------------------------------------------------------------------


def test_before_any_synthesis_the_treating_doctor_is_asked_to_write_it(client, world):
    client.force_login(world.dr_house.user)
    page = _page(_get(client, "synthesis", world.record))
    assert "No synthesis yet. As médecin traitant, you write it" in page
    assert reverse("portal_pro:synthesis_edit", args=[world.record.pk]) in page
    client.force_login(world.dr_grant.user)
    page = _page(_get(client, "synthesis", world.record))
    assert "has not written a synthesis yet" in page
    assert reverse("portal_pro:synthesis_edit", args=[world.record.pk]) not in page


@pytest.mark.parametrize("persona", ["dr_house", "dr_grant", "kine", "urgentist", "regulator"])
def test_professionals_the_policy_lets_read_the_synthesis_read_it(client, world, persona):
    _write(world)
    client.force_login(user_of(world, persona))
    response = _get(client, "synthesis", world.record)
    assert response.status_code == 200
    page = _page(response)
    assert "Diabète de type 2" in page and "E11" in page and "Metformine 1000 mg x2" in page
    assert "Version 1, written by Gregory House" in page
    assert AuditEntry.objects.filter(actor=user_of(world, persona), action="view_synthesis", allowed=True).count() == 1
    edit = reverse("portal_pro:synthesis_edit", args=[world.record.pk])
    assert (edit in page) == (persona == "dr_house")


@pytest.mark.parametrize("persona", ["stranger", "blocked_kine", "late_urgentist"])
def test_professionals_without_access_find_no_synthesis(client, world, persona):
    _write(world)
    client.force_login(user_of(world, persona))
    assert _get(client, "synthesis", world.record).status_code == 404
    assert _get(client, "synthesis_version", world.record, 1).status_code == 404


# -- writing: a new version each time ----------------------------------------------------------


def test_the_treating_doctor_writes_a_new_version_with_author_date_and_icd10_codes(client, world):
    _write(world)
    client.force_login(world.dr_house.user)
    form = _page(_get(client, "synthesis_edit", world.record))
    assert 'value="E11"' in form and "Metformine 1000 mg x2" in form  # starts from the latest version
    before = timezone.now()
    response = _edit(client, world.record, problems=[("E11.9", "Diabète de type 2", "2019-03-01"),
                                                      ("i10", ""), ("", "", "")],
                     current_treatments="Metformine 1000 mg x2\nRamipril 5 mg", allergies="Pénicilline",
                     points_of_attention="Chutes fréquentes")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal_pro:synthesis", args=[world.record.pk])
    latest = Synthesis.objects.filter(record=world.record).latest()
    assert latest.version == 2 and latest.author == world.dr_house and latest.created_at >= before
    assert latest.allergies == "Pénicilline" and "Ramipril" in latest.current_treatments
    # Sorted in Python: the codes are encrypted at rest, the database cannot order them.
    assert sorted((p.icd10, p.label, p.since and p.since.isoformat()) for p in latest.problems.all()) == [
        ("E11.9", "Diabète de type 2", "2019-03-01"),
        ("I10", "Essential (primary) hypertension", None),  # no label typed: the WHO's
    ]
    # One for the version written before (through the service), one for this one.
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="edit_synthesis", allowed=True).count() == 2
    page = _page(client.get(response["Location"]))
    assert "Version 2 of the synthesis is saved." in page
    assert "Version 2, written by Gregory House" in page and "Pénicilline" in page
    old = reverse("portal_pro:synthesis_version", args=[world.record.pk, 1])
    assert old in page  # the earlier version is listed…
    old_page = _page(client.get(old))  # …and readable
    assert "This is version 1, an earlier one: the current synthesis is version 2." in old_page
    assert "Ramipril" not in old_page and "Metformine 1000 mg x2" in old_page
    assert _get(client, "synthesis_version", world.record, 9).status_code == 404


def test_the_first_version_is_written_from_an_empty_form(client, world):
    client.force_login(world.dr_house.user)
    assert "Saving writes the first version under your name." in _page(_get(client, "synthesis_edit", world.record))
    assert _edit(client, world.record, vaccinations="DTP 2020").status_code == 302
    assert Synthesis.objects.get(record=world.record).version == 1


@pytest.mark.parametrize("code, message", [
    ("E99.99", "E99.99 is not an ICD-10 diagnosis code."),
    ("XYZ", "XYZ is not an ICD-10 diagnosis code."),
    ("E10-E14", "E10-E14 is not an ICD-10 diagnosis code."),  # a block of the classification
    ("IV", "IV is not an ICD-10 diagnosis code."),  # a chapter
    ("", "Give the problem its ICD-10 code"),  # a label without a code
])
def test_a_bad_code_is_refused_and_nothing_is_saved(client, world, code, message):
    _write(world)
    client.force_login(world.dr_house.user)
    response = _edit(client, world.record, problems=[("E11", "Diabète"), (code, "Quelque chose")],
                     current_treatments="Nouveau traitement")
    assert response.status_code == 400
    page = _page(response)
    assert message in page and "Correct the problems marked below." in page
    assert "Nouveau traitement" in page  # what was typed stays
    assert Synthesis.objects.filter(record=world.record).count() == 1


def test_the_same_problem_code_twice_is_refused_with_the_row_marked_and_nothing_saved(client, world):
    _write(world)
    client.force_login(world.dr_house.user)
    response = _edit(client, world.record, problems=[("E11", "Diabète"), ("I10", "HTA"), ("e11", "Diabète bis")],
                     current_treatments="Nouveau traitement")
    assert response.status_code == 400
    page = _page(response)
    assert "E11 is already in the list above: remove this row or change its code." in page
    assert "Nouveau traitement" in page and "Diabète bis" in page  # what was typed stays
    assert Synthesis.objects.filter(record=world.record).count() == 1


def test_the_service_refuses_the_same_code_twice_whatever_its_spelling(world):
    from dmp.services import InvalidInput, InvalidInputCode

    with pytest.raises(InvalidInput) as refused:
        synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                        problems=[Problem("E11.9", "Diabète"), Problem("e119", "Encore")], current_treatments="x")
    assert refused.value.code == InvalidInputCode.DUPLICATE and "E11.9" in str(refused.value)
    assert not Synthesis.objects.exists()


def test_picking_a_code_already_listed_does_not_list_it_twice(client, world):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:synthesis_edit", args=[world.record.pk])
    base = {"current_treatments": "", "problem_icd10": ["E11"], "problem_label": ["Diabète"], "problem_since": [""]}
    picked = _page(client.post(url, {**base, "pick": "E11", "icd10_term": "diabetes"}))
    assert re.findall(r'name="problem_icd10" value="([^"]*)"', picked).count("E11") == 1


def test_an_empty_synthesis_is_refused(client, world):
    client.force_login(world.dr_house.user)
    response = _edit(client, world.record)
    assert response.status_code == 400 and "The synthesis is empty." in _page(response)
    assert not Synthesis.objects.exists()


@pytest.mark.parametrize("persona", ["dr_grant", "kine", "urgentist", "regulator", "stranger"])
def test_only_the_treating_doctor_writes_the_synthesis(client, world, persona):
    _write(world)
    client.force_login(user_of(world, persona))
    assert _get(client, "synthesis_edit", world.record).status_code == 404
    assert _edit(client, world.record, problems=[("E11", "x")], current_treatments="x").status_code == 404
    assert Synthesis.objects.filter(record=world.record).count() == 1
    assert AuditEntry.objects.filter(actor=user_of(world, persona), action__in=("edit_synthesis", "view_record"),
                                     allowed=False).exists()


def test_the_patient_cannot_use_the_professional_form(client, world):
    client.force_login(world.alice)
    assert _get(client, "synthesis", world.record).status_code == 403
    assert _edit(client, world.record, current_treatments="x").status_code == 403


# -- the ICD-10 picker ---------------------------------------------------------------------------


def test_the_code_list_is_the_real_icd10():
    assert len(icd10.search("E11", limit=100)) > 10  # E11 and its subcategories
    assert icd10.search("E11")[0] == icd10.Code("E11", "Type 2 diabetes mellitus")
    assert "E11" in [c.code for c in icd10.search("diabetes")]
    assert "E11" in [c.code for c in icd10.search("type 2 diab")]
    assert icd10.search("e11.9")[0].code == "E11.9"
    assert icd10.normalise(" e119 ") == "E11.9" and icd10.is_diagnosis("J45") and not icd10.is_diagnosis("J45-J46")
    assert icd10.search("d") == []  # one letter is too little to search


def test_the_picker_endpoint_finds_codes_by_code_or_words_by_post(client, world):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:icd10_search")
    by_code = client.post(url, {"term": "E11"}).json()["results"]
    assert by_code[0] == {"code": "E11", "label": "Type 2 diabetes mellitus"}
    by_words = [r["code"] for r in client.post(url, {"term": "diabetes"}).json()["results"]]
    assert {"E10", "E11"} <= set(by_words)
    assert client.get(url, {"term": "diabetes"}).status_code == 405  # a diagnosis never goes in a URL
    client.force_login(world.alice)
    assert client.post(url, {"term": "E11"}).status_code == 403


def test_without_javascript_find_and_pick_fill_a_problem_row_keeping_what_was_typed(client, world):
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:synthesis_edit", args=[world.record.pk])
    base = {"current_treatments": "Insuline", "problem_icd10": ["I10"], "problem_label": ["HTA"],
            "problem_since": [""]}
    found = client.post(url, {**base, "find": "1", "icd10_term": "diabetes"})
    page = _page(found)
    assert found.status_code == 200 and 'name="pick" value="E11"' in page and "Insuline" in page
    picked = _page(client.post(url, {**base, "pick": "E11", "icd10_term": "diabetes"}))
    rows = re.findall(r'name="problem_icd10" value="([^"]*)"', picked)
    assert rows[:2] == ["I10", "E11"] and 'value="Type 2 diabetes mellitus"' in picked
    assert not Synthesis.objects.exists()  # nothing saved until "Save"


# -- the access history and blocking --------------------------------------------------------------


def test_the_treating_doctor_reads_the_access_history(client, world):
    client.force_login(world.dr_grant.user)
    _get(client, "record", world.record)
    client.force_login(world.urgentist.user)
    _get(client, "record", world.record)
    client.force_login(world.dr_house.user)
    response = _get(client, "history", world.record)
    assert response.status_code == 200
    page = _page(response)
    assert "Anna Grant" in page and "Ursula Urgences" in page
    assert "Emergency and SAMU accesses" in page
    assert reverse("portal_pro:history", args=[world.record.pk]) in _page(_get(client, "documents", world.record))
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="view_access_history", allowed=True).exists()


@pytest.mark.parametrize("persona", ["dr_grant", "kine", "urgentist", "regulator", "stranger"])
def test_other_professionals_cannot_read_the_history(client, world, persona):
    client.force_login(user_of(world, persona))
    assert _get(client, "history", world.record).status_code == 404
    if persona != "stranger":  # the history tab is not offered to them either
        page = _page(_get(client, "documents", world.record))
        assert reverse("portal_pro:history", args=[world.record.pk]) not in page


def test_the_history_costs_the_same_queries_whatever_its_length(client, world, django_assert_max_num_queries):
    client.force_login(world.dr_house.user)
    _get(client, "history", world.record)
    with django_assert_max_num_queries(40) as few:
        _get(client, "history", world.record)
    queries = len(few)
    other = client.__class__(headers={"Accept-Language": "en"})
    other.force_login(world.dr_grant.user)
    for _i in range(30):
        _get(other, "documents", world.record)
    with django_assert_max_num_queries(queries):
        assert _get(client, "history", world.record).status_code == 200


def _block(client, record, rpps, patient_asked=True):
    data = {"rpps": rpps, **({"patient_asked": "on"} if patient_asked else {})}
    return client.post(reverse("portal_pro:professional_block", args=[record.pk]), data)


def test_the_treating_doctor_blocks_a_professional_at_the_patients_request(client, world):
    client.force_login(world.dr_house.user)
    response = _block(client, world.record, f" {world.dr_grant.rpps} ")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal_pro:history", args=[world.record.pk])
    block = Block.objects.active().get(record=world.record, professional=world.dr_grant)
    assert block.created_by == world.dr_house.user
    assert "is blocked at the patient&#x27;s request" in _page(client.get(response["Location"]))
    assert AuditEntry.objects.filter(actor=world.dr_house.user, action="block_professional", allowed=True).exists()
    client.force_login(world.dr_grant.user)
    for name in ("record", "documents", "synthesis"):
        assert _get(client, name, world.record).status_code == 404


@pytest.mark.parametrize("rpps, asked, message", [
    ("", True, "This field is required."),
    ("12345", True, "RPPS"),
    ("10999999990", True, None),  # a well-formed number nobody has, or a bad key
    (None, False, "tick the box to confirm that they asked"),
    ("self", True, "You cannot block yourself."),
])
def test_a_block_needs_a_known_rpps_and_the_patients_request(client, world, rpps, asked, message):
    rpps = {None: world.kine.rpps, "self": world.dr_house.rpps}.get(rpps, rpps)
    client.force_login(world.dr_house.user)
    response = _block(client, world.record, rpps, patient_asked=asked)
    assert response.status_code == 400
    if message:
        assert message in _page(response)
    assert not Block.objects.filter(record=world.record, created_by=world.dr_house.user).exists()


@pytest.mark.parametrize("persona", ["dr_grant", "kine", "urgentist", "stranger"])
def test_only_the_treating_doctor_blocks_from_the_professional_portal(client, world, persona):
    client.force_login(user_of(world, persona))
    assert _block(client, world.record, world.dr_house.rpps).status_code == 404
    assert not Block.objects.filter(record=world.record, professional=world.dr_house).exists()
