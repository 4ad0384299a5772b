"""Screens that several front ends show alike: what they parse, keep and navigate, written
once and parameterised by portal. They ask the selectors and the policy, never decide access
themselves; the portals' views stay a few lines each (see docs/architecture.md)."""
