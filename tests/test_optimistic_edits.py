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


def _race(save, *values) -> tuple[list, list[EditConflict]]:
    """Call `save(value)` for each value at the same moment, each in its own thread (its own
    database connection): what the saves returned, and the conflicts raised."""
    start, written, conflicts, errors = threading.Barrier(len(values)), [], [], []

    def one(value):
        try:
            start.wait(10)
            written.append(save(value))
        except EditConflict as exc:
            conflicts.append(exc)
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(value,), daemon=True) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return written, conflicts


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
    written, conflicts = _race(lambda allergy: synthesis_write(
        actor=Actor(world.dr_house.user), record=world.record, base_version=base, problems=[],
        allergies=allergy).allergies, "Latex", "Iode")
    assert len(written) == 1 and [conflict.version for conflict in conflicts] == [base + 1]
    latest = _latest(world.record)
    assert latest.version == base + 1 and latest.allergies == written[0]


# -- personal data sections ---------------------------------------------------------------------

# (section page, what the first device saves, what the second device typed, a value of the
# first save as the comparison shows it)
SECTIONS = [
    ("information_notes", {"notes": "Sourd de l'oreille gauche"}, {"notes": "Porte un pacemaker"},
     "Sourd de l&#x27;oreille gauche"),
    ("information_blood_group", {"blood_group": "O-"}, {"blood_group": "A+"}, "O-"),
    ("information_organ_donation", {"statement": "opposed"}, {"statement": "informed"},
     "Opposed to organ and tissue donation"),
    ("information_trusted_person", {"name": "Jeanne Martin", "relation": "sœur", "phone": "0612345678"},
     {"name": "Paul Martin", "relation": "frère", "phone": ""}, "Jeanne Martin"),
    ("information_contact",
     {"email": "", "phone": "+33612345678", "postal_address": "3 place Rihour, Lille", "preferred_language": "en",
      "languages": ["fr"], "other_languages": ""},
     {"email": "", "phone": "+33612345678", "postal_address": "10 rue Nationale, Lille",
      "preferred_language": "en", "languages": ["fr"], "other_languages": ""}, "3 place Rihour, Lille"),
]


def _section_url(name, record):
    return reverse(f"portal_patient:{name}", args=[record.pk])


def _base_of(response) -> str:
    return re.search(r'<input type="hidden" name="base" value="([0-9a-f]+)">', _page(response)).group(1)


@pytest.mark.parametrize(("name", "first", "second", "shown"), SECTIONS, ids=[s[0] for s in SECTIONS])
def test_a_section_saved_from_two_devices_refuses_the_older_form_and_shows_the_saved_values(
        client, world, name, first, second, shown):
    from django.test import Client

    url = _section_url(name, world.record)
    phone, computer = client, Client()
    phone.force_login(world.alice)
    computer.force_login(world.alice)
    base_phone, base_computer = _base_of(phone.get(url)), _base_of(computer.get(url))
    assert base_phone == base_computer
    assert phone.post(url, {**first, "base": base_phone}).status_code == 302
    refused = computer.post(url, {**second, "base": base_computer})
    assert refused.status_code == 409
    page = _page(refused)
    assert "This section was changed since you opened it: nothing of yours is saved yet." in page
    assert 'class="compare"' in page and 'class="differs"' in page
    assert shown in page  # the first device's save, shown
    # What was typed stays in the form, which now carries the new version: saving it again
    # (the person chose to keep theirs) goes through.
    new_base = _base_of(refused)
    assert new_base != base_computer
    form = refused.context["form"]
    assert all(form[field].value() == value for field, value in second.items())
    assert computer.post(url, {**second, "base": new_base}).status_code == 302
    # The section's own page opened now carries the latest version again.
    assert _base_of(computer.get(url)) != new_base


def test_the_representative_and_the_minor_editing_the_notes_the_later_form_is_refused(client, world):
    from django.test import Client

    url = _section_url("information_notes", world.leo_record)
    mother, leo = client, Client()
    mother.force_login(world.mother)
    leo.force_login(world.leo)
    base_mother, base_leo = _base_of(mother.get(url)), _base_of(leo.get(url))
    assert leo.post(url, {"notes": "Allergique aux arachides", "base": base_leo}).status_code == 302
    refused = mother.post(url, {"notes": "Asthme d'effort", "base": base_mother})
    assert refused.status_code == 409 and "Allergique aux arachides" in _page(refused)
    from dmp.models import PersonalProfile

    assert PersonalProfile.objects.get(record=world.leo_record).notes == "Allergique aux arachides"


