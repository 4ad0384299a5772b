"""Benchmarks of the audit log on PostgreSQL (README.md); not part of the test suite."""
