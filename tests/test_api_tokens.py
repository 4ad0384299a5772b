"""API tokens for practice software (DOMAIN.md §6): a professional with a second factor
creates and revokes tokens bound to themself; only a hash is stored; revoked, expired,
unknown tokens and tokens whose owner lost their second factor are refused alike."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse
from django.utils import timezone

from dmp.models import ApiToken, User
from dmp.policy import Actor
from dmp.services import AccessRefused, InvalidInput, api_token_create, api_token_revoke
from dmp.services.credentials import MAX_LIVE_TOKENS
from tests.personas import enrol_totp, make_professional, make_user, user_of

ME = "/api/v1/me/"
TOKEN = re.compile(r"dmp_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def _token_for(pro, label="Cabinet – poste accueil"):
    return api_token_create(actor=Actor(pro.user), label=label)


def _bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _without_second_factor(username="nils_nofactor"):
    """A professional whose account never enrolled an authenticator app."""
    pro = make_professional(username)
    Authenticator.objects.filter(user=pro.user).delete()
    return pro


@pytest.mark.django_db
def test_creating_a_token_shows_it_once_and_stores_only_its_hash(client, world):
    client.force_login(world.dr_house.user)
    response = client.post(reverse("portal_pro:api_token_new"), {"label": "  Logiciel Hellodoc  \n cabinet "})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    raw = TOKEN.search(page).group(0)
    token = ApiToken.objects.get(professional=world.dr_house)
    assert token.label == "Logiciel Hellodoc cabinet"
    assert raw.startswith(f"dmp_{token.prefix}_")
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw.split("_", 2)[2]
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(secret in str(value) for value in row.values())
    # Shown once: the list, and the list after the fact, never show it again.
    listing = client.get(reverse("portal_pro:api_tokens")).content.decode()
    assert f"dmp_{token.prefix}_" in listing and secret not in listing


@pytest.mark.django_db
def test_the_token_authenticates_the_me_endpoint_as_its_professional(client, world):
    token, raw = _token_for(world.dr_grant)
    response = client.get(ME, **_bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert body["rpps"] == world.dr_grant.rpps
    assert body["name"] == world.dr_grant.user.get_full_name()
    assert body["profession"] == world.dr_grant.profession
    assert body["authenticated_by"]["method"] == "api_token"
    assert body["authenticated_by"]["token"]["id"] == token.pk
    assert body["authenticated_by"]["token"]["prefix"] == token.prefix
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
def test_last_use_is_written_at_most_once_a_minute(client, world):
    token, raw = _token_for(world.dr_grant)
    client.get(ME, **_bearer(raw))
    token.refresh_from_db()
    first = token.last_used_at
    client.get(ME, **_bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(ME, **_bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at > first


@pytest.mark.django_db
def test_session_of_a_professional_with_second_factor_reaches_me(client, world):
    client.force_login(world.kine.user)
    response = client.get(ME)
    assert response.status_code == 200
    assert response.json()["authenticated_by"] == {"method": "session"}


def _revoke(token):
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())


def _expire(token):
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=now - timedelta(days=400), expires_at=now - timedelta(days=1)
    )


def _lose_second_factor(token):
    Authenticator.objects.filter(user=token.professional.user).delete()


def _deactivate(token):
    User.objects.filter(pk=token.professional.user_id).update(is_active=False)


@pytest.mark.django_db
@pytest.mark.parametrize("spoil", [_revoke, _expire, _lose_second_factor, _deactivate],
                         ids=["revoked", "expired", "owner_lost_second_factor", "owner_inactive"])
def test_a_token_that_no_longer_holds_is_refused_like_an_unknown_one(client, world, spoil):
    token, raw = _token_for(world.dr_grant)
    assert client.get(ME, **_bearer(raw)).status_code == 200
    spoil(token)
    refused = client.get(ME, **_bearer(raw))
    unknown = client.get(ME, **_bearer(f"dmp_{token.prefix}_{'A' * 43}"))
    assert refused.status_code == unknown.status_code == 401
    assert refused["WWW-Authenticate"] == "Bearer"
    # The same answer whatever failed: nothing tells the client which check it was.
    assert refused.content == unknown.content


@pytest.mark.django_db
@pytest.mark.parametrize("header", [
    "Bearer not-a-token", "Bearer dmp_", "Bearer", "Bearer dmp_a_b extra", "bearer " + "dmp_" + "x" * 500,
    "Bearer dmp_0123abcd_sécrét",
], ids=["not_ours", "empty", "no_token", "two_parts", "too_long", "not_ascii"])
def test_garbled_tokens_are_refused(client, world, header):
    _token_for(world.dr_grant)
    response = client.get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
def test_a_token_is_not_accepted_under_another_scheme_or_with_a_changed_character(client, world):
    _token, raw = _token_for(world.dr_grant)
    assert client.get(ME, HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401
    changed = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert client.get(ME, **_bearer(changed)).status_code == 401
    assert client.get(ME, **_bearer(raw)).status_code == 200


@pytest.mark.django_db
def test_a_professional_without_second_factor_cannot_create_a_token(client, world):
    pro = _without_second_factor()
    with pytest.raises(AccessRefused) as refused:
        _token_for(pro)
    assert refused.value.decision.rule == "second_factor_missing"
    client.force_login(pro.user)
    response = client.post(reverse("portal_pro:api_token_new"), {"label": "Poste 1"})
    assert response.status_code in (302, 403)  # the enrolment gate, or the view's own refusal
    assert TOKEN.search(response.content.decode()) is None
    assert not ApiToken.objects.filter(professional=pro).exists()


@pytest.mark.django_db
def test_the_api_permission_refuses_a_session_without_second_factor_on_its_own(world):
    """Token requests do not pass the portals' enrolment gate, so the API's permission must
    refuse by itself: the view is called here without any middleware."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    from dmp.api.views import me

    pro = _without_second_factor()
    request = APIRequestFactory().get(ME)
    force_authenticate(request, user=pro.user)
    assert me(request).status_code == 403
    request = APIRequestFactory().get(ME)
    force_authenticate(request, user=world.dr_house.user)
    assert me(request).status_code == 200


