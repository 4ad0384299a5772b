"""Optimistic concurrency on shared medical data: a form carries the version it was opened on,
and saving over a newer one is refused with both sides shown, never a silent overwrite. The
synthesis (two tabs of the médecin traitant, two concurrent first saves), then the personal
data sections the patient and their representative edit."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection, connections
from django.urls import reverse

from dmp.models import Synthesis
from dmp.policy import Actor
from dmp.services import EditConflict, InvalidInput, InvalidInputCode, synthesis_write
from dmp.services.synthesis import Problem

pytestmark = pytest.mark.django_db

EDIT = "portal_pro:synthesis_edit"
TEXT_FIELDS = ("current_treatments", "allergies", "personal_history", "family_history", "vaccinations",
               "points_of_attention")


def _page(response) -> str:
    return response.content.decode()


def _opened(client, record) -> dict:
    """The edit form as a tab shows it: every field with its value, the hidden base version."""
    form = client.get(reverse(EDIT, args=[record.pk])).context["form"]
    data = {name: form[name].value() or "" for name in TEXT_FIELDS}
    data["base_version"] = form["base_version"].value()
    return {**data, "problem_icd10": ["E11"], "problem_label": ["Diabète de type 2"], "problem_since": [""]}


def _save(client, record, data):
    return client.post(reverse(EDIT, args=[record.pk]), {**data, "save": "1"})


def _latest(record) -> Synthesis:
    return Synthesis.objects.filter(record=record).latest()


def _first_version(world):
    return synthesis_write(actor=Actor(world.dr_house.user), record=world.record, base_version=0,
                           problems=[Problem("E11", "Diabète de type 2")], current_treatments="Metformine 1000 mg x2")


def test_two_tabs_the_second_save_is_refused_with_both_versions_and_the_merge_keeps_both(client, world):
    _first_version(world)
    client.force_login(world.dr_house.user)
    first_tab, second_tab = _opened(client, world.record), _opened(client, world.record)
    assert first_tab["base_version"] == second_tab["base_version"] == 1
    # The first tab adds an allergy and is saved.
    assert _save(client, world.record, {**first_tab, "allergies": "Pénicilline (urticaire)"}).status_code == 302
    # The second tab, opened before, changes the treatments: refused, nothing overwritten.
    typed = {**second_tab, "current_treatments": "Metformine 1000 mg x2\nRamipril 5 mg",
             "problem_icd10": ["E11", "I10"], "problem_label": ["Diabète de type 2", "HTA"],
             "problem_since": ["", ""]}
    refused = _save(client, world.record, typed)
    assert refused.status_code == 409
    assert _latest(world.record).version == 2
    assert _latest(world.record).allergies == "Pénicilline (urticaire)"  # the first save's allergy stays
    page = _page(refused)
    assert "Version 2 of the synthesis was saved after you opened this form" in page
    # Both sides, field by field: the saved allergy beside the typed (empty) one, the typed
    # treatments and problems beside the saved ones; the author's text kept in the form.
    compare = page[page.index('class="compare"'):page.index("</table>", page.index('class="compare"'))]
    assert "Pénicilline (urticaire)" in compare and "Ramipril 5 mg" in compare and "I10 HTA" in compare
    assert compare.count('class="differs"') == 3  # problems, treatments, allergies
    assert re.search(r'<textarea name="current_treatments"[^>]*>\s*Metformine 1000 mg x2\s+Ramipril 5 mg</textarea>',
                     page)
    assert re.findall(r'name="problem_icd10" value="([^"]*)"', page)[:2] == ["E11", "I10"]
    form = refused.context["form"]
    assert form["base_version"].value() == "2"  # the merged form starts from the newer version
    # The author merges (keeps the allergy) and saves again: version 3 holds both.
    merged = {**typed, "base_version": form["base_version"].value(), "allergies": "Pénicilline (urticaire)"}
    assert _save(client, world.record, merged).status_code == 302
    latest = _latest(world.record)
    assert latest.version == 3 and latest.allergies == "Pénicilline (urticaire)"
    assert "Ramipril 5 mg" in latest.current_treatments
    assert sorted(p.icd10 for p in latest.problems.all()) == ["E11", "I10"]


def test_two_first_versions_the_second_is_refused(client, world):
    client.force_login(world.dr_house.user)
    first_tab, second_tab = _opened(client, world.record), _opened(client, world.record)
    assert first_tab["base_version"] == second_tab["base_version"] == 0
    assert _save(client, world.record, {**first_tab, "allergies": "Latex"}).status_code == 302
    refused = _save(client, world.record, {**second_tab, "vaccinations": "DTP 2020"})
    assert refused.status_code == 409
    assert Synthesis.objects.filter(record=world.record).count() == 1
    assert _latest(world.record).allergies == "Latex"
    assert "Latex" in _page(refused) and "DTP 2020" in _page(refused)


def test_a_save_without_the_base_version_is_refused(client, world):
    client.force_login(world.dr_house.user)
    data = _opened(client, world.record)
    del data["base_version"]
    assert _save(client, world.record, {**data, "allergies": "Latex"}).status_code == 400
    assert not Synthesis.objects.exists()


def test_the_service_refuses_a_stale_base_version_with_the_latest_and_a_state_code(world):
    _first_version(world)
    with pytest.raises(EditConflict) as newer:
        synthesis_write(actor=Actor(world.dr_house.user), record=world.record, base_version=0,
                        problems=[], allergies="Latex")
    assert isinstance(newer.value, InvalidInput) and newer.value.code == InvalidInputCode.STATE
    assert newer.value.version == 1 and newer.value.latest.current_treatments == "Metformine 1000 mg x2"
    assert Synthesis.objects.filter(record=world.record).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [False, True], ids=["first-version", "next-version"])
def test_two_concurrent_saves_from_the_same_version_exactly_one_is_written(world, existing):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    base = _first_version(world).version if existing else 0
    start, written, conflicts, errors = threading.Barrier(2), [], [], []

    def save(allergy):
        try:
            start.wait(10)
            written.append(synthesis_write(actor=Actor(world.dr_house.user), record=world.record,
                                           base_version=base, problems=[], allergies=allergy).allergies)
        except EditConflict as exc:
            conflicts.append(exc.version)
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(allergy,), daemon=True) for allergy in ("Latex", "Iode")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(written) == 1 and conflicts == [base + 1]
    latest = _latest(world.record)
    assert latest.version == base + 1 and latest.allergies == written[0]
