"""Finding a professional by name on the patient's management page (issue 15): by family or
given name, accents and case ignored, narrowed by profession and town, or by exact RPPS number;
each professional found has a button that gives access, blocks or designates them through the
existing action. Only the holder (or representative) searches, a limited number of times an
hour, and the words typed never reach a URL."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dmp.models import Block, CareAuthorisation, Professional, TreatingDoctor
from dmp.selectors import PROFESSIONALS_SHOWN
from tests.personas import make_professional, user_of
from tests.test_patient_manage import OUTSIDERS

pytestmark = pytest.mark.django_db


def _pro(username: str, first: str, last: str, profession: str = "gp", **extra) -> Professional:
    professional = make_professional(username, profession, second_factor=False, **extra)
    user = professional.user
    user.first_name, user.last_name, user.email = first, last, f"{username}@example.org"
    user.save(update_fields=["first_name", "last_name", "email"])
    return professional


@pytest.fixture
def namesakes(db):
    """Two Hélène Lefèvre, told apart by profession and town, and a Lefebvre who is not one."""
    return (
        _pro("hl_gp", "Hélène", "Lefèvre", "gp", specialty="Médecine générale", town="Lille"),
        _pro("hl_kine", "Helene", "Lefevre-Dubois", "physiotherapist", town="Roubaix"),
        _pro("tl_gp", "Thomas", "Lefebvre", "gp", town="Lille"),
    )


def _find(client, record, purpose: str = "grant", name: str = "", profession: str = "", town: str = ""):
    return client.post(reverse("portal_patient:professional_find", args=[record.pk, purpose]),
                       {f"{purpose}-name": name, f"{purpose}-profession": profession, f"{purpose}-town": town})


def _found(response, purpose: str = "grant") -> list[Professional]:
    return response.context["finds"][purpose]["search"].professionals


@pytest.mark.parametrize("typed", ["Hélène Lefèvre", "helene lefevre", "LEFÈVRE hél", "lefev", "  HÉLÈNE  "])
def test_a_professional_is_found_by_name_whatever_the_accents_and_case(client, world, namesakes, typed):
    client.force_login(world.alice)
    response = _find(client, world.record, name=typed)
    assert response.status_code == 200
    assert set(_found(response)) == {namesakes[0], namesakes[1]}  # not Lefebvre: "lefev" is not "lefeb"


def test_a_word_of_a_compound_name_is_found_too(client, world, namesakes):
    client.force_login(world.alice)
    assert _found(_find(client, world.record, name="dubois")) == [namesakes[1]]


def test_namesakes_are_told_apart_by_profession_and_town(client, world, namesakes):
    gp, kine, _ = namesakes
    client.force_login(world.alice)
    page = _find(client, world.record, name="helene lefevre").content.decode()
    assert "General practitioner" in page and "Physiotherapist" in page
    assert "Lille" in page and "Roubaix" in page
    assert gp.rpps in page and kine.rpps in page  # public, printed on prescriptions: checkable
    assert gp.user.email not in page and gp.user.username not in page  # nothing more
    assert _found(_find(client, world.record, name="lefevre", profession="physiotherapist")) == [kine]
    assert _found(_find(client, world.record, name="lefevre", town="roubaix")) == [kine]
    assert _found(_find(client, world.record, name="lefevre", town="LILLE")) == [gp]


def test_the_exact_rpps_number_still_finds_one(client, world, namesakes):
    client.force_login(world.alice)
    rpps = namesakes[1].rpps
    assert _found(_find(client, world.record, name=f"{rpps[:5]} {rpps[5:]}")) == [namesakes[1]]


def test_nothing_found_says_so(client, world, namesakes):
    client.force_login(world.alice)
    response = _find(client, world.record, name="Zyxwv")
    assert response.status_code == 200 and _found(response) == []
    assert "No health professional matches this search." in response.content.decode()


def test_too_many_asks_to_refine_and_shows_only_the_first(client, world, django_assert_max_num_queries):
    for i in range(PROFESSIONALS_SHOWN + 2):
        _pro(f"dupont_{i}", f"Jean{i}", "Dupont", town="Lille" if i else "Lens")
    client.force_login(world.alice)
    # One query for the professionals whatever their number: no query per professional found.
    with django_assert_max_num_queries(25):
        response = _find(client, world.record, name="dupont")
    assert len(_found(response)) == PROFESSIONALS_SHOWN
    assert "More professionals match: add their given name" in response.content.decode()
    refined = _find(client, world.record, name="dupont", town="lens")
    assert [p.user.first_name for p in _found(refined)] == ["Jean0"]
    assert "More professionals match" not in refined.content.decode()


def test_one_letter_is_not_a_search(client, world, namesakes):
    client.force_login(world.alice)
    response = _find(client, world.record, name="L")
    assert response.status_code == 400
    assert "Type at least two letters of their name." in response.content.decode()


@pytest.mark.parametrize(("purpose", "action", "button"), [
    ("grant", "care_authorisation_grant", "Give access"),
    ("block", "professional_block", "Block"),
    ("designate", "treating_doctor_designate", "Make them my médecin traitant"),
])
def test_each_professional_found_has_the_button_of_the_action(client, world, namesakes, purpose, action, button):
    gp = namesakes[0]
    client.force_login(world.alice)
    response = _find(client, world.record, purpose, name="helene lefevre", profession="gp")
    assert _found(response, purpose) == [gp]
    page = response.content.decode()
    action_url = re.escape(reverse(f"portal_patient:{action}", args=[world.record.pk]))
    form = re.search(rf'<form method="post" action="{action_url}"[^>]*>.*?name="rpps" value="{gp.rpps}">'
                     rf'<button[^>]*>{re.escape(button)}</button>', page)
    assert form, "the professional found submits the existing action with their RPPS number"
    # That button, pressed: the existing action does the work.
    done = client.post(reverse(f"portal_patient:{action}", args=[world.record.pk]), {"rpps": gp.rpps})
    assert done.status_code == 302
    if purpose == "grant":
        assert CareAuthorisation.objects.filter(record=world.record, professional=gp).exists()
    elif purpose == "block":
        assert Block.objects.filter(record=world.record, professional=gp).exists()
    else:
        assert TreatingDoctor.objects.active().get(record=world.record).professional == gp


def test_the_medecin_traitant_search_starts_with_general_practitioners(client, world):
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:manage", args=[world.record.pk])).content.decode()
    assert re.search(r'name="designate-profession"[^>]*>.*?<option value="gp" selected>', page, re.S)
    assert re.search(r'name="grant-profession"[^>]*>\s*<option value="" selected>', page, re.S)


def test_a_refusal_of_the_action_is_shown_as_today(client, world, namesakes):
    kine = namesakes[1]
    client.force_login(world.alice)
    response = client.post(reverse("portal_patient:treating_doctor_designate", args=[world.record.pk]),
                           {"rpps": kine.rpps})
    assert response.status_code == 400
    assert "The médecin traitant is a general practitioner." in response.content.decode()


def test_the_words_typed_never_reach_a_url(client, world, namesakes):
    client.force_login(world.alice)
    assert client.get(reverse("portal_patient:professional_find", args=[world.record.pk, "grant"]),
                      {"grant-name": "lefevre"}).status_code == 405
    response = _find(client, world.record, name="Lefèvre", town="Roubaix")
    assert response.status_code == 200  # answered by the POST itself, no redirect to a URL with them
    urls = re.findall(r'(?:href|action|src)="([^"]*)"', response.content.decode())
    assert urls and not [u for u in urls if re.search("lef|roubaix", u, re.I)]
    done = client.post(reverse("portal_patient:care_authorisation_grant", args=[world.record.pk]),
                       {"rpps": namesakes[1].rpps})
    assert done.status_code == 302 and not re.search("lef|roubaix|rpps", done["Location"], re.I)


@pytest.mark.parametrize(("persona", "record_key", "status"), OUTSIDERS)
def test_only_the_patient_managing_the_record_may_search(client, world, namesakes, persona, record_key, status):
    if persona:
        client.force_login(user_of(world, persona))
    response = _find(client, getattr(world, record_key), name="lefevre")
    assert response.status_code == status
    assert "Lefèvre" not in response.content.decode()


def test_an_unknown_purpose_is_404(client, world):
    client.force_login(world.alice)
    assert _find(client, world.record, "revoke", name="lefevre").status_code == 404


def test_the_searches_are_rate_limited_per_account(client, world, namesakes, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "professional_search": "3/1h/user"}
    client.force_login(world.alice)
    for _ in range(3):
        assert _find(client, world.record, name="lefevre").status_code == 200
    refused = _find(client, world.record, name="lefevre")
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Too many searches in the last hour." in page and "Lefèvre" not in page
    # Another account has its own count.
    client.force_login(world.mother)
    assert _find(client, world.leo_record, name="lefevre").status_code == 200


def test_the_search_limit_is_configured_next_to_the_record_searches():
    from dmp.settings import ACCOUNT_RATE_LIMITS, PROFESSIONAL_SEARCHES_PER_HOUR

    assert ACCOUNT_RATE_LIMITS["professional_search"] == f"{PROFESSIONAL_SEARCHES_PER_HOUR}/1h/user"


# --- The médecin traitant blocking at the patient's request (pro portal) --------------------------

def _pro_find(client, record, name: str, **extra):
    data = {"block-name": name, **{f"block-{key}": value for key, value in extra.items()}}
    return client.post(reverse("portal_pro:professional_find", args=[record.pk]), data)


def test_the_medecin_traitant_finds_by_name_the_professional_to_block(client, world, namesakes):
    kine = namesakes[1]
    client.force_login(world.dr_house.user)
    response = _pro_find(client, world.record, "lefevre", town="roubaix")
    assert response.status_code == 200 and response.context["search"].professionals == [kine]
    page = response.content.decode()
    block_url = re.escape(reverse("portal_pro:professional_block", args=[world.record.pk]))
    assert re.search(rf'action="{block_url}"[^>]*>.*?name="rpps" value="{kine.rpps}"', page)
    # The block itself is the existing form: the patient's request still has to be ticked.
    assert client.post(reverse("portal_pro:professional_block", args=[world.record.pk]),
                       {"rpps": kine.rpps}).status_code == 400
    done = client.post(reverse("portal_pro:professional_block", args=[world.record.pk]),
                       {"rpps": kine.rpps, "patient_asked": "on"})
    assert done.status_code == 302 and "lef" not in done["Location"].lower()
    assert Block.objects.active().filter(record=world.record, professional=kine).exists()


@pytest.mark.parametrize("persona", ["dr_grant", "kine", "urgentist", "stranger"])
def test_only_the_medecin_traitant_finds_professionals_from_the_pro_portal(client, world, namesakes, persona):
    client.force_login(user_of(world, persona))
    response = _pro_find(client, world.record, "lefevre")
    assert response.status_code == 404 and "Lefèvre" not in response.content.decode()
