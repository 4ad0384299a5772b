"""The counter onboarding screens."""

from __future__ import annotations

urlpatterns: list = []
