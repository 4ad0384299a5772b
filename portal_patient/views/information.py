"""The patient's information screen (DOMAIN.md §3)."""

from __future__ import annotations

urlpatterns: list = []
