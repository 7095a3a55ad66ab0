"""A record's customer and partner are checked once per statement by the triggers of
clearinghouse/common/references.py, not once per row by foreign keys.

A batch of 10,000 records paid 20,000 foreign-key lookups and row locks at commit, and a
retailer's and a manufacturer's concurrent batches about the same customers turned each of those
locks into a multixact: about a fifth of the database's work in bulk ingest. Neither customers
nor partners are deleted by the product (a customer's erasure leaves a tombstone).
"""

import django.db.models.deletion
from django.db import migrations, models

from clearinghouse.common.references import triggers

REFERENCES = triggers(
    "records_interactionrecord",
    [("customer_id", "consent_customer"), ("submitted_by_id", "partners_partner")],
)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0007_set_based_references"),
        ("records", "0003_record_deadline_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="interactionrecord",
            name="customer",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="consent.customer",
            ),
        ),
        migrations.AlterField(
            model_name="interactionrecord",
            name="submitted_by",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="partners.partner",
            ),
        ),
        migrations.RunSQL(*REFERENCES),
    ]
