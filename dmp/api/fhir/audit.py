"""FHIR audit endpoints (see dmp/api/fhir/__init__.py for the conventions)."""

from __future__ import annotations

urlpatterns: list = []
