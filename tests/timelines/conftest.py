"""The timelines read what records and reconciliation wrote: the reconciliation tests' pair."""

from tests.reconciliation.conftest import world  # noqa: F401 (the fixture)