@pytest.mark.django_db
def test_session_without_second_factor_gets_403_on_the_api(client, world):
    client.force_login(_without_second_factor().user)
    assert client.get(ME).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "status"), [
    (None, 401),
    ("alice", 403),
    ("mother", 403),
    ("agent", 403),
    ("admin", 403),
    ("nobody", 403),
    ("dr_house", 200),
])
def test_who_reaches_the_api_with_a_session(client, world, persona, status):
    if persona:
        client.force_login(user_of(world, persona))
    assert client.get(ME).status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "agent", "admin", "nobody"])
def test_only_professionals_create_tokens(world, persona):
    with pytest.raises(AccessRefused):
        api_token_create(actor=Actor(user_of(world, persona)), label="Poste 1")
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_label_is_required_and_bounded(client, world):
    with pytest.raises(InvalidInput):
        _token_for(world.dr_house, label="   ")
    with pytest.raises(InvalidInput):
        _token_for(world.dr_house, label="x" * 101)
    client.force_login(world.dr_house.user)
    response = client.post(reverse("portal_pro:api_token_new"), {"label": ""})
    assert response.status_code == 400
    assert "Say which software or machine will use this token." in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_professional_holds_a_bounded_number_of_live_tokens(world):
    tokens = [_token_for(world.dr_house, label=f"Poste {i}")[0] for i in range(MAX_LIVE_TOKENS)]
    with pytest.raises(InvalidInput):
        _token_for(world.dr_house)
    api_token_revoke(actor=Actor(world.dr_house.user), token=tokens[0])
    _token_for(world.dr_house)  # a revoked token frees its place
    _token_for(world.dr_grant)  # the cap is per professional
    assert ApiToken.objects.live().filter(professional=world.dr_house).count() == MAX_LIVE_TOKENS


