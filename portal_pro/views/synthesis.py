"""The professional's synthesis screen (DOMAIN.md §3)."""

from __future__ import annotations

urlpatterns: list = []
