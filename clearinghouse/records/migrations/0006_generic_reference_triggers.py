"""Records' customer and partner checked by the generic set-based triggers (consent/references.py),
which replace the records-only functions of migration 0004 (same guarantee, one mechanism)."""

import importlib

from django.db import migrations

from consent.references import triggers

# Going back restores the records-only functions and triggers.
PREVIOUS = importlib.import_module("clearinghouse.records.migrations.0004_set_based_references").SQL

OWN = """
DROP TRIGGER IF EXISTS records_partner_delete ON partners_partner;
DROP TRIGGER IF EXISTS records_customer_delete ON consent_customer;
DROP TRIGGER IF EXISTS records_references_update ON records_interactionrecord;
DROP TRIGGER IF EXISTS records_references_insert ON records_interactionrecord;
DROP FUNCTION IF EXISTS records_referenced_delete_check();
DROP FUNCTION IF EXISTS records_references_check();
"""

GENERIC = triggers(
    "records_interactionrecord",
    [("customer_id", "consent_customer"), ("submitted_by_id", "partners_partner")],
)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0007_set_based_references"),
        ("records", "0005_drop_partner_kind_id_index"),
    ]

    operations = [migrations.RunSQL(OWN + GENERIC[0], GENERIC[1] + PREVIOUS)]
