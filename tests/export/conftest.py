"""Fixtures shared with the report tests (stored runs with hostile names)."""

from tests.report.conftest import rcli, rhome  # noqa: F401
