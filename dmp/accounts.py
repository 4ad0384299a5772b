"""Account adapter: nobody signs up on their own; records and accounts are created with
the person's consent by a counter agent or a professional (DOMAIN.md §2)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class NoSignupAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False
