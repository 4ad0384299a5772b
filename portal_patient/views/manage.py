"""The patient's manage screen (DOMAIN.md §3)."""

from __future__ import annotations

urlpatterns: list = []
