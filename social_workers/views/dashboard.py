"""The counter dashboard screens."""

from __future__ import annotations

urlpatterns: list = []
