"""The second-factor and password pages a counter agent meets (setting up the authenticator
app, its recovery codes, confirming their password), in our words and in the agent's language:
nothing of the catalogues left in French or English, and the language's script on the page."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.urls import reverse
from django.utils.html import strip_tags

from dmp.models import CounterAgent, User
from tests.leftovers import SCRIPTS, leftovers
from tests.personas import make_user

PAGES = ["mfa_index", "mfa_view_recovery_codes", "mfa_generate_recovery_codes", "mfa_deactivate_totp",
         "account_change_password", "account_reauthenticate"]


def _text(response) -> str:
    html = response.content.decode()
    main = re.search(r"<main>(.*)</main>", html, re.S).group(1)
    return strip_tags(main)


def _check(response, language: str, name: str) -> list[str]:
    assert response.status_code == 200, (name, response.status_code)
    assert f'<html lang="{language}"' in response.content.decode(), name
    text = _text(response)
    problems = [f"{name}: {line}" for line in leftovers(text, language)]
    if language in SCRIPTS and not re.search(SCRIPTS[language], text):
        problems.append(f"{name}: no {language} letters")
    return problems


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "ar", "fa", "ru", "uk", "sq"])
def test_the_second_factor_pages_are_in_the_agents_language(client, world, language):
    # A new agent sets up the authenticator app: the page the gate sends them to first.
    newcomer = CounterAgent.objects.create(user=make_user("nina_new", preferred_language=language),
                                           organisation=world.agent.organisation)
    client.force_login(newcomer.user)
    problems = _check(client.get(reverse("mfa_activate_totp")), language, "mfa_activate_totp")

    # An agent with the app and recovery codes: each page, or the password confirmation that
    # allauth asks for first, whichever comes.
    agent = world.agent.user
    User.objects.filter(pk=agent.pk).update(preferred_language=language)
    RecoveryCodes.activate(agent)  # the world's agent has the app already
    client.force_login(agent)
    for name in PAGES:
        problems += _check(client.get(reverse(name), follow=True), language, name)
    assert not problems, "\n".join(problems)
