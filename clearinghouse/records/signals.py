"""What the records tell the rest of the core (reconciliation, rules) without importing it."""

from django.dispatch import Signal

records_committed = Signal()  # partner, created — sent after the ingest transaction commits