@pytest.mark.django_db
def test_revoking_through_the_page_asks_first_then_refuses_the_token(client, world):
    token, raw = _token_for(world.dr_house)
    client.force_login(world.dr_house.user)
    url = reverse("portal_pro:api_token_revoke", args=[token.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and token.label in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # the confirmation page changes nothing
    assert client.post(url)["Location"] == reverse("portal_pro:api_tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get(ME, **_bearer(raw)).status_code == 401


@pytest.mark.django_db
def test_revoking_twice_changes_nothing(world):
    token, _raw = _token_for(world.dr_house)
    actor = Actor(world.dr_house.user)
    first = api_token_revoke(actor=actor, token=token).revoked_at
    again = ApiToken.objects.get(pk=token.pk)
    assert api_token_revoke(actor=actor, token=again).revoked_at == first


@pytest.mark.django_db
def test_one_professional_neither_sees_nor_revokes_anothers_token(client, world):
    token, raw = _token_for(world.dr_house, label="Cabinet House")
    client.force_login(world.dr_grant.user)
    assert "Cabinet House" not in client.get(reverse("portal_pro:api_tokens")).content.decode()
    url = reverse("portal_pro:api_token_revoke", args=[token.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    with pytest.raises(AccessRefused):
        api_token_revoke(actor=Actor(world.dr_grant.user), token=token)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get(ME, **_bearer(raw)).json()["rpps"] == world.dr_house.rpps


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "status"), [(None, 302), ("alice", 403), ("agent", 403), ("dr_grant", 200)])
def test_who_reaches_the_token_pages(client, world, persona, status):
    if persona:
        client.force_login(user_of(world, persona))
    response = client.get(reverse("portal_pro:api_tokens"))
    assert response.status_code == status
    if status == 302:
        assert reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_creating_and_revoking_write_one_security_line_without_the_token(caplog, world):
    caplog.set_level(logging.INFO, logger="dmp.security")
    token, raw = _token_for(world.dr_house)
    api_token_revoke(actor=Actor(world.dr_house.user), token=token)
    lines = [r.getMessage() for r in caplog.records if r.name == "dmp.security"]
    assert len(lines) == 2
    created, revoked = lines
    assert "created" in created and "revoked" in revoked
    for line in lines:
        assert f"token={token.pk}" in line and token.prefix in line and f"user={world.dr_house.user.pk}" in line
        assert raw not in line and raw.split("_", 2)[2] not in line


@pytest.mark.django_db
def test_refused_tokens_are_logged_without_the_token(caplog, client, world):
    caplog.set_level(logging.INFO, logger="dmp.security")
    token, raw = _token_for(world.dr_house)
    _revoke(token)
    client.get(ME, **_bearer(raw))
    assert "reason=revoked" in caplog.text and f"token={token.pk}" in caplog.text
    assert raw.split("_", 2)[2] not in caplog.text


@pytest.mark.django_db
def test_admin_lists_tokens_without_their_hash_and_revokes_them(client, world):
    token, raw = _token_for(world.dr_house)
    client.force_login(world.admin)
    page = client.get(reverse("admin:dmp_apitoken_changelist")).content.decode()
    assert token.prefix in page and token.key_hash not in page
    detail = client.get(reverse("admin:dmp_apitoken_change", args=[token.pk])).content.decode()
    assert token.label in detail and token.key_hash not in detail
    response = client.post(reverse("admin:dmp_apitoken_changelist"),
                           {"action": "revoke_selected", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get(ME, **_bearer(raw)).status_code == 401


@pytest.mark.django_db
def test_staff_without_the_change_permission_cannot_revoke_from_admin(client, world):
    from django.contrib.auth.models import Permission

    token, _raw = _token_for(world.dr_house)
    viewer = enrol_totp(make_user("vera_viewer", is_staff=True))
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(viewer)
    changelist = reverse("admin:dmp_apitoken_changelist")
    page = client.get(changelist)
    assert page.status_code == 200 and "revoke_selected" not in page.content.decode()
    client.post(changelist, {"action": "revoke_selected", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_professional_home_links_to_the_token_page(client, world):
    client.force_login(world.dr_house.user)
    page = client.get(reverse("portal_pro:home")).content.decode()
    assert reverse("portal_pro:api_tokens") in page
