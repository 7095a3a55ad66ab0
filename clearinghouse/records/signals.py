"""What the records tell the rest of the core (reconciliation, rules) without importing it."""

from django.dispatch import Signal

# partner, created (a count), refs (of the created records) — sent after the ingest commits
records_committed = Signal()
