"""The professional's documents screen (DOMAIN.md §3)."""

from __future__ import annotations

urlpatterns: list = []