def test_a_stale_form_shown_again_for_bad_input_keeps_its_version_and_is_still_refused(client, world):
    from django.test import Client

    url = _section_url("information_trusted_person", world.record)
    phone, computer = client, Client()
    phone.force_login(world.alice)
    computer.force_login(world.alice)
    stale = _base_of(computer.get(url))
    assert phone.post(url, {"name": "Jeanne Martin", "relation": "", "phone": "", "base": stale}).status_code == 302
    corrected = computer.post(url, {"name": "", "relation": "frère", "phone": "", "base": stale})
    assert corrected.status_code == 200 and _base_of(corrected) == stale  # bad input: the name is missing
    refused = computer.post(url, {"name": "Paul Martin", "relation": "frère", "phone": "", "base": stale})
    assert refused.status_code == 409 and "Jeanne Martin" in _page(refused)


def test_an_edit_of_one_section_does_not_refuse_a_form_of_another(client, world):
    client.force_login(world.alice)
    notes, blood = _section_url("information_notes", world.record), _section_url("information_blood_group",
                                                                                   world.record)
    base_blood = _base_of(client.get(blood))
    assert client.post(notes, {"notes": "x", "base": _base_of(client.get(notes))}).status_code == 302
    assert client.post(blood, {"blood_group": "B+", "base": base_blood}).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_saves_of_a_section_from_the_same_version_exactly_one_is_written(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    from dmp.models import PersonalProfile
    from dmp.services import personal_notes_set, personal_section_version

    profile = PersonalProfile.objects.filter(record=world.record).first() or PersonalProfile(record=world.record)
    base = personal_section_version(section="notes", record=world.record, profile=profile)
    written, conflicts = _race(lambda notes: personal_notes_set(
        actor=Actor(world.alice), record=world.record, notes=notes, base=base).notes, "Sourd", "Aveugle")
    assert len(written) == 1 and [conflict.latest for conflict in conflicts] == [{"notes": written[0]}]
    assert PersonalProfile.objects.get(record=world.record).notes == written[0]


# -- in a browser: the médecin traitant's two tabs --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_second_tab_is_offered_the_merge_and_the_merge_keeps_both(live_server, browser, world):
    from django.conf import settings
    from django.test import Client

    _first_version(world)
    client = Client()
    client.force_login(world.dr_house.user)
    context = browser.new_context(locale="fr-FR")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME]
                          .value, "url": live_server.url}])
    url = live_server.url + reverse(EDIT, args=[world.record.pk])
    first_tab, second_tab = context.new_page(), context.new_page()
    first_tab.goto(url)
    second_tab.goto(url)
    first_tab.fill("textarea[name=allergies]", "Pénicilline (urticaire)")
    first_tab.locator("button[name=save]").first.click()
    first_tab.wait_for_url("**/synthesis/")
    second_tab.fill("textarea[name=current_treatments]", "Metformine 1000 mg x2\nRamipril 5 mg")
    with second_tab.expect_response(lambda response: response.request.method == "POST") as answer:
        second_tab.locator("button[name=save]").first.click()
    assert answer.value.status == 409
    compare = second_tab.locator("table.compare")
    assert compare.is_visible()
    assert "Pénicilline (urticaire)" in compare.inner_text() and "Ramipril 5 mg" in compare.inner_text()
    # The author takes the allergy over from the saved side and saves: version 3 holds both.
    second_tab.fill("textarea[name=allergies]", "Pénicilline (urticaire)")
    second_tab.locator("button[name=save]").first.click()
    second_tab.wait_for_url("**/synthesis/")
    context.close()
    latest = _latest(world.record)
    assert latest.version == 3 and latest.allergies == "Pénicilline (urticaire)"
    assert "Ramipril 5 mg" in latest.current_treatments


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_a_section_refused_shows_both_sides_on_a_small_phone(live_server, browser, world):
    from django.conf import settings
    from django.test import Client

    from tests.browser import SMALL_SCREEN, no_horizontal_scroll

    client = Client()
    client.force_login(world.alice)
    context = browser.new_context(locale="fr-FR", viewport={"width": SMALL_SCREEN, "height": 740})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME]
                          .value, "url": live_server.url}])
    url = live_server.url + _section_url("information_trusted_person", world.record)
    phone, computer = context.new_page(), context.new_page()
    phone.goto(url)
    computer.goto(url)
    phone.fill("input[name=name]", "Jeanne Martin-Dubois de la Fontaine")
    phone.locator("main form button[type=submit]").click()
    phone.wait_for_url("**/information/#trusted-person")
    computer.fill("input[name=name]", "Paul Martin")
    with computer.expect_response(lambda response: response.request.method == "POST") as answer:
        computer.locator("main form button[type=submit]").click()
    assert answer.value.status == 409
    compare = computer.locator("table.compare")
    assert "Jeanne Martin-Dubois de la Fontaine" in compare.inner_text() and "Paul Martin" in compare.inner_text()
    assert computer.locator("input[name=name]").input_value() == "Paul Martin"
    assert no_horizontal_scroll(computer)
    context.close()
