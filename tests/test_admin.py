"""Django admin manages accounts, organisations, professionals and the matrix; it never
shows a document, the synthesis or personal data."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from dmp.models import (
    Document,
    EmergencyContact,
    MatrixEntry,
    PersonalProfile,
    ReimbursementLine,
    Synthesis,
    SynthesisProblem,
    Vaccination,
)


def test_medical_models_are_not_registered():
    for model in (Document, Synthesis, SynthesisProblem, PersonalProfile, EmergencyContact, Vaccination,
                  ReimbursementLine):
        assert model not in admin.site._registry


@pytest.mark.django_db
def test_admin_pages_work_and_show_no_medical_content(client, world):
    client.force_login(world.admin)
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
    page = client.get(reverse("admin:dmp_record_change", args=[world.record.pk])).content.decode()
    assert world.record.provisional_id in page
    for doc in world.docs.values():
        assert f">{doc.title}<" not in page
    assert client.get(reverse("admin:dmp_record_add")).status_code == 403


@pytest.mark.django_db
def test_the_matrix_is_complete_restrictive_and_editable_in_admin(client, world):
    assert MatrixEntry.objects.count() == 7 * 39
    physio = MatrixEntry.objects.get(profession="physiotherapist", doc_type="consultation_report")
    assert physio.allowed is False
    client.force_login(world.admin)
    response = client.post(
        reverse("admin:dmp_matrixentry_change", args=[physio.pk]),
        {"profession": "physiotherapist", "doc_type": "consultation_report", "allowed": "on"},
    )
    assert response.status_code == 302
    # The policy reads the edited cell: the physiotherapist now sees consultation reports.
    from dmp.policy import Action, Actor, decide

    assert decide(Actor(world.kine.user), Action.VIEW_DOCUMENT, world.docs["consultation"]).allowed


@pytest.mark.django_db
def test_non_staff_cannot_enter_admin(client, world):
    client.force_login(world.dr_house.user)
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db
def test_admin_shows_second_factors_without_secrets_and_can_only_delete_them(client, world):
    from allauth.mfa.models import Authenticator

    from tests.personas import TOTP_SECRET

    client.force_login(world.admin)
    authenticator = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    page = client.get(reverse("admin:mfa_authenticator_change", args=[authenticator.pk])).content.decode()
    assert TOTP_SECRET not in page and authenticator.data["secret"] not in page
    assert client.get(reverse("admin:mfa_authenticator_add")).status_code == 403
    response = client.post(reverse("admin:mfa_authenticator_change", args=[authenticator.pk]), {"type": "totp"})
    assert response.status_code == 403
    client.post(reverse("admin:mfa_authenticator_delete", args=[authenticator.pk]), {"post": "yes"})
    assert not Authenticator.objects.filter(pk=authenticator.pk).exists()
